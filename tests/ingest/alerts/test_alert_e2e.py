"""Alerts through the real `sanitel ingest` process, real mosquitto and real influxd."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_city import CITY, odor
from alert_hooks import Hook

from devices.sites import Registry
from ingest.alerts import AlertEngine
from ingest.alerts.events import rfc3339

ROOT = Path(__file__).resolve().parents[3]
T = "sanitation/v1"
ODOR = f"{T}/WC-0001/odor/WC-0001-OD-1/telemetry"
ODOR_TS = f"{T}/TS-0001/odor/TS-0001-OD-1/telemetry"
SPEC_KEYS = {"alert_id", "rule", "severity", "state", "site_id", "device_id", "device_type",
             "field", "value", "threshold", "started_at", "resolved_at", "message"}

RULES: dict[str, Any] = {
    "rules": {
        "odor_nh3_high": {"device_type": "odor", "field": "nh3_ppm",
                          "levels": {"warning": {"above": 2.0, "recover": 1.5},
                                     "critical": {"above": 5.0, "recover": 4.0}}},
        "battery_low": {"field": "battery_pct", "below": 15, "recover": 30},
        "offline": {"missed_intervals": 3},
    }
}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(RULES))
    return path


@pytest.fixture
def alerts_seen(mqtt: Any) -> Any:
    mqtt.subscribe(f"{T}/_alerts/#")
    return mqtt


def now_ms() -> int:
    return int(time.time() * 1000)


def alerts(messages: list[tuple[str, bytes, bool]], device: str | None = None,
           rule: str | None = None) -> list[dict[str, Any]]:
    out = []
    for topic, payload, _ in messages:
        if not topic.startswith(f"{T}/_alerts/"):
            continue
        event = json.loads(payload)
        if (device is None or event["device_id"] == device) and (rule is None
                                                                 or event["rule"] == rule):
            out.append(event)
    return out


def wait_alerts(mqtt: Any, count: int, device: str | None = None, rule: str | None = None,
                timeout: float = 15) -> list[dict[str, Any]]:
    got = mqtt.wait_for(lambda m: len(alerts(m, device, rule)) >= count, timeout)
    return alerts(got, device, rule)


def test_every_change_published_with_every_key_and_stored(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path) -> None:
    ingest = run_ingest(alerts=rules_file)
    ts = now_ms() - 10_000
    for i, value in enumerate([3.0, 6.0, 1.0]):
        alerts_seen.publish(ODOR, {"nh3_ppm": value, "ts": ts + i * 1000})
    events = wait_alerts(alerts_seen, 3, "WC-0001-OD-1", "odor_nh3_high")
    assert [(e["state"], e["severity"]) for e in events] == [
        ("firing", "warning"), ("firing", "critical"), ("resolved", "critical")]
    assert len({e["alert_id"] for e in events}) == 1
    for event in events:
        assert event.keys() >= SPEC_KEYS
        assert event["site_id"] == "WC-0001" and event["device_type"] == "odor"
        assert event["field"] == "nh3_ppm" and "People's Park North" in event["message"]
    assert (events[0]["value"], events[0]["threshold"]) == (3.0, 2.0)
    assert events[2]["resolved_at"] is not None
    # the `alerts` measurement: the dashboards' "active" query sees nothing left firing
    rows = rows_of('SELECT last(state) AS state FROM alerts WHERE rule = \'odor_nh3_high\' '
                   "GROUP BY severity", ingest.database, count=2)
    assert {r["severity"]: r["state"] for r in rows} == {"warning": "resolved",
                                                          "critical": "resolved"}
    fired = rows_of("SELECT * FROM alerts WHERE state = 'firing'", ingest.database, count=2)
    assert fired[0]["time"] == ts and fired[0]["value"] == 3.0 and fired[0]["threshold"] == 2.0


def test_ack_by_topic_and_by_cli(run_ingest: Any, alerts_seen: Any, rules_file: Path) -> None:
    ingest = run_ingest(alerts=rules_file)
    ts = now_ms() - 5_000
    alerts_seen.publish(ODOR, {"nh3_ppm": 3.0, "ts": ts})
    alerts_seen.publish(ODOR_TS, {"nh3_ppm": 3.0, "ts": ts})
    first = wait_alerts(alerts_seen, 1, "WC-0001-OD-1")[0]["alert_id"]
    second = wait_alerts(alerts_seen, 1, "TS-0001-OD-1")[0]["alert_id"]

    alerts_seen.publish(f"{T}/_ack", {"alert_id": first, "by": "li.wei"})
    acked = wait_alerts(alerts_seen, 2, "WC-0001-OD-1")[1]
    assert (acked["alert_id"], acked["state"], acked["acknowledged_by"]) == (
        first, "acknowledged", "li.wei")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ingest.cli", "alerts", *args],
                              env=ingest.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False)

    result = cli("ack", second, "--by", "zhang.min")
    assert result.returncode == 0, result.stderr
    acked = wait_alerts(alerts_seen, 2, "TS-0001-OD-1")[1]
    assert (acked["alert_id"], acked["state"], acked["acknowledged_by"]) == (
        second, "acknowledged", "zhang.min")
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["alert_id"]: row for row in json.loads(listed.stdout)}
    assert {k: rows[k]["acknowledged_by"] for k in (first, second)} == {
        first: "li.wei", second: "zhang.min"}
    unknown = cli("ack", "0000")
    assert unknown.returncode == 1 and "no active alert with id '0000'" in unknown.stderr
    # silenced: more bad readings give no new events; the resolve still comes
    alerts_seen.publish(ODOR, {"nh3_ppm": 3.5, "ts": ts + 1000})
    alerts_seen.publish(ODOR, {"nh3_ppm": 1.0, "ts": ts + 2000})
    events = wait_alerts(alerts_seen, 3, "WC-0001-OD-1")
    assert [e["state"] for e in events] == ["firing", "acknowledged", "resolved"]


def test_last_will_and_silence_both_open_offline(
        run_ingest: Any, alerts_seen: Any, rules_file: Path, tmp_path: Path) -> None:
    city = copy.deepcopy(CITY)
    assert city["sites"][0]["devices"][2]["id"] == "WC-0001-SP-1"
    city["sites"][0]["devices"][2]["interval_s"] = 1  # offline after 3 s of silence
    registry = tmp_path / "registry-fast.yaml"
    registry.write_text(yaml.safe_dump(city))
    run_ingest(alerts=rules_file, registry=registry)

    alerts_seen.publish(f"{T}/WC-0001/odor/WC-0001-OD-1/status", {"online": False})
    lwt = wait_alerts(alerts_seen, 1, "WC-0001-OD-1", "offline")[0]
    assert (lwt["state"], lwt["field"], lwt["value"]) == ("firing", "online", False)
    alerts_seen.publish(ODOR, {"nh3_ppm": 1.0})
    back = wait_alerts(alerts_seen, 2, "WC-0001-OD-1", "offline")[1]
    assert (back["alert_id"], back["state"]) == (lwt["alert_id"], "resolved")

    silent = wait_alerts(alerts_seen, 1, "WC-0001-SP-1", "offline")[0]
    assert silent["state"] == "firing" and silent["threshold"] == 3.0
    assert "No data for" in silent["message"]
    alerts_seen.publish(f"{T}/WC-0001/sprayer/WC-0001-SP-1/telemetry", {"liquid_pct": 80})
    assert wait_alerts(alerts_seen, 2, "WC-0001-SP-1", "offline")[1]["state"] == "resolved"
    # the 60 s devices are not offline after a few seconds
    assert alerts(alerts_seen.messages, "TS-0001-ST-1") == []


def test_kill_9_with_incident_open_no_refire_one_resolve(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path) -> None:
    ingest = run_ingest(alerts=rules_file)
    ts = now_ms() - 60_000
    alerts_seen.publish(ODOR, {"nh3_ppm": 3.0, "ts": ts, "seq": 1})
    fired = wait_alerts(alerts_seen, 1, "WC-0001-OD-1")[0]
    rows_of("SELECT * FROM alerts", ingest.database)
    ingest.kill()
    ingest.restart()
    for seq in range(2, 6):
        alerts_seen.publish(ODOR, {"nh3_ppm": 3.0 + seq / 10, "ts": ts + seq * 1000, "seq": seq})
    rows_of("SELECT nh3_ppm FROM odor", ingest.database, count=5)
    time.sleep(1.0)  # give a wrong re-fire the time to show up
    assert len(alerts(alerts_seen.messages, "WC-0001-OD-1")) == 1
    alerts_seen.publish(ODOR, {"nh3_ppm": 0.5, "ts": ts + 10_000, "seq": 10})
    events = wait_alerts(alerts_seen, 2, "WC-0001-OD-1")
    assert [(e["alert_id"], e["state"]) for e in events] == [
        (fired["alert_id"], "firing"), (fired["alert_id"], "resolved")]
    time.sleep(0.5)
    assert len(alerts(alerts_seen.messages, "WC-0001-OD-1")) == 2


@pytest.fixture
def webhook_servers() -> Iterator[tuple[Hook, Hook]]:
    stuck, good = Hook([200], hang=True), Hook([200])
    yield stuck, good
    stuck.close()
    good.close()


def test_hanging_webhook_does_not_slow_ingest(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path,
        webhook_servers: tuple[Hook, Hook]) -> None:
    stuck, good = webhook_servers  # `stuck` holds every request for 30 s
    ingest = run_ingest(alerts=rules_file, webhooks__urls=json.dumps([stuck.url, good.url]),
                        webhooks__timeout_s=60)
    ts = now_ms() - 60_000
    started = time.monotonic()
    for i in range(40):  # every reading flips battery_low: 40 alert events
        battery = 5 if i % 2 == 0 else 90
        alerts_seen.publish(ODOR, {"nh3_ppm": 1.0, "battery_pct": battery, "ts": ts + i, "seq": i})
    for i in range(40, 400):
        alerts_seen.publish(ODOR, {"nh3_ppm": 1.0, "ts": ts + i, "seq": i})
    rows_of("SELECT nh3_ppm FROM odor", ingest.database, count=400, timeout=20)
    stored_s = time.monotonic() - started
    assert stuck.arrived.is_set() and not stuck.release.is_set()
    assert len(wait_alerts(alerts_seen, 40, "WC-0001-OD-1", "battery_low")) == 40
    deadline = time.monotonic() + 10
    while len(good.bodies) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(good.bodies) == 40
    # all stored well inside the 30 s the stuck hook holds on
    assert stored_s < 20


def test_backlog_of_an_hour_replayed_at_once_gives_the_live_incidents(
        run_ingest: Any, alerts_seen: Any, tmp_path: Path) -> None:
    rules = copy.deepcopy(RULES)
    rules["rules"]["odor_nh3_high"]["for"] = "2m"
    rules_file = tmp_path / "alerts-for.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    registry_file = tmp_path / "registry-city.yaml"
    registry_file.write_text(yaml.safe_dump(CITY))
    start = (now_ms() // 60_000 - 90) * 60_000
    hour = {  # one reading a minute: bumps too short for `for`, incidents, escalations
        "WC-0001-OD-1": [6.0 if 20 <= m < 26 else 3.0 if m % 15 < 6 else 1.0 for m in range(60)],
        "TS-0001-OD-1": [2.5 if m % 10 < 2 else 1.0 for m in range(60)],
    }
    registry = Registry.from_dict(CITY)
    live = AlertEngine.open(rules_file, registry, tmp_path / "live-state")
    expected = []  # the same readings fed live, as they were measured
    for minute in range(60):
        for device_id, values in hour.items():
            ts = start + minute * 60_000
            changes = live.on_reading(registry.devices[device_id], odor(values[minute]), ts, ts)
            expected += [(e.device_id, e.state, e.severity, e.value, e.ts_ms) for e in changes]
    live.close()
    assert len(expected) >= 8

    ingest = run_ingest(alerts=rules_file, registry=registry_file)
    assert ingest.stop() == 0  # away for the hour: the broker keeps its session's readings
    for device_id, values in hour.items():
        site = device_id.split("-OD")[0]
        for minute, value in enumerate(values):
            alerts_seen.publish(f"{T}/{site}/odor/{device_id}/telemetry",
                                {"nh3_ppm": value, "ts": start + minute * 60_000})
    ingest.restart()
    events = wait_alerts(alerts_seen, len(expected), rule="odor_nh3_high", timeout=30)
    got = [(e["device_id"], e["state"], e["severity"], e["value"]) for e in events]
    assert sorted(got) == sorted(x[:4] for x in expected)
    resolved = {rfc3339(x[4]) for x in expected if x[1] == "resolved"}
    assert {e["resolved_at"] for e in events if e["state"] == "resolved"} == resolved
    time.sleep(0.5)
    assert len(alerts(alerts_seen.messages, rule="odor_nh3_high")) == len(expected)
