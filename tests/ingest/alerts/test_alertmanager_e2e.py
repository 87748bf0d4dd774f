"""Alerts to Alertmanager (SPEC section 11) through the real `sanitel ingest`, real
mosquitto, influxd and a real Prometheus Alertmanager 0.25."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from alert_hooks import Hook

from ingest.alerts.incident_db import read_open_incidents
from sanitel.local_servers import Alertmanager

T = "sanitation/v1"
OD1, OD1_TOPIC = "WC-0001-OD-1", f"{T}/WC-0001/odor/WC-0001-OD-1/telemetry"
TS_OD, TS_OD_TOPIC = "TS-0001-OD-1", f"{T}/TS-0001/odor/TS-0001-OD-1/telemetry"
ST1_TOPIC = f"{T}/TS-0001/station_terminal/TS-0001-ST-1/telemetry"
SP1_TOPIC = f"{T}/WC-0001/sprayer/WC-0001-SP-1/telemetry"
LABELS = {"alertname", "severity", "site_id", "device_id", "device_type", "district",
          "site_kind"}



def now_ms() -> int:
    return int(time.time() * 1000)


def wait_until(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}; last: {last!r}")


def am_alerts(am: Alertmanager) -> dict[str, dict[str, Any]]:
    """Alertmanager's alerts (active, silenced, inhibited) by Sanitel's alert_id."""
    return {a["annotations"]["alert_id"]: a for a in am.alerts()}


def fired(mqtt: Any, device_id: str, rule: str, but: str = "") -> dict[str, Any]:
    """The first `firing` event of `rule` on `device_id` seen on the `_alerts` topics (of
    another incident than `but`)."""
    def find() -> dict[str, Any] | None:
        for topic, payload, _ in mqtt.messages:
            if topic == f"{T}/_alerts/{device_id.rsplit('-', 2)[0]}/{device_id}/{rule}":
                event = json.loads(payload)
                if event["state"] == "firing" and event["alert_id"] != but:
                    return event  # type: ignore[no-any-return]
        return None
    found: dict[str, Any] = wait_until(f"{rule} firing on {device_id}", find)
    return found


def test_incident_in_alertmanager_with_every_label_then_resolved(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path) -> None:
    mqtt.subscribe(f"{T}/_alerts/#")
    run_ingest(alerts=rules_file, alertmanager__urls=json.dumps([alertmanager.url]),
               grafana__url="http://grafana.city.test:3000/")
    ts = now_ms() - 5_000
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.4, "ts": ts})
    event = fired(mqtt, OD1, "odor_nh3_high")
    alert = wait_until("the incident in Alertmanager",
                       lambda: am_alerts(alertmanager).get(event["alert_id"]))
    assert alert["labels"] == {
        "alertname": "odor_nh3_high", "severity": "warning", "site_id": "WC-0001",
        "device_id": OD1, "device_type": "odor", "district": "Jinjiang", "site_kind": "toilet"}
    notes = alert["annotations"]
    assert (notes["summary"], notes["value"], notes["threshold"], notes["alert_id"]) == (
        event["message"], "3.4", "2", event["alert_id"])
    link = httpx.URL(notes["dashboard"])
    assert str(link).startswith("http://grafana.city.test:3000/d/sanitel-public-toilets?")
    assert link.params["var-site"] == "WC-0001" and link.params["var-district"] == "Jinjiang"
    assert int(link.params["from"]) < ts < now_ms() and link.params["to"] == "now"
    assert alert["status"]["state"] == "active"
    assert alert["startsAt"].startswith(event["started_at"].rstrip("Z"))

    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 1.0, "ts": ts + 1000})
    wait_until("the incident resolved in Alertmanager",
               lambda: event["alert_id"] not in am_alerts(alertmanager))


def test_escalation_moves_the_alert_and_resolves_the_severity_it_left(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path) -> None:
    run_ingest(alerts=rules_file, alertmanager__urls=json.dumps([alertmanager.url]))
    ts = now_ms() - 5_000
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "ts": ts})
    wait_until("warning", lambda: [a for a in alertmanager.alerts()
                                   if a["labels"]["severity"] == "warning"])
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 6.0, "ts": ts + 1000})
    alerts = wait_until("critical only", lambda: (lambda got: got if [
        a["labels"]["severity"] for a in got] == ["critical"] else None)(alertmanager.alerts()))
    assert alerts[0]["labels"]["alertname"] == "odor_nh3_high"
    assert not alerts[0].get("generatorURL")  # no grafana.url, no link
    assert "dashboard" not in alerts[0]["annotations"]


def test_ack_is_a_silence_by_the_crew_expired_on_resolve_and_crews_own_kept(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path) -> None:
    mqtt.subscribe(f"{T}/_alerts/#")
    run_ingest(alerts=rules_file, alertmanager__urls=json.dumps([alertmanager.url]))
    ts = now_ms() - 5_000
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "ts": ts})
    alert_id = fired(mqtt, OD1, "odor_nh3_high")["alert_id"]
    wait_until("firing in Alertmanager", lambda: am_alerts(alertmanager).get(alert_id))
    # a crew's own silence on the same device, made in Alertmanager: never ours to touch
    theirs = httpx.post(f"{alertmanager.url}/api/v2/silences", json={
        "matchers": [{"name": "device_id", "value": OD1, "isRegex": False, "isEqual": True}],
        "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "wang.fang", "comment": "cleaning the sensor"}).json()["silenceID"]

    mqtt.publish(f"{T}/_ack", {"alert_id": alert_id, "by": "crew-central"})
    ours = wait_until("a silence by the crew", lambda: [
        s for s in alertmanager.silences()
        if s["createdBy"] == "crew-central" and s["status"]["state"] == "active"])
    assert len(ours) == 1 and alert_id in ours[0]["comment"]
    assert {(m["name"], m["value"], m["isEqual"], m["isRegex"]) for m in ours[0]["matchers"]} == {
        ("alertname", "odor_nh3_high", True, False), ("site_id", "WC-0001", True, False),
        ("device_id", OD1, True, False)}
    silenced = wait_until("the alert silenced", lambda: (lambda a: a if a and ours[0]["id"] in a[
        "status"]["silencedBy"] else None)(am_alerts(alertmanager).get(alert_id)))
    assert silenced["status"]["state"] == "suppressed"

    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 1.0, "ts": ts + 1000})
    wait_until("our silence expired", lambda: {
        s["id"]: s["status"]["state"] for s in alertmanager.silences()}[ours[0]["id"]] ==
        "expired")
    states = {s["id"]: s["status"]["state"] for s in alertmanager.silences()}
    assert states[theirs] == "active"
    assert alert_id not in am_alerts(alertmanager)


def sanitel_state(data_dir: Path) -> dict[str, str | None]:
    """Sanitel's open incidents: alert_id -> acknowledged_by."""
    return {i.alert_id: i.acknowledged_by for i in read_open_incidents(data_dir / "state")}


