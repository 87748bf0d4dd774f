"""`sanitel influx`: database, retention policies, users (setup) and rollups on demand."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, NoReturn

import typer

from ingest.influx_admin import InfluxSetupError, setup
from ingest.influx_writer import WriteRejected, WriteUnavailable
from ingest.influxql_client import (
    AsyncInfluxQL,
    InfluxQueryError,
    InfluxRightsMissing,
    reader_credentials,
)
from ingest.rollup_task import Rollups, open_rollup_writer
from ingest.rollups import BY_SOURCE, HOUR_MS, hour_of
from ingest.settings import Settings
from sanitel.cli_support import ConfigOption, fail, load_settings

app = typer.Typer(
    help="InfluxDB: database, retention policies, rollups and users (SPEC section 9).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 1) -> NoReturn:
    fail(message, code, "sanitel influx")


@app.command("setup")
def setup_command(config: ConfigOption = None) -> None:
    """Create (or bring up to date) the database, the retention policies `raw` (default)
    and `rollup`, and, with authentication on, a write-only and a read-only user."""
    settings = load_settings(config, "sanitel influx")
    if settings.influx.api == "v2":
        _fail("with influx.api v2, buckets and tokens are made with the `influx` CLI; "
              "see docs/retention.md (InfluxDB 2.x / 3.x)", 2)
    try:
        report = setup(settings)
    except InfluxRightsMissing as exc:
        _fail(f"{exc}\n  set SANITEL_INFLUX__ADMIN_USERNAME and SANITEL_INFLUX__ADMIN_PASSWORD "
              "to an InfluxDB admin")
    except (InfluxQueryError, InfluxSetupError) as exc:
        _fail(str(exc))
    for line in report.actions:
        typer.echo(line)


@app.command("rollup")
def rollup_command(
    hours: Annotated[int, typer.Option(min=1, help="Recompute this many hours back from now.")]
    = 24,
    config: ConfigOption = None,
) -> None:
    """Recompute the hourly rollups of the last HOURS from the raw readings (what
    `sanitel ingest` does by itself for the hours it writes)."""
    settings = load_settings(config, "sanitel influx")
    started = time.monotonic()
    try:
        written = asyncio.run(_recompute(settings, hours))
    except (InfluxQueryError, WriteUnavailable, WriteRejected) as exc:
        _fail(str(exc))
    typer.echo(f"{written} rollup points for {hours} hours in {time.monotonic() - started:.2f} s")


async def _recompute(settings: Settings, hours: int) -> int:
    now = hour_of(int(time.time() * 1000))
    wanted = {now - step * HOUR_MS for step in range(hours)}
    reader = AsyncInfluxQL(settings.influx.url, reader_credentials(settings.influx), 120)
    try:
        async with open_rollup_writer(settings.influx) as writer:
            rollups = Rollups(settings.influx, reader, writer)
            return await rollups.recompute({name: set(wanted) for name in BY_SOURCE})
    finally:
        await reader.aclose()
