"""`sanitel simulate`: run a simulated city against an MQTT broker.

Registered by `sanitel.cli` as `app.command("simulate")(simulate)`; also runnable as
`python -m simulators ...`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from devices.credentials import CredentialsError, read_credentials
from devices.sites import Registry, RegistryError
from simulators.city import generate_city, write_registry
from simulators.clock import StartTimeError, default_start_ms, parse_start, wall_ms
from simulators.engine import Simulator
from simulators.faults import FaultKind, FaultRateError, FaultRates
from simulators.live import run_city
from simulators.progress import ProgressView, sim_time, summary
from simulators.publisher import BrokerOptions, ConnectionMode, MqttPublisher, PublisherError

DEFAULT_REGISTRY = Path("config/registry.yaml")
_FAULT_HELP = "Fault rate per reading, KIND=RATE, repeatable; kinds: " + ", ".join(FaultKind) + "."


class UsageError(ValueError):
    """Options that do not go together."""


def simulate(
    host: Annotated[str, typer.Option(envvar="SANITEL_MQTT__HOST", help="MQTT broker host.")] = (
        "localhost"
    ),
    port: Annotated[int, typer.Option(envvar="SANITEL_MQTT__PORT", help="MQTT port.")] = 1883,
    username: Annotated[str | None, typer.Option(envvar="SANITEL_MQTT__USERNAME")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="SANITEL_MQTT__PASSWORD", help="Better set in the environment."),
    ] = None,
    tls: Annotated[
        bool, typer.Option(envvar="SANITEL_MQTT__TLS", help="Connect with TLS.")
    ] = False,
    ca_file: Annotated[Path | None, typer.Option(envvar="SANITEL_MQTT__CA_FILE")] = None,
    credentials: Annotated[
        Path | None,
        typer.Option(
            help="credentials.csv of `sanitel access init`: each device connects with its own "
            "row (gateway mode: each site as its <site_id>-gw row)."
        ),
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option(help=f"Registry YAML [default: $SANITEL_REGISTRY, or {DEFAULT_REGISTRY}]"),
    ] = None,
    sites: Annotated[
        int | None,
        typer.Option(min=1, help="Generate a city of N sites instead of reading --registry."),
    ] = None,
    write_registry_to: Annotated[
        Path | None,
        typer.Option("--write-registry", help="Write the generated city here (for the pipeline)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same readings.")] = 0,
    speed: Annotated[float, typer.Option(min=0.001, help="60: an hour passes in a minute.")] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start, ISO 8601 [default: now; when --speed > 1, in the "
            "past so that the fast-forward ends about now]"
        ),
    ] = None,
    rate: Annotated[float | None, typer.Option(min=0.001, help="Cap, messages/s overall.")] = None,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many s.")] = None,
    count: Annotated[int | None, typer.Option(min=0, help="Stop after this many readings.")] = None,
    once: Annotated[bool, typer.Option(help="One reading per device, then exit.")] = False,
    qos: Annotated[int, typer.Option(min=0, max=2, help="QoS of telemetry.")] = 1,
    fault: Annotated[list[str] | None, typer.Option(help=_FAULT_HELP)] = None,
    faults: Annotated[
        float, typer.Option(min=0, max=1, help="Total fault rate, spread over every kind.")
    ] = 0.0,
    connections: Annotated[
        str,
        typer.Option(help="auto, per-device (own connection and LWT each) or gateway (shared)."),
    ] = "auto",
    gateways: Annotated[int, typer.Option(min=1, help="Shared connections in gateway mode.")] = 4,
    utc_offset: Annotated[float, typer.Option(help="City's UTC offset, hours.")] = 8.0,
    tally_file: Annotated[Path | None, typer.Option(help="Write the tally here as JSON.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Build (and write) the city; publish nothing.")] = (
        False
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Run simulated toilets and transfer stations against an MQTT broker.

    Up to 200 devices: one MQTT connection per device, each with its own last will.

    More: a few shared gateway connections (--gateways).

    Each device's status is published retained on start, {"online": false} on a clean stop.
    """
    console = Console(stderr=True, quiet=quiet)
    try:
        city = _registry(registry, sites, seed, write_registry_to)
        rates = FaultRates.parse(fault or [], faults)
        now = wall_ms()
        start_ms = parse_start(start) if start else default_start_ms(now, speed, duration)
        if connections not in ("auto", "per-device", "gateway"):
            raise UsageError(f"--connections {connections!r}: use auto, per-device or gateway")
        devices_accounts, gateway_accounts = _accounts(credentials)
    except (RegistryError, FaultRateError, StartTimeError, UsageError, CredentialsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    console.print(
        f"{len(city)} devices at {len(city.sites)} sites; simulated time from "
        f"{sim_time(start_ms)} at speed {speed:g}"
    )
    if dry_run:
        return
    sim = Simulator(
        city, seed=seed, start_ms=start_ms, faults=rates, utc_offset_h=utc_offset,
        phased=not once, wall_clock=wall_ms,
    )  # fmt: skip
    options = BrokerOptions(
        host, port, username, password, tls, ca_file, qos,
        device_accounts=devices_accounts, gateway_accounts=gateway_accounts,
    )
    mode: ConnectionMode = connections  # type: ignore[assignment]
    try:
        publisher = asyncio.run(
            _run(
                sim,
                options,
                console,
                speed=speed,
                duration_s=duration,
                readings=count,
                once=once,
                rate=rate,
                connections=mode,
                gateways=gateways,
            )
        )
    except PublisherError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except asyncio.CancelledError:
        typer.echo("interrupted: some messages may not have reached the broker", err=True)
        raise typer.Exit(130) from None
    finally:
        if tally_file:
            sim.tally.write(tally_file)
    if publisher and publisher.unacked_at_exit:
        typer.echo(
            f"warning: {options.where()} had not acknowledged "
            f"{publisher.unacked_at_exit} message(s) when we stopped",
            err=True,
        )
    console.print(summary(sim.tally))


def _accounts(
    path: Path | None,
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """Device id -> (username, password) and site id -> its gateway's, from the file."""
    if path is None:
        return {}, {}
    rows = read_credentials(path)
    devices = {r.device_id: (r.username, r.password) for r in rows if r.role == "device"}
    gateways = {r.site_id: (r.username, r.password) for r in rows if r.role == "gateway"}
    if not devices and not gateways:
        raise CredentialsError(f"credentials file {path}: no device or gateway rows")
    return devices, gateways


def _registry(path: Path | None, sites: int | None, seed: int, out: Path | None) -> Registry:
    if sites is not None:
        if path is not None:
            raise UsageError("give --registry or --sites, not both")
        data = generate_city(sites, seed)
        if out:
            write_registry(data, out)
        return Registry.from_dict(data, f"generated city of {sites} sites")
    if out is not None:
        raise UsageError("--write-registry writes a generated city; add --sites N")
    # The environment's registry is the pipeline's; --sites generates a city instead of it.
    return Registry.load(path or os.environ.get("SANITEL_REGISTRY") or DEFAULT_REGISTRY)


async def _run(
    sim: Simulator,
    options: BrokerOptions,
    console: Console,
    **kwargs: Any,
) -> MqttPublisher | None:
    """Run with the progress view; the publisher used. Ctrl-C or SIGTERM stops cleanly
    (statuses offline, acknowledgements awaited); a second one stops at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and task:
            task.cancel()  # a second Ctrl-C: do not wait for the broker any longer
        elif not stop.is_set():
            console.print("stopping: last batch, offline statuses, acks (Ctrl-C again: now)")
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    used: list[MqttPublisher] = []

    def connected(publisher: MqttPublisher) -> None:
        used.append(publisher)
        console.print(
            f"connected to {options.where()}: {publisher.connections} connection(s), "
            f"{publisher.mode} mode"
        )

    with ProgressView(console, sim.tally, lambda: used[0].pending if used else 0) as view:
        await run_city(
            sim, options, stop=stop, on_connected=connected,
            on_progress=None if console.quiet else view.update, **kwargs,
        )  # fmt: skip
    return used[0] if used else None


app = typer.Typer(add_completion=False)
app.command()(simulate)


def main() -> None:
    app(prog_name="python -m simulators" if sys.argv[0].endswith("__main__.py") else None)
