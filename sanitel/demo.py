"""`sanitel demo`: the whole product on this machine, with a live view.

Starts mosquitto and influxd (and Alertmanager, when installed) with their data in
`./sanitel-demo/`, generates a city
(once; later runs resume it), writes the Grafana dashboards, runs `sanitel ingest` and
`sanitel simulate` as child processes, and shows what flows. Ctrl-C stops the simulator,
lets the pipeline drain, then stops the servers.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from devices.sites import Registry
from sanitel.demo_access import DemoAccess, demo_access
from sanitel.demo_alertmanager import announce, demo_alertmanager
from sanitel.demo_view import DemoView, watch
from sanitel.local_servers import Influxd, Mosquitto, ServerError, find_binary, free_port

SANITEL = [sys.executable, "-m", "sanitel.cli"]


@dataclass
class DemoPaths:
    root: Path

    @property
    def registry(self) -> Path:
        return self.root / "registry.yaml"

    @property
    def config(self) -> Path:
        return self.root / "sanitel.yaml"

    @property
    def grafana(self) -> Path:
        return self.root / "grafana"

    @property
    def data(self) -> Path:
        """The pipeline's `data_dir`; its incident store is in `data / "state"`."""
        return self.root / "data"


def _port(wanted: int) -> int:
    """The wanted port when it is free, any free one otherwise (0: any). Probed with
    SO_REUSEADDR, as the servers bind (asyncio, mosquitto, influxd): a port our previous
    run left in TIME_WAIT is free to them, and a resumed demo keeps its addresses (without
    it the probe refused 9108 after a restart and the fallback port could be taken by an
    outgoing connection before ingest bound it)."""
    if wanted:
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", wanted))
            return wanted
    return free_port()