def alertmanager_state(am: Alertmanager) -> dict[str, str | None]:
    """Alertmanager's alerts: alert_id -> the crew of the active silence on it, if any."""
    by_id = {s["id"]: s["createdBy"] for s in am.silences() if s["status"]["state"] == "active"}
    return {alert_id: next((by_id[s] for s in a["status"]["silencedBy"] if s in by_id), None)
            for alert_id, a in am_alerts(am).items()}


def test_alertmanager_away_for_30_s_ends_with_sanitels_state(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path,
        tmp_path: Path) -> None:
    mqtt.subscribe(f"{T}/_alerts/#")
    run_ingest(alerts=rules_file, alertmanager__urls=json.dumps([alertmanager.url]),
               alertmanager__resend_s=5)
    data_dir = tmp_path / "data-0"
    ts = now_ms() - 60_000
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "ts": ts})      # A: resolves while away
    mqtt.publish(TS_OD_TOPIC, {"nh3_ppm": 3.0, "ts": ts})    # B: acked, resolves while away
    a, b = (fired(mqtt, d, "odor_nh3_high")["alert_id"] for d in (OD1, TS_OD))
    mqtt.publish(f"{T}/_ack", {"alert_id": b, "by": "crew-north"})
    wait_until("A and B (silenced) in Alertmanager",
               lambda: alertmanager_state(alertmanager) == {a: None, b: "crew-north"})

    alertmanager.stop()
    away = time.monotonic()
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 1.0, "ts": ts + 1000})
    mqtt.publish(TS_OD_TOPIC, {"nh3_ppm": 1.0, "ts": ts + 1000})
    mqtt.publish(ST1_TOPIC, {"fill_pct": 10, "battery_pct": 5, "ts": ts + 2000})   # C: acked
    mqtt.publish(SP1_TOPIC, {"liquid_pct": 80, "battery_pct": 5, "ts": ts + 2000})  # D: opens,
    mqtt.publish(SP1_TOPIC, {"liquid_pct": 80, "battery_pct": 90, "ts": ts + 3000})  # resolves
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 6.0, "ts": ts + 4000})  # E: critical at once
    c = fired(mqtt, "TS-0001-ST-1", "battery_low")["alert_id"]
    e = fired(mqtt, OD1, "odor_nh3_high", but=a)
    mqtt.publish(f"{T}/_ack", {"alert_id": c, "by": "crew-north"})
    expected = {c: "crew-north", e["alert_id"]: None}
    wait_until("Sanitel's own state", lambda: sanitel_state(data_dir) == expected)
    time.sleep(max(0.0, 30 - (time.monotonic() - away)))

    alertmanager.start()
    wait_until("Alertmanager back at Sanitel's state",
               lambda: alertmanager_state(alertmanager) == expected, timeout=30)
    assert am_alerts(alertmanager)[e["alert_id"]]["labels"]["severity"] == "critical"
    active = [s for s in alertmanager.silences() if s["status"]["state"] == "active"]
    assert [s["createdBy"] for s in active] == ["crew-north"]
    assert c in active[0]["comment"]


