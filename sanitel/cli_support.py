"""What every `sanitel` sub-command shares: the `--config` option and loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from ingest.settings import ConfigError, Settings, load

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="SANITEL_CONFIG",
        help="YAML configuration file; every key can also be set as SANITEL_<SECTION>__<KEY>.",
    ),
]


def fail(message: str, code: int = 2, command: str = "sanitel") -> NoReturn:
    typer.echo(f"{command}: {message}", err=True)
    raise typer.Exit(code)


def load_settings(config: Path | None, command: str = "sanitel") -> Settings:
    """The configuration, or exit 2 with the message naming the bad key."""
    try:
        return load(config)
    except ConfigError as exc:
        fail(str(exc), 2, command)
