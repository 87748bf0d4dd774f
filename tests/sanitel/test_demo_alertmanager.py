"""`sanitel demo` with Alertmanager: a district's alert reaches that district's crew (and a
critical one the duty phone) through the shipped routing, and no other crew."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from devices.credentials import find_account, read_credentials
from devices.sites import Registry
from sanitel.demo_alertmanager import demo_crews

ROOT = Path(__file__).resolve().parents[2]


def inbox(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Alerts each receiver got: receiver name -> alerts."""
    got: dict[str, list[dict[str, Any]]] = {}
    for path in (directory / "alertmanager" / "inbox").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            got.setdefault(path.stem, []).extend(json.loads(line)["alerts"])
    return got


def test_demo_routes_a_districts_alert_to_its_crew_only(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sanitel.cli", "demo", "--dir", str(directory), "--mqtt-port",
         "0", "--influx-port", "0", "--alertmanager-port", "0", "--no-live", "--sites", "12"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        config_file, log = directory / "sanitel.yaml", directory / "ingest.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                log.exists() and "sanitel ingest: started" in log.read_text()):
            time.sleep(0.2)
        config = yaml.safe_load(config_file.read_text())
        am_url = config["alertmanager"]["urls"][0]
        assert httpx.get(f"{am_url}/-/ready", timeout=5).status_code == 200
        registry = Registry.load(directory / "registry.yaml")
        device = next(d for d in registry.devices.values() if d.type == "odor")
        crews = demo_crews(registry)
        mine = {c.name for c in crews if device.site.district in c.districts}
        # Readings ahead of the simulator's clock (within max_future_s): NH3 critical for the
        # rule's 2 minutes on device time, and the simulator's readings cannot clear it.
        client = paho.Client(CallbackAPIVersion.VERSION2)
        # The demo's broker has access control on: its site's gateway account speaks for the
        # device (the device's own account is the simulator's connection).
        account = find_account(read_credentials(directory / "access" / "credentials.csv"),
                               "gateway", f"{device.site.id}-gw")
        client.username_pw_set(account.username, account.password)
        client.connect("127.0.0.1", config["mqtt"]["port"])
        client.loop_start()
        now = int(time.time() * 1000)
        topic = f"sanitation/v1/{device.site.id}/odor/{device.id}/telemetry"
        for ahead_s in (60, 200, 250):
            client.publish(topic, json.dumps({"nh3_ppm": 50.0, "ts": now + ahead_s * 1000}),
                           qos=1).wait_for_publish(10)
        client.loop_stop()
        client.disconnect()

        def ours(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [a for a in alerts if a["labels"]["device_id"] == device.id
                    and a["labels"]["alertname"] == "odor_nh3_high"]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                all(ours(inbox(directory).get(name, [])) for name in mine)
                and ours(inbox(directory).get("duty-phone", []))):
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert f"Alertmanager UI {am_url}" in output
    got = inbox(directory)
    for name in mine:
        assert ours(got.get(name, [])), f"{name} got nothing of {device.id}: {got.keys()}"
    assert ours(got["duty-phone"])[0]["labels"]["severity"] == "critical"
    for crew in crews:
        if crew.name not in mine:
            assert not ours(got.get(crew.name, []))
        for alert in got.get(crew.name, []):  # whatever else the demo raised: its district's
            assert alert["labels"]["district"] in crew.districts