def test_a_hanging_alertmanager_delays_neither_ingest_nor_its_pair(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path,
        rows_of: Any) -> None:
    stuck = Hook([200], hang=True)  # holds every request for 30 s
    try:
        ingest = run_ingest(alerts=rules_file, alertmanager__timeout_s=20,
                            alertmanager__urls=json.dumps([stuck.url, alertmanager.url]))
        ts = now_ms() - 60_000
        started = time.monotonic()
        for i in range(40):  # every reading flips battery_low: 20 incidents
            battery = 5 if i % 2 == 0 else 90
            mqtt.publish(OD1_TOPIC, {"nh3_ppm": 1.0, "battery_pct": battery, "ts": ts + i})
        mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "battery_pct": 5, "ts": ts + 100})
        for i in range(200, 600):
            mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "ts": ts + i})
        rows_of("SELECT nh3_ppm FROM odor", ingest.database, count=441, timeout=20)
        stored_s = time.monotonic() - started
        assert stuck.arrived.is_set() and not stuck.release.is_set()
        alerts = wait_until("the two open incidents in the other Alertmanager", lambda: (
            lambda got: got if {a["labels"]["alertname"] for a in got} == {
                "battery_low", "odor_nh3_high"} else None)(alertmanager.alerts()))
        assert len(alerts) == 2
        assert stored_s < 20  # well inside the 30 s the stuck one holds on
    finally:
        stuck.close()


def test_a_removed_devices_incident_ends_in_alertmanager_with_its_silence(
        run_ingest: Any, mqtt: Any, alertmanager: Alertmanager, rules_file: Path,
        registry_file: Path) -> None:
    mqtt.subscribe(f"{T}/_alerts/#")
    ingest = run_ingest(alerts=rules_file, alertmanager__urls=json.dumps([alertmanager.url]))
    mqtt.publish(OD1_TOPIC, {"nh3_ppm": 3.0, "ts": now_ms() - 5_000})
    alert_id = fired(mqtt, OD1, "odor_nh3_high")["alert_id"]
    mqtt.publish(f"{T}/_ack", {"alert_id": alert_id, "by": "crew-central"})
    silence = wait_until("the ack's silence", lambda: [
        s for s in alertmanager.silences() if s["status"]["state"] == "active"])[0]
    assert ingest.stop() == 0
    city = yaml.safe_load(registry_file.read_text())
    devices = city["sites"][0]["devices"]
    city["sites"][0]["devices"] = [d for d in devices if d["id"] != OD1]
    registry_file.write_text(yaml.safe_dump(city))
    ingest.restart()  # the incident's device is gone: resolved at start
    wait_until("the silence expired", lambda: {
        s["id"]: s["status"]["state"] for s in alertmanager.silences()}[silence["id"]] ==
        "expired")
    wait_until("the alert resolved", lambda: alert_id not in am_alerts(alertmanager))
