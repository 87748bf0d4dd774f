"""The dashboards over the simulated city: `sanitel simulate` -> mosquitto ->
`sanitel ingest` -> influxd, then every panel query as Grafana would send it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from dash_queries import BOARDS, fill_in, queries, resolve_variables, run

from sanitel.local_servers import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "config" / "registry.yaml"
#: An hour of city life in 15 s, ending now: the range the queries look at.
SIMULATE = ["--speed", "240", "--duration", "15", "--faults", "0.02", "--seed", "3", "-q"]


def simulate(mosquitto: Mosquitto) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env |= {"SANITEL_MQTT__HOST": mosquitto.host, "SANITEL_MQTT__PORT": str(mosquitto.port)}
    done = subprocess.run(
        [sys.executable, "-m", "simulators", "--registry", str(REGISTRY), *SIMULATE],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def device_of_type(kind: str) -> tuple[str, str]:
    """(site id, device id) of the first registered device of `kind`."""
    for site in yaml.safe_load(REGISTRY.read_text())["sites"]:
        for device in site["devices"]:
            if device["type"] == kind:
                return site["id"], device["id"]
    raise AssertionError(f"no {kind} in {REGISTRY}")


def publish(mosquitto: Mosquitto, messages: list[tuple[str, dict[str, Any], bool]]) -> None:
    """Publish like a device does (QoS 1), e.g. a compactor fault the hour did not bring."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dash-test-device")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, json.dumps(payload), qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def wait_for(influxd: Influxd, database: str, query: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if influxd.rows(query, database):
            return
        time.sleep(0.2)
    raise AssertionError(f"nothing for {query!r} within {timeout} s")


def test_every_panel_shows_the_simulated_city(
    run_ingest: Callable[..., Any], mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # The pipeline's registry: the example city, where one toilet counts as full at once
    # (an hour rarely brings ten minutes without a free stall).
    terminal_site, terminal = device_of_type("toilet_terminal")
    city = yaml.safe_load(REGISTRY.read_text())
    for site in city["sites"]:
        if site["id"] == terminal_site:
            site["alerts"] = {**site.get("alerts", {}), "toilet_full": {"for": 0}}
    registry = tmp_path / "registry.yaml"
    registry.write_text(yaml.safe_dump(city, sort_keys=False))
    ingest = run_ingest(registry=registry, alerts=ROOT / "config" / "alerts.yaml",
                        retention__rollup_every_s=1)
    simulate(mosquitto)  # on its clean stop every device publishes {"online": false}
    station_site, station = device_of_type("station_terminal")
    odor_site, odor = device_of_type("odor")
    publish(mosquitto, [
        (f"sanitation/v1/{terminal_site}/toilet_terminal/{terminal}/telemetry",
         {"stalls_free": 0, "stalls_total": 4, "ts": int(time.time() * 1000)}, False),
        (f"sanitation/v1/{station_site}/station_terminal/{station}/telemetry",
         {"fill_pct": 61.5, "compactor": "fault", "fault_code": "E-HYD-07"}, False),
        (f"sanitation/v1/{odor_site}/odor/{odor}/status", {"online": True}, True),
    ])
    wait_for(influxd, ingest.database, "SELECT fault_code FROM station WHERE compactor = 'fault'")
    wait_for(influxd, ingest.database, "SELECT online FROM device_status WHERE online = true")
    # Panels over more than 7 days read the rollups, which ingest keeps.
    wait_for(influxd, ingest.database, 'SELECT * FROM "rollup"."station_1h" WHERE '
             "fill_pct_max >= 61.5")
    wait_for(influxd, ingest.database, "SELECT state FROM alerts WHERE rule = 'toilet_full'")
    assert ingest.stop() == 0

    empty, answered = [], 0
    for stem, board in BOARDS.items():
        variables = resolve_variables(influxd, ingest.database, board, "all")
        for where, target in queries(board):
            series = run(influxd, ingest.database, fill_in(target["query"], variables))
            answered += 1
            if not any(s["values"] for s in series):
                empty.append(f"{stem} / {where}")
    assert answered >= 40
    assert not empty, "panels without data from the simulated city:\n" + "\n".join(empty)
