"""`sanitel dashboards`: export dashboards and provisioning files, or push them to Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from dashboards import dashboards
from dashboards.provisioning import DASHBOARDS_PATH, InfluxSource, bundle, datasource, write
from dashboards.push import PushError, connect, credential_from_env, push
from ingest.settings import InfluxSettings, Settings
from sanitel.cli_support import ConfigOption, fail, load_settings

app = typer.Typer(
    help="Grafana dashboards as code: export them with provisioning files, or push them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def _fail(message: str, code: int = 2) -> NoReturn:
    fail(message, code, "sanitel dashboards")


def _settings(config: Path | None) -> Settings:
    return load_settings(config, "sanitel dashboards")


def _source(influx: InfluxSettings) -> InfluxSource:
    uses_token = influx.token is not None or influx.api == "v2"
    return InfluxSource(url=influx.url, database=influx.database, uses_token=uses_token)


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write, e.g. config/grafana.")],
    config: ConfigOption = None,
    dashboards_path: Annotated[str, typer.Option(
        help="Where Grafana will find the dashboard JSON files (the provider's path).",
    )] = DASHBOARDS_PATH,
) -> None:
    """Write the dashboards (JSON) and Grafana's provisioning files under DIRECTORY."""
    settings = _settings(config)
    files = bundle(dashboards(settings.alerts), _source(settings.influx), dashboards_path)
    try:
        written = write(directory, files)
    except OSError as exc:
        _fail(f"cannot write under {directory}: {exc.strerror} ({exc.filename})", 1)
    for path in written:
        typer.echo(f"wrote {path}")


@app.command("push")
def push_command(
    url: Annotated[str, typer.Option(
        "--url", envvar="GRAFANA_URL", help="Grafana base URL, e.g. http://localhost:3000.",
    )],
    config: ConfigOption = None,
    influx_url: Annotated[str | None, typer.Option(
        help="InfluxDB URL as Grafana reaches it (default: the configured influx.url).",
    )] = None,
) -> None:
    """Create or update the datasource and the dashboards (folder "Sanitel") in a Grafana.

    Credentials: GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD, from the environment.
    """
    settings = _settings(config)
    influx = settings.influx
    if influx_url:
        influx = influx.model_copy(update={"url": influx_url})
    source = _source(influx)
    # Grafana reads with the read-only user (SPEC section 8) when there is one.
    reader = influx.read_username is not None and influx.read_password is not None
    secrets = {"username": (influx.read_username if reader else influx.username) or ""}
    password = influx.read_password if reader else influx.password
    secret = influx.token if source.uses_token else password
    secrets["token" if source.uses_token else "password"] = (
        secret.get_secret_value() if secret else ""
    )
    api = connect(url, credential_from_env())
    try:
        changes = push(api, datasource(source, secrets), dashboards(settings.alerts))
    except PushError as exc:
        _fail(str(exc), 1)
    for change in changes:
        typer.echo(str(change))
    changed = sum(change.action in ("created", "updated") for change in changes)
    typer.echo(f"{changed} changed, {len(changes) - changed} unchanged")
