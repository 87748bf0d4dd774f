"""Benchmark, not a test: time from a reading's publish to its alert's arrival, through
the real `sanitel ingest` with local mosquitto and influxd.

    .venv/bin/python tests/ingest/alerts/alert_latency.py [--alerts 3000] [--rate 500]

Every reading flips `battery_low` on one of 50 devices, so each one makes one alert
event; the event's `started_at`/`resolved_at` is the reading's `ts` (unique per reading),
which ties it back to the publish time. Prints p50 / p90 / p99 / max in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from ingest.alerts.events import rfc3339
from sanitel.local_servers import Influxd, Mosquitto

ROOT = Path(__file__).resolve().parents[3]
DEVICES = 50


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=500, help="readings per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with Mosquitto(tmp / "mosquitto") as broker, Influxd(tmp / "influxd") as influx:
            run(tmp, broker, influx, args.alerts, args.rate)  # type: ignore[arg-type]


def run(tmp: Path, broker: Mosquitto, influx: Influxd, count: int, rate: float) -> None:
    devices = [{"id": f"WC-0001-OD-{i}", "type": "odor", "interval_s": 3600}
               for i in range(DEVICES)]
    (tmp / "registry.yaml").write_text(yaml.safe_dump({"sites": [{
        "id": "WC-0001", "kind": "toilet", "name": "People's Park North", "district": "Jinjiang",
        "lat": 30.6, "lon": 104.0, "devices": devices}]}))
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({"rules": {
        "battery_low": {"field": "battery_pct", "below": 15, "recover": 30}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env.update({
        "SANITEL_MQTT__HOST": broker.host, "SANITEL_MQTT__PORT": str(broker.port),
        "SANITEL_MQTT__CLIENT_ID": "bench-ingest", "SANITEL_INFLUX__URL": influx.url,
        "SANITEL_REGISTRY": str(tmp / "registry.yaml"), "SANITEL_ALERTS": str(tmp / "alerts.yaml"),
        "SANITEL_DATA_DIR": str(tmp / "data"), "SANITEL_HTTP__PORT": "0",
    })
    log = (tmp / "ingest.log").open("w")
    ingest = subprocess.Popen([sys.executable, "-m", "sanitel.cli", "ingest"], env=env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        _measure(broker, count, rate, tmp / "ingest.log")
    finally:
        ingest.terminate()
        ingest.wait(60)


def _measure(broker: Mosquitto, count: int, rate: float, log: Path) -> None:
    deadline = time.monotonic() + 30
    while "sanitel ingest: started" not in log.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"ingest did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        event = json.loads(msg.payload)
        key = event["resolved_at"] or event["started_at"]
        if key in sent:
            latencies.append((now - sent[key]) * 1000)
        if len(latencies) >= count:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-alerts")
    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.subscribe("sanitation/v1/_alerts/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-devices")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    time.sleep(0.5)
    base = int(time.time() * 1000) - 3_600_000
    for i in range(count):
        device, flip = i % DEVICES, (i // DEVICES) % 2
        ts = base + i
        key = rfc3339(ts)
        payload = json.dumps({"nh3_ppm": 1.0, "battery_pct": 5 if flip == 0 else 90, "ts": ts})
        sent[key] = time.perf_counter()
        pub.publish(f"sanitation/v1/WC-0001/odor/WC-0001-OD-{device}/telemetry", payload, qos=1)
        time.sleep(1 / rate)
    done.wait(60)
    sub.loop_stop()
    pub.loop_stop()
    if not latencies:
        raise SystemExit("no alerts received")
    print(f"alerts: {len(latencies)} of {count} (rate {rate:g}/s)")
    for p in (50, 90, 99):
        print(f"p{p}: {percentile(latencies, p):.1f} ms")
    print(f"max: {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()
