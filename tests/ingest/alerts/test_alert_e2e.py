"""Alerts through the real `sanitel ingest` process, real mosquitto and real influxd."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_city import CITY, E2E_RULES, odor
from alert_hooks import Hook

from devices.sites import Registry
from ingest.alerts import AlertEngine
from ingest.alerts.events import rfc3339

ROOT = Path(__file__).resolve().parents[3]
T = "sanitation/v1"
SPEC_KEYS = {"alert_id", "rule", "severity", "state", "site_id", "device_id", "device_type",
             "field", "value", "threshold", "started_at", "resolved_at", "message"}



class Town:
    """The test city under ids of this test's own: the session's broker keeps retained
    statuses of other tests' devices, and those must not show up here."""

    def __init__(self, directory: Path) -> None:
        tag = uuid.uuid4().hex[:6].upper()
        text = json.dumps(CITY).replace("WC-0001", f"WC-{tag}").replace("TS-0001", f"TS-{tag}")
        self.tag = tag
        self.city: dict[str, Any] = json.loads(text)
        self.path = directory / "registry-town.yaml"
        self.write()

    def write(self) -> None:
        self.path.write_text(yaml.safe_dump(self.city))

    def id(self, device_id: str) -> str:
        """This town's id of a device of `alert_city.CITY`, e.g. 'WC-0001-OD-1'."""
        return device_id.replace("-0001", f"-{self.tag}", 1)

    def topic(self, device_id: str, kind: str = "telemetry") -> str:
        real = self.id(device_id)
        for site in self.city["sites"]:
            for device in site["devices"]:
                if device["id"] == real:
                    return f"{T}/{site['id']}/{device['type']}/{real}/{kind}"
        raise KeyError(device_id)


@pytest.fixture
def town(tmp_path: Path) -> Town:
    return Town(tmp_path)


@pytest.fixture
def alerts_seen(mqtt: Any) -> Any:
    mqtt.subscribe(f"{T}/_alerts/#")
    return mqtt


def now_ms() -> int:
    return int(time.time() * 1000)


def alerts(messages: list[tuple[str, bytes, bool]], device: str | tuple[str, ...] | None = None,
           rule: str | None = None) -> list[dict[str, Any]]:
    """The alert events among `messages`, of one device (or several) and one rule."""
    devices = (device,) if isinstance(device, str) else device
    out = []
    for topic, payload, _ in messages:
        if not topic.startswith(f"{T}/_alerts/"):
            continue
        event = json.loads(payload)
        if (devices is None or event["device_id"] in devices) and (rule is None
                                                                   or event["rule"] == rule):
            out.append(event)
    return out


def wait_alerts(mqtt: Any, count: int, device: str | tuple[str, ...] | None = None,
                rule: str | None = None, timeout: float = 15) -> list[dict[str, Any]]:
    got = mqtt.wait_for(lambda m: len(alerts(m, device, rule)) >= count, timeout)
    return alerts(got, device, rule)


def test_every_change_published_with_every_key_and_stored(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path, town: Town) -> None:
    ingest = run_ingest(alerts=rules_file, registry=town.path)
    od1 = town.id("WC-0001-OD-1")
    ts = now_ms() - 10_000
    for i, value in enumerate([3.0, 6.0, 1.0]):
        alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": value, "ts": ts + i * 1000})
    events = wait_alerts(alerts_seen, 3, od1, "odor_nh3_high")
    assert [(e["state"], e["severity"]) for e in events] == [
        ("firing", "warning"), ("firing", "critical"), ("resolved", "critical")]
    assert len({e["alert_id"] for e in events}) == 1
    for event in events:
        assert event.keys() >= SPEC_KEYS
        assert event["site_id"] == town.id("WC-0001") and event["device_type"] == "odor"
        assert event["field"] == "nh3_ppm" and "People's Park North" in event["message"]
    assert (events[0]["value"], events[0]["threshold"]) == (3.0, 2.0)
    assert events[2]["resolved_at"] is not None
    # the `alerts` measurement: the dashboards' "active" query sees nothing left firing
    # (4 points: warning firing; warning resolved + critical firing; critical resolved)
    rows_of(f"SELECT state FROM alerts WHERE device_id = '{od1}'", ingest.database, count=4)
    rows = rows_of("SELECT last(state) AS state FROM alerts WHERE rule = 'odor_nh3_high' "
                   "GROUP BY severity", ingest.database, count=2)
    assert {r["severity"]: r["state"] for r in rows} == {"warning": "resolved",
                                                          "critical": "resolved"}
    fired = rows_of("SELECT * FROM alerts WHERE state = 'firing'", ingest.database, count=2)
    assert fired[0]["time"] == ts and fired[0]["value"] == 3.0 and fired[0]["threshold"] == 2.0


