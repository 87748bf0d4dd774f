"""`sanitel alerts list` and `sanitel alerts ack ID`: the crews' view of the incident store."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import orjson
import paho.mqtt.client as mqtt
import typer
from paho.mqtt.enums import CallbackAPIVersion
from rich import box
from rich.console import Console
from rich.table import Table

from devices.crews import Crews, CrewsError
from devices.sites import Registry, RegistryError
from ingest.alerts.events import Incident
from ingest.alerts.incident_db import AlertStoreError, read_open_incidents, store_path
from ingest.alerts.wording import duration
from ingest.paho_fastpath import configure
from ingest.settings import MqttSettings, Settings
from sanitel.cli_support import ConfigOption, load_settings, with_account

ACK_TOPIC = "sanitation/v1/_ack"

app = typer.Typer(help="Active alerts: list them, acknowledge one.", no_args_is_help=True)

#: Characters of an alert id shown by `alerts list`: unique among the active ones in practice.
ID_SHOWN = 12


def _settings(config: Path | None) -> Settings:
    return load_settings(config, "sanitel alerts")


def _open_incidents(settings: Settings) -> list[Incident]:
    path = store_path(settings.state_dir)
    try:
        return read_open_incidents(settings.state_dir)
    except (AlertStoreError, sqlite3.Error) as exc:
        typer.echo(f"alert store {path}: cannot be read ({exc})", err=True)
        raise typer.Exit(1) from None


@app.command("list")
def list_alerts(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON array instead of a table.")] = False,
) -> None:
    """Show the open incidents: site, rule, severity, value, age, acknowledged by."""
    settings = _settings(config)
    incidents = _open_incidents(settings)
    now_ms = int(time.time() * 1000)
    if as_json:
        rows = [_as_dict(incident, now_ms) for incident in incidents]
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    console = Console()
    if not incidents:
        console.print("No active alerts.")
        return
    table = Table(title=f"{len(incidents)} active alert(s)", box=box.SIMPLE_HEAD)
    # The id first and whole enough to ack by (`sanitel alerts ack` takes a unique prefix).
    table.add_column("alert id", no_wrap=True)
    for column in ("rule", "severity", "value", "age"):
        table.add_column(column, no_wrap=True)
    table.add_column("site", ratio=2, overflow="fold")
    table.add_column("device", overflow="fold")
    table.add_column("ack by", overflow="fold")
    for incident in incidents:
        table.add_row(
            incident.alert_id[:ID_SHOWN], incident.rule, incident.severity, _value(incident),
            duration(max(0, now_ms - incident.started_ms)), incident.site_name,
            incident.device_id, incident.acknowledged_by or "",
        )
    console.print(table)


@app.command("ack")
def ack_alert(
    alert_id: Annotated[
        str, typer.Argument(help="The alert_id to acknowledge, or a unique prefix of it.")
    ],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges (v1 topic only).")] = "cli",
    crew: Annotated[str | None, typer.Option(
        "--crew", help="Acknowledge as this crew, on sanitation/v1/_ack/CREW with its broker "
        "account (access control on).")] = None,
    credentials: Annotated[Path | None, typer.Option(
        help="credentials.csv with the crew's row [default: access.credentials; else "
        "mqtt.username / SANITEL_MQTT__PASSWORD].")] = None,
    config: ConfigOption = None,
) -> None:
    """Acknowledge an active alert: published to sanitation/v1/_ack/CREW with --crew (SPEC
    section 8), else to the v1 topic sanitation/v1/_ack, for the pipeline."""
    settings = _settings(config)
    if crew is not None:
        settings = with_account(settings, "crew", crew, credentials, "sanitel alerts")
    matches = [i for i in _open_incidents(settings) if i.alert_id.startswith(alert_id)]
    exact = [i for i in matches if i.alert_id == alert_id]
    if exact:
        matches = exact
    if len(matches) != 1 or not alert_id:
        why = "no active alert" if not matches else f"{len(matches)} active alerts"
        typer.echo(f"{why} with id {alert_id!r} in {store_path(settings.state_dir)}; "
                   "give the whole id or a longer prefix, see `sanitel alerts list`", err=True)
        raise typer.Exit(1)
    incident = matches[0]
    alert_id = incident.alert_id
    if crew is not None:
        _check_districts(settings, crew, incident)
        topic, payload, by = f"{ACK_TOPIC}/{crew}", orjson.dumps({"alert_id": alert_id}), crew
    else:
        topic, payload = ACK_TOPIC, orjson.dumps({"alert_id": alert_id, "by": by})
    try:
        _publish(settings.mqtt, topic, payload)
    except (OSError, RuntimeError, ValueError) as exc:
        typer.echo(f"cannot publish the ack to {settings.mqtt.host}:{settings.mqtt.port}: {exc}",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"acknowledged {alert_id} ({incident.rule} at {incident.site_name}) by {by}")


def _check_districts(settings: Settings, crew: str, incident: Incident) -> None:
    """Say so before publishing an ack the pipeline would ignore (SPEC section 8)."""
    try:
        crews = Crews.load(settings.crews)
        site = Registry.load(settings.registry).sites.get(incident.site_id)
    except (CrewsError, RegistryError) as exc:
        typer.echo(f"sanitel alerts: {exc}", err=True)
        raise typer.Exit(2) from None
    if crews.get(crew) is None:
        typer.echo(f"no crew {crew!r} in {settings.crews}", err=True)
        raise typer.Exit(1)
    if site is None or not crews.covers(crew, site.district):
        where = f"district {site.district}" if site else f"site {incident.site_id}"
        typer.echo(f"alert {incident.alert_id} is in {where}, outside crew {crew!r}'s "
                   f"districts in {settings.crews}; the pipeline would ignore this ack", err=True)
        raise typer.Exit(1)


def _publish(settings: MqttSettings, topic: str, payload: bytes, timeout_s: float = 10) -> None:
    """Publish one message QoS 1 and wait for the broker's PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"sanitel-ack-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    configure(client, settings)
    refused: list[str] = []
    connected = threading.Event()

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            refused.append(f"the broker refused the connection as {settings.username}: {reason}")
        connected.set()

    def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        if reason.is_failure:
            hint = ("only a crew's own account may write its topic" if topic != ACK_TOPIC else
                    "with access control on, acknowledge as your crew: --crew NAME")
            refused.append(f"the broker refused the ack on {topic} as {settings.username} "
                           f"({reason}): {hint}")

    client.on_connect, client.on_publish = on_connect, on_publish
    client.connect(settings.host, settings.port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise RuntimeError(f"no answer to CONNECT within {timeout_s:g} s")
        if refused:
            raise RuntimeError(refused[0])
        info = client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + timeout_s
        while not info.is_published() and not refused and time.monotonic() < deadline:
            time.sleep(0.02)
        if refused:
            raise RuntimeError(refused[0])
        if not info.is_published():
            raise RuntimeError(f"no PUBACK from the broker within {timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()


def _value(incident: Incident) -> str:
    value = incident.value
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _as_dict(incident: Incident, now_ms: int) -> dict[str, object]:
    event = orjson.loads(incident.event(now_ms).payload())
    assert isinstance(event, dict)
    del event["event_id"]  # a view of the incident, not one of its events
    event["site_name"] = incident.site_name
    event["age_s"] = round(max(0, now_ms - incident.started_ms) / 1000, 1)
    return event
