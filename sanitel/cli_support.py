"""What every `sanitel` sub-command shares: the `--config` option and loading it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import SecretStr

from devices.credentials import CredentialsError, Role, find_account, read_credentials
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


def with_account(
    settings: Settings, role: Role, username: str | None = None, path: Path | None = None,
    command: str = "sanitel",
) -> Settings:
    """The settings with the broker account of `role` (and `username`) from `path` or
    `access.credentials` (SPEC section 8); for ingest unless mqtt.password is set, as
    mqtt.username's row when that is set."""
    path = path or settings.access.credentials
    if path is None or (role == "ingest" and settings.mqtt.password is not None):
        return settings
    if role == "ingest" and settings.mqtt.username:
        username = settings.mqtt.username  # a second instance: sanitel-ingest-2, ...
    try:
        account = find_account(read_credentials(path), role, username)
    except CredentialsError as exc:
        fail(f"{exc} (configuration key access.credentials / SANITEL_ACCESS__CREDENTIALS)",
             2, command)
    mqtt = settings.mqtt.model_copy(
        update={"username": account.username, "password": SecretStr(account.password)})
    return settings.model_copy(update={"mqtt": mqtt})