def test_ack_by_topic_and_by_cli(run_ingest: Any, alerts_seen: Any, rules_file: Path,
                                 town: Town) -> None:
    ingest = run_ingest(alerts=rules_file, registry=town.path)
    od1, ts_od = town.id("WC-0001-OD-1"), town.id("TS-0001-OD-1")
    ts = now_ms() - 5_000
    alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": 3.0, "ts": ts})
    alerts_seen.publish(town.topic("TS-0001-OD-1"), {"nh3_ppm": 3.0, "ts": ts})
    first = wait_alerts(alerts_seen, 1, od1, "odor_nh3_high")[0]["alert_id"]
    second = wait_alerts(alerts_seen, 1, ts_od, "odor_nh3_high")[0]["alert_id"]

    alerts_seen.publish(f"{T}/_ack", {"alert_id": first, "by": "li.wei"})
    acked = wait_alerts(alerts_seen, 2, od1, "odor_nh3_high")[1]
    assert (acked["alert_id"], acked["state"], acked["acknowledged_by"]) == (
        first, "acknowledged", "li.wei")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sanitel.cli", "alerts", *args],
                              env=ingest.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False)

    result = cli("ack", second, "--by", "zhang.min")
    assert result.returncode == 0, result.stderr
    acked = wait_alerts(alerts_seen, 2, ts_od, "odor_nh3_high")[1]
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
    alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": 3.5, "ts": ts + 1000})
    alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": 1.0, "ts": ts + 2000})
    events = wait_alerts(alerts_seen, 3, od1, "odor_nh3_high")
    assert [e["state"] for e in events] == ["firing", "acknowledged", "resolved"]


def test_last_will_and_silence_both_open_offline(
        run_ingest: Any, alerts_seen: Any, rules_file: Path, town: Town) -> None:
    sprayer = town.city["sites"][0]["devices"][2]
    assert sprayer["id"] == town.id("WC-0001-SP-1")
    sprayer["interval_s"] = 1  # offline after 3 s of silence
    town.write()
    run_ingest(alerts=rules_file, registry=town.path)
    od1, sp1 = town.id("WC-0001-OD-1"), town.id("WC-0001-SP-1")

    alerts_seen.publish(town.topic("WC-0001-OD-1", "status"), {"online": False})
    lwt = wait_alerts(alerts_seen, 1, od1, "offline")[0]
    assert (lwt["state"], lwt["field"], lwt["value"]) == ("firing", "online", False)
    alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": 1.0})
    back = wait_alerts(alerts_seen, 2, od1, "offline")[1]
    assert (back["alert_id"], back["state"]) == (lwt["alert_id"], "resolved")

    silent = wait_alerts(alerts_seen, 1, sp1, "offline")[0]
    assert silent["state"] == "firing" and silent["threshold"] == 3.0
    assert "No data for" in silent["message"]
    alerts_seen.publish(town.topic("WC-0001-SP-1"), {"liquid_pct": 80})
    assert wait_alerts(alerts_seen, 2, sp1, "offline")[1]["state"] == "resolved"
    # the 60 s devices are not offline after a few seconds
    assert alerts(alerts_seen.messages, town.id("TS-0001-ST-1")) == []