def _write_config(paths: DemoPaths, mqtt_port: int, influx_url: str,
                  alertmanager_url: str | None = None, access: DemoAccess | None = None) -> int:
    """Write the demo's configuration; returns the port of the ingest's HTTP endpoints."""
    http_port = _port(9108)
    config: dict[str, Any] = {
        "registry": str(paths.registry.resolve()),
        "data_dir": str(paths.data.resolve()),
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": "sanitel-demo-ingest"},
        "influx": {"api": "v1", "url": influx_url, "database": "sanitation"},
        "pipeline": {"instance": "demo", "stats_interval_s": 2},
        # The simulated city is Chengdu (the simulator's --utc-offset 8): open hours there.
        "timezone": "Asia/Shanghai",
        "retention": {"rollup_every_s": 5},  # late readings of the replay rolled up quickly
        "http": {"port": http_port},
    }
    config.update(access.settings() if access else {})
    if alertmanager_url:
        config["alertmanager"] = {"urls": [alertmanager_url], "resend_s": 30}
    paths.config.write_text(
        "# Written by `sanitel demo`; use it with `sanitel ... --config` while the demo runs.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
    return http_port


def _city(paths: DemoPaths, sites: int, seed: int, console: Console) -> Registry:
    if not paths.registry.exists():
        from simulators import generate_city, write_registry

        write_registry(generate_city(sites=sites, seed=seed), paths.registry)
        console.print(f"generated a city of {sites} sites: {paths.registry}")
    else:
        console.print(f"resuming the city in {paths.registry}")
    return Registry.load(paths.registry)


@contextlib.contextmanager
def _child(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process in its own session, so Ctrl-C reaches it only through us."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its data.")] = Path(
        "sanitel-demo"
    ),
    sites: Annotated[int, typer.Option(min=1, help="Sites of the city (first run only).")] = 40,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated time speed: replays the last day, then live.")
    ] = 120.0,
    seed: Annotated[int, typer.Option(help="Seed of the city and its readings.")] = 7,
    faults: Annotated[float, typer.Option(min=0, max=1, help="Share of bad messages.")] = 0.02,
    mqtt_port: Annotated[int, typer.Option(help="Broker port (taken: any free one).")] = 1883,
    influx_port: Annotated[int, typer.Option(help="InfluxDB port (taken: any free).")] = 8086,
    alertmanager_port: Annotated[
        int, typer.Option(help="Alertmanager port, when installed (taken: any free).")
    ] = 9093,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Stop after this many seconds.")
    ] = None,
    live: Annotated[bool, typer.Option(help="Live terminal view (else a line every 5 s).")] = (
        True
    ),
) -> None:
    """The simulated city end to end on this machine: broker, InfluxDB, pipeline, alerts,
    dashboards and a live view. Ctrl-C stops everything cleanly; running it again resumes."""
    console = Console()
    try:
        find_binary("mosquitto", "/usr/sbin/mosquitto")
        find_binary("influxd", "/usr/bin/influxd")
    except ServerError as exc:
        console.print(f"[red]sanitel demo: {exc}[/red]")
        raise typer.Exit(1) from None
    paths = DemoPaths(directory)
    directory.mkdir(parents=True, exist_ok=True)
    registry = _city(paths, sites, seed, console)
    access = demo_access(directory, registry)
    broker = Mosquitto(directory / "mosquitto", port=_port(mqtt_port), extra_conf=access.conf)
    influx = Influxd(directory / "influxdb", port=_port(influx_port))
    stop = _stop_on_signals()
    with broker, influx, demo_alertmanager(
        directory / "alertmanager", registry, _port(alertmanager_port)
    ) as alertmanager:
        http_port = _write_config(paths, broker.port, influx.url,
                                  alertmanager.url if alertmanager else None, access)
        _influx_setup(paths, console)
        _export_dashboards(paths, console)
        console.print(
            f"broker mqtt://127.0.0.1:{broker.port}, InfluxDB {influx.url} (database "
            f"'sanitation'), {len(registry)} devices at {len(registry.sites)} sites; "
            f"pipeline health and Prometheus metrics http://127.0.0.1:{http_port}/metrics"
        )
        console.print(announce(alertmanager))
        console.print(access.announce())
        ingest_args = [*SANITEL, "ingest", "--config", str(paths.config)]
        simulate_args = [
            *SANITEL, "simulate", "--host", "127.0.0.1", "--port", str(broker.port),
            "--registry", str(paths.registry), "--speed", str(speed), "--seed", str(seed),
            "--faults", str(faults), "--quiet", "--credentials", str(access.credentials),
        ]
        with (
            _child(ingest_args, directory / "ingest.log") as ingest,
            _child(simulate_args, directory / "simulate.log") as simulator,
        ):
            view = DemoView(influx, registry, paths.data / "state", paths.grafana, alertmanager)
            watch(view, console, stop, duration, live, (ingest, simulator))
            simulator.send_signal(signal.SIGINT)  # first: its devices say goodbye
            simulator.wait(30)
        console.print(f"stopped; data kept in {directory} (run `sanitel demo` again to resume)")


def _stop_on_signals() -> dict[str, bool]:
    stop = {"now": False}

    def handler(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _influx_setup(paths: DemoPaths, console: Console) -> None:
    """Retention policies `raw` and `rollup` (SPEC section 9) before anything is written."""
    from ingest.influx_admin import InfluxSetupError, setup
    from ingest.influxql_client import InfluxQueryError
    from ingest.settings import ConfigError, load

    try:
        setup(load(paths.config))
    except (ConfigError, InfluxQueryError, InfluxSetupError) as exc:
        console.print(f"[yellow]influx setup failed: {exc}[/yellow]")
        return
    console.print("InfluxDB: retention policies raw (default) and rollup; hourly rollups kept "
                  "by the pipeline")


def _export_dashboards(paths: DemoPaths, console: Console) -> None:
    result = subprocess.run(
        [*SANITEL, "dashboards", "export", str(paths.grafana), "--config", str(paths.config)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode == 0:
        console.print(f"Grafana dashboards and provisioning written to {paths.grafana}")
    else:
        console.print(f"[yellow]dashboards not written: {result.stderr.strip()}[/yellow]")
