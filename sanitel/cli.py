"""`sanitel`: the one command of the project (SPEC section 7)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from devices.crews import Crews, CrewsError
from devices.sites import Registry, RegistryError
from ingest.http_endpoints import HttpEndpointError
from ingest.settings import Settings
from sanitel.cli_support import ConfigOption, fail, load_settings, with_account

if TYPE_CHECKING:
    from ingest.alerts import AlertEngine

log = logging.getLogger("sanitel")

app = typer.Typer(
    name="sanitel",
    help="Sanitel: sanitation telemetry from MQTT into InfluxDB, with alerts and dashboards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

def load_registry(settings: Settings) -> Registry:
    try:
        return Registry.load(settings.registry)
    except RegistryError as exc:
        fail(f"{exc} (configuration key registry / SANITEL_REGISTRY)")


def setup_logging(verbose: bool = False, json_lines: bool = False, level: str = "INFO") -> None:
    from sanitel.log_format import setup_logging as setup

    setup("DEBUG" if verbose else level, json_lines)


@app.callback()
def sanitel() -> None:
    """Sanitel: sanitation telemetry from MQTT into InfluxDB, with alerts and dashboards."""


@app.command()
def ingest(
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    log_format: Annotated[str | None, typer.Option(
        "--log-format", help="text or json (one JSON object per line); default: log.format.",
    )] = None,
) -> None:
    """Run the pipeline until SIGINT/SIGTERM, then drain what it holds and exit 0.

    Serves /healthz, /readyz and /metrics on http.host:http.port; SIGHUP (or `sanitel
    reload`) reloads the registry and the alert rules."""
    settings = with_account(load_settings(config), "ingest")
    if log_format not in (None, "text", "json"):
        fail(f"--log-format {log_format!r}: expected text or json")
    registry = load_registry(settings)
    crews = load_crews(settings)
    setup_logging(verbose, (log_format or settings.log.format) == "json", settings.log.level)
    engine = open_alerts(settings, registry) if settings.pipeline.role != "store" else None
    try:
        asyncio.run(_run_ingest(settings, registry, engine, crews))
    except HttpEndpointError as exc:
        fail(str(exc))


def load_crews(settings: Settings) -> Crews:
    try:
        return Crews.load(settings.crews)
    except CrewsError as exc:
        fail(f"{exc} (configuration key crews / SANITEL_CREWS)")


def open_alerts(settings: Settings, registry: Registry) -> AlertEngine:
    from ingest.alerts import AlertEngine, AlertRulesError, AlertStoreError

    try:
        return AlertEngine.open(settings.alerts, registry, settings.state_dir, settings.zone)
    except AlertRulesError as exc:
        fail(f"{exc} (configuration key alerts / SANITEL_ALERTS)")
    except AlertStoreError as exc:
        fail(f"{exc} (configuration key data_dir / SANITEL_DATA_DIR)")


async def _run_ingest(
    settings: Settings, registry: Registry, engine: AlertEngine | None, crews: Crews
) -> None:
    from ingest.pipeline import Pipeline, describe
    from ingest.service import ServiceEdge

    stop, started = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pipeline = Pipeline(settings, registry, engine, crews)

    async def announce() -> None:
        await started.wait()
        log.info(describe(settings, registry, len(engine.rules) if engine else None))

    announcer = asyncio.create_task(announce())
    try:
        # HTTP first: /healthz answers (and /readyz says "starting") during the set-up.
        async with ServiceEdge(settings, pipeline, stop, started):
            if settings.retention.setup_on_start and settings.pipeline.role != "alerts":
                from ingest.influx_admin import setup_at_start

                await asyncio.to_thread(setup_at_start, settings)
            await pipeline.run(stop, started)
    finally:
        announcer.cancel()
        if engine is not None:
            engine.close()
    log.info("sanitel ingest: stopped; %d received, %d stored, %d rejected",
             pipeline.stats.received, pipeline.store.figures.stored, pipeline.stats.rejected)


def _mount_simulate() -> None:
    from simulators.cli import simulate

    app.command("simulate", help="Run simulated devices against a broker.")(simulate)


def _mount_alerts() -> None:
    from sanitel.alertmanager_config import alertmanager_config
    from sanitel.alerts_cli import app as alerts_app

    alerts_app.command("alertmanager-config")(alertmanager_config)
    app.add_typer(alerts_app, name="alerts", help="Active alerts; acknowledge one.")


def _mount_dashboards() -> None:
    from sanitel.dashboards_cli import app as dashboards_app

    app.add_typer(dashboards_app, name="dashboards", help="Grafana dashboards as code.")


def _mount_devices() -> None:
    from sanitel.devices_cli import app as devices_app

    app.add_typer(devices_app, name="devices", help="The device contract: JSON Schema, AsyncAPI.")


def _mount_influx() -> None:
    from sanitel.influx_cli import app as influx_app

    app.add_typer(influx_app, name="influx", help="Database, retention policies, rollups, users.")


def _mount_reload() -> None:
    from sanitel.reload_cli import reload

    app.command("reload", help="Reload the registry and alert rules of a running ingest.")(reload)


def _mount_access() -> None:
    from sanitel.access.cli import app as access_app

    app.add_typer(access_app, name="access", help="Broker accounts and ACLs (SPEC section 8).")


def _mount_demo() -> None:
    from sanitel.demo import demo

    app.command("demo", help="The simulated city end to end on this machine, live.")(demo)


def _mount_report() -> None:
    from sanitel.report_cli import report

    app.command("report", help="The period's figures for the department's work report.")(report)


#: Sub-commands from the other packages, imported only when asked for: `sanitel ingest`
#: should not pay for Grafana's client library at every start.
_SUBCOMMANDS = {
    "simulate": _mount_simulate, "alerts": _mount_alerts, "dashboards": _mount_dashboards,
    "demo": _mount_demo, "report": _mount_report, "devices": _mount_devices,
    "influx": _mount_influx, "reload": _mount_reload, "access": _mount_access,
}


_mounted: set[str] = set()


def mount(*names: str) -> typer.Typer:
    """The app with the named sub-commands (all when none are named) mounted once."""
    for name in names or tuple(_SUBCOMMANDS):
        if name not in _mounted:
            _mounted.add(name)
            _SUBCOMMANDS[name]()
    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    wanted = next((arg for arg in args if not arg.startswith("-")), None)
    if wanted in _SUBCOMMANDS:
        mount(wanted)
    elif wanted != "ingest":
        mount()
    app(args=args)


if __name__ == "__main__":
    main()