def distinct(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event once: an event is delivered again after a crash until it was confirmed
    (consumers drop repeats by `event_id`)."""
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        seen.setdefault(event["event_id"], event)
    return list(seen.values())


def test_kill_9_with_incident_open_no_refire_one_resolve(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path, town: Town) -> None:
    ingest = run_ingest(alerts=rules_file, registry=town.path)
    od1, topic = town.id("WC-0001-OD-1"), town.topic("WC-0001-OD-1")
    ts = now_ms() - 60_000
    alerts_seen.publish(topic, {"nh3_ppm": 3.0, "ts": ts, "seq": 1})
    fired = wait_alerts(alerts_seen, 1, od1)[0]
    rows_of("SELECT * FROM alerts", ingest.database)
    ingest.kill()
    ingest.restart()
    for seq in range(2, 6):
        alerts_seen.publish(topic, {"nh3_ppm": 3.0 + seq / 10, "ts": ts + seq * 1000, "seq": seq})
    rows_of("SELECT nh3_ppm FROM odor", ingest.database, count=5)
    time.sleep(1.0)  # give a wrong re-fire the time to show up
    # the killed run may not have confirmed the firing: then it comes again, as itself
    assert {e["event_id"] for e in alerts(alerts_seen.messages, od1)} == {fired["event_id"]}
    alerts_seen.publish(topic, {"nh3_ppm": 0.5, "ts": ts + 10_000, "seq": 10})
    alerts_seen.wait_for(lambda m: len(distinct(alerts(m, od1))) >= 2)
    events = distinct(alerts(alerts_seen.messages, od1))
    assert [(e["alert_id"], e["state"]) for e in events] == [
        (fired["alert_id"], "firing"), (fired["alert_id"], "resolved")]
    time.sleep(0.5)
    assert len(distinct(alerts(alerts_seen.messages, od1))) == 2


@pytest.fixture
def webhook_servers() -> Iterator[tuple[Hook, Hook]]:
    stuck, good = Hook([200], hang=True), Hook([200])
    yield stuck, good
    stuck.close()
    good.close()


def test_hanging_webhook_does_not_slow_ingest(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path, town: Town,
        webhook_servers: tuple[Hook, Hook]) -> None:
    stuck, good = webhook_servers  # `stuck` holds every request for 30 s
    ingest = run_ingest(alerts=rules_file, registry=town.path, webhooks__timeout_s=60,
                        webhooks__urls=json.dumps([stuck.url, good.url]))
    topic = town.topic("WC-0001-OD-1")
    ts = now_ms() - 60_000
    started = time.monotonic()
    for i in range(40):  # every reading flips battery_low: 40 alert events
        battery = 5 if i % 2 == 0 else 90
        alerts_seen.publish(topic, {"nh3_ppm": 1.0, "battery_pct": battery, "ts": ts + i, "seq": i})
    for i in range(40, 400):
        alerts_seen.publish(topic, {"nh3_ppm": 1.0, "ts": ts + i, "seq": i})
    rows_of("SELECT nh3_ppm FROM odor", ingest.database, count=400, timeout=20)
    stored_s = time.monotonic() - started
    assert stuck.arrived.is_set() and not stuck.release.is_set()
    assert len(wait_alerts(alerts_seen, 40, town.id("WC-0001-OD-1"), "battery_low")) == 40
    deadline = time.monotonic() + 10
    while len(good.bodies) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(good.bodies) == 40
    # all stored well inside the 30 s the stuck hook holds on
    assert stored_s < 20


def test_backlog_of_an_hour_replayed_at_once_gives_the_live_incidents(
        run_ingest: Any, alerts_seen: Any, tmp_path: Path, town: Town) -> None:
    rules = copy.deepcopy(E2E_RULES)
    rules["rules"]["odor_nh3_high"]["for"] = "2m"
    rules_file = tmp_path / "alerts-for.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    start = (now_ms() // 60_000 - 90) * 60_000
    hour = {  # one reading a minute: bumps too short for `for`, incidents, escalations
        "WC-0001-OD-1": [6.0 if 20 <= m < 26 else 3.0 if m % 15 < 6 else 1.0 for m in range(60)],
        "TS-0001-OD-1": [2.5 if m % 10 < 2 else 1.0 for m in range(60)],
    }
    registry = Registry.from_dict(town.city)
    live = AlertEngine.open(rules_file, registry, tmp_path / "live-state")
    expected = []  # the same readings fed live, as they were measured
    for minute in range(60):
        for device_id, values in hour.items():
            ts = start + minute * 60_000
            changes = live.on_reading(registry.devices[town.id(device_id)], odor(values[minute]),
                                      ts, ts)
            expected += [(e.device_id, e.state, e.severity, e.value, e.ts_ms) for e in changes]
    live.close()
    assert len(expected) >= 8

    ingest = run_ingest(alerts=rules_file, registry=town.path)
    assert ingest.stop() == 0  # away for the hour: the broker keeps its session's readings
    for device_id, values in hour.items():
        for minute, value in enumerate(values):
            alerts_seen.publish(town.topic(device_id),
                                {"nh3_ppm": value, "ts": start + minute * 60_000})
    ingest.restart()
    ours = tuple(town.id(device_id) for device_id in hour)
    events = wait_alerts(alerts_seen, len(expected), ours, "odor_nh3_high", timeout=30)
    got = [(e["device_id"], e["state"], e["severity"], e["value"]) for e in events]
    assert sorted(got) == sorted(x[:4] for x in expected)
    resolved = {rfc3339(x[4]) for x in expected if x[1] == "resolved"}
    assert {e["resolved_at"] for e in events if e["state"] == "resolved"} == resolved
    time.sleep(0.5)
    assert len(alerts(alerts_seen.messages, ours, "odor_nh3_high")) == len(expected)


def outbox_size(state_dir: Path) -> int:
    with sqlite3.connect(f"file:{state_dir / 'alerts.sqlite3'}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT count(*) FROM outbox").fetchone()
    assert isinstance(count, int)
    return count


def test_an_event_left_unconfirmed_is_delivered_at_start_and_then_only_once(
        run_ingest: Any, alerts_seen: Any, rows_of: Any, rules_file: Path, town: Town,
        tmp_path: Path) -> None:
    # A run that committed an event and died before delivering it: the engine in this
    # process fires, and is dropped without anything confirming the event.
    data_dir = tmp_path / "data-outbox"
    state_dir = data_dir / "state"  # Settings.state_dir
    registry = Registry.from_dict(town.city)
    od1 = town.id("WC-0001-OD-1")
    ts = now_ms() - 60_000
    engine = AlertEngine.open(rules_file, registry, state_dir)
    (lost,) = engine.on_reading(registry.devices[od1], odor(3.5), ts, ts)
    del engine
    assert outbox_size(state_dir) == 1

    ingest = run_ingest(alerts=rules_file, registry=town.path, data_dir=data_dir)
    (event,) = wait_alerts(alerts_seen, 1, od1)
    assert event == json.loads(lost.payload())
    assert event["event_id"] == lost.event_id and event.keys() >= SPEC_KEYS
    (row,) = rows_of(f"SELECT * FROM alerts WHERE alert_id = '{lost.alert_id}'",
                     ingest.database)
    assert (row["time"], row["state"], row["severity"], row["value"], row["threshold"]) == (
        ts, "firing", "warning", 3.5, 2.0)
    # delivered and stored: the pipeline confirms it within a second or two
    deadline = time.monotonic() + 15
    while outbox_size(state_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert outbox_size(state_dir) == 0

    assert ingest.stop() == 0
    ingest.restart()
    alerts_seen.publish(town.topic("WC-0001-OD-1"), {"nh3_ppm": 3.6, "ts": ts + 1000})
    (reading,) = rows_of(f"SELECT nh3_ppm FROM odor WHERE device_id = '{od1}'",
                         ingest.database)
    assert reading["nh3_ppm"] == 3.6  # the restarted run is up and handling readings
    time.sleep(1.0)  # give a wrong second delivery the time to show up
    assert len(alerts(alerts_seen.messages, od1)) == 1
    assert len(rows_of("SELECT * FROM alerts", ingest.database)) == 1
