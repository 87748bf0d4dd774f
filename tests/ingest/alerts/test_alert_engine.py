"""The incident engine: `for`, hysteresis, levels, ack, reading time, restarts, offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from alert_city import CITY, MINUTE, RULES, T0, EngineFactory, odor

from devices.sites import Registry
from devices.sprayer import SprayerReading
from devices.station_terminal import StationTerminalReading
from ingest.alerts import AlertEngine, AlertEvent, AlertStoreError

REG = Registry.from_dict(CITY)
OD1 = REG.devices["WC-0001-OD-1"]
OD2 = REG.devices["WC-0001-OD-2"]
SP1 = REG.devices["WC-0001-SP-1"]
ST1 = REG.devices["TS-0001-ST-1"]
TS_OD = REG.devices["TS-0001-OD-1"]


def feed(engine: AlertEngine, values: list[float], start: int = T0, step: int = MINUTE,
         device: Any = OD1, received: int | None = None) -> list[AlertEvent]:
    """Readings every `step` from `start`; received as measured unless `received` is given."""
    events: list[AlertEvent] = []
    for i, value in enumerate(values):
        ts = start + i * step
        events += engine.on_reading(device, odor(value), ts, ts if received is None else received)
    return events


def states(events: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(e.state, e.severity) for e in events]


def test_value_held_less_than_for_gives_no_incident(make_engine: EngineFactory) -> None:
    engine = make_engine()
    # above 2.0 at 0, 1 min; back to normal at 2 min: held 1 min < for 2 min
    assert feed(engine, [1.0, 2.5, 3.0, 1.0, 2.5, 1.0]) == []
    assert engine.active() == []


def test_fires_once_when_held_for_the_duration(make_engine: EngineFactory) -> None:
    engine = make_engine()
    events = feed(engine, [1.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])
    assert states(events) == [("firing", "warning")]
    fired = events[0]
    assert fired.ts_ms == T0 + 3 * MINUTE  # first above at 1 min, + 2 min
    assert fired.value == 2.7 and fired.threshold == 2.0
    assert fired.started_at == "2025-11-24T16:03:00Z" and fired.resolved_at is None
    assert "People's Park North" in fired.message and "NH3 2.7 ppm above 2 ppm" in fired.message
    assert [i.alert_id for i in engine.active()] == [fired.alert_id]


def test_flicker_around_threshold_is_one_incident(make_engine: EngineFactory) -> None:
    engine = make_engine()
    flicker = [2.1, 1.9, 2.2, 1.6, 2.05, 1.95] * 5  # never back below recover 1.5
    events = feed(engine, [2.5, 2.5, 2.5, *flicker, 1.0])
    assert states(events) == [("firing", "warning"), ("resolved", "warning")]
    assert len({e.alert_id for e in events}) == 1
    # flicker around the bound after the end: never held for 2 min, no new incident
    assert feed(engine, [2.1, 1.4] * 10, start=T0 + 60 * MINUTE) == []


def test_escalation_and_back_stay_one_incident(make_engine: EngineFactory) -> None:
    engine = make_engine()
    events = feed(engine, [3, 3, 3, 6, 6, 6, 4.5, 3, 3, 1])
    assert states(events) == [
        ("firing", "warning"), ("firing", "critical"), ("firing", "warning"),
        ("resolved", "warning"),
    ]
    assert len({e.alert_id for e in events}) == 1
    escalate, deescalate = events[1], events[2]
    assert escalate.threshold == 5.0 and deescalate.threshold == 4.0
    # 4.5 is between critical's recover (4.0) and bound: still critical (hysteresis)
    assert deescalate.value == 3
    # severity is a tag: the series left behind gets a `resolved` point
    old, new = escalate.line().split("\n")
    assert "severity=warning" in old and 'state="resolved"' in old
    assert "severity=critical" in new and 'state="firing"' in new
    assert len(events[0].line().split("\n")) == 1


def test_ack_silences_until_resolve(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fired = feed(engine, [3, 3, 3])[0]
    assert engine.on_ack("no-such-id", "li.wei", T0) == []
    acked = engine.on_ack(fired.alert_id, "li.wei", T0 + 10 * MINUTE)
    assert states(acked) == [("acknowledged", "warning")]
    assert acked[0].acknowledged_by == "li.wei" and acked[0].ts_ms == T0 + 10 * MINUTE
    assert engine.on_ack(fired.alert_id, "zhang.min", T0 + 11 * MINUTE) == []
    assert feed(engine, [3, 3.5], start=T0 + 3 * MINUTE) == []
    later = feed(engine, [6, 6, 6, 1], start=T0 + 5 * MINUTE)
    assert states(later) == [("acknowledged", "critical"), ("resolved", "critical")]
    assert {e.alert_id for e in later} == {fired.alert_id}
    assert engine.on_ack(fired.alert_id, "li.wei", T0 + 20 * MINUTE) == []
    assert engine.active() == []


def test_out_of_order_readings_open_and_close_nothing(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fired = feed(engine, [3, 3, 3])  # fires at T0 + 2 min
    assert len(fired) == 1
    # late readings from before: low (would resolve), high (would re-fire)
    assert feed(engine, [0.5], start=T0 + MINUTE // 2) == []
    assert feed(engine, [0.5, 9, 9, 9], start=T0 - 10 * MINUTE) == []
    assert [i.alert_id for i in engine.active()] == [fired[0].alert_id]
    assert states(feed(engine, [1.0], start=T0 + 3 * MINUTE)) == [("resolved", "warning")]


def test_backlog_replayed_at_once_equals_live(make_engine: EngineFactory, tmp_path: Path
                                              ) -> None:
    hour = [1.0 + (i % 37) / 6 if (i // 20) % 2 else 1.0 for i in range(60)]
    other = [4.0 if 10 <= i < 30 else 1.0 for i in range(60)]

    def summary(events: list[AlertEvent]) -> list[tuple[Any, ...]]:
        # the other devices of the city go `offline` (wall clock) in the live run: not compared
        return sorted((e.device_id, e.rule, e.state, e.severity, e.ts_ms, e.value)
                      for e in events if e.device_id in ("WC-0001-OD-1", "WC-0001-OD-2"))

    live = make_engine(state_dir=tmp_path / "live")
    live_events: list[AlertEvent] = []
    for i in range(60):  # both devices interleaved, received as measured, swept each minute
        ts = T0 + i * MINUTE
        live_events += live.on_reading(OD1, odor(hour[i]), ts, ts)
        live_events += live.on_reading(OD2, odor(other[i]), ts + 1000, ts + 1000)
        live_events += live.sweep(ts + 2000)
    replay = make_engine(state_dir=tmp_path / "replay")
    now = T0 + 5 * 60 * MINUTE
    replay.sweep(now)
    replay_events = (feed(replay, hour, device=OD1, received=now)
                     + feed(replay, other, T0 + 1000, device=OD2, received=now))
    replay_events += replay.sweep(now + 1000)
    assert len(live_events) >= 4
    assert summary(replay_events) == summary(live_events)


def test_restart_with_incident_open_neither_refires_nor_forgets(
        make_engine: EngineFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    fired = feed(first, [3, 3, 3])[0]
    first.close()
    second = make_engine(state_dir=state)
    assert [i.alert_id for i in second.active()] == [fired.alert_id]
    # no offline storm at boot, though nothing was heard for hours: counting starts now
    assert second.sweep(T0 + 600 * MINUTE) == []
    # redelivered readings from before the restart, then more of the same: nothing
    assert feed(second, [3, 3, 3, 3, 3, 3]) == []
    resolved = feed(second, [6, 1], start=T0 + 6 * MINUTE)
    assert states(resolved) == [("resolved", "warning")]
    assert resolved[0].alert_id == fired.alert_id
    second.close()
    assert make_engine(state_dir=state).active() == []


def test_restart_restores_acknowledgement_and_severity(make_engine: EngineFactory,
                                                       tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    fired = feed(first, [6, 6, 6])[0]
    assert fired.severity == "critical"
    first.on_ack(fired.alert_id, "ops", T0 + 5 * MINUTE)
    first.close()
    second = make_engine(state_dir=state)
    (incident,) = second.active()
    assert (incident.severity, incident.state, incident.acknowledged_by) == (
        "critical", "acknowledged", "ops")
    events = feed(second, [3, 1], start=T0 + 10 * MINUTE)
    assert states(events) == [("acknowledged", "warning"), ("resolved", "warning")]


def test_kill_9_right_after_an_event_keeps_the_incident(make_engine: EngineFactory,
                                                        tmp_path: Path) -> None:
    state, rules = tmp_path / "state", tmp_path / "rules.yaml"
    rules.write_bytes(orjson.dumps(RULES))  # JSON is YAML
    city = tmp_path / "city.yaml"
    city.write_bytes(orjson.dumps(CITY))
    script = f"""
import os, signal, sys
from pathlib import Path
from devices.odor import OdorReading
from devices.sites import Registry
from ingest.alerts import AlertEngine
reg = Registry.load({str(city)!r})
engine = AlertEngine.open(Path({str(rules)!r}), reg, Path({str(state)!r}))
device = reg.devices["WC-0001-OD-1"]
for i in range(3):
    for event in engine.on_reading(device, OdorReading(nh3_ppm=9.0), {T0} + i * 60000, 0):
        sys.stdout.write(event.alert_id + "\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[3], timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    alert_id = proc.stdout.strip()
    engine = make_engine(state_dir=state)
    assert [i.alert_id for i in engine.active()] == [alert_id]
    assert feed(engine, [9.0, 9.0, 9.0]) == []  # the broker redelivers: no re-fire
    assert os.path.exists(state / "alerts.sqlite3")


def test_offline_by_last_will_and_back(make_engine: EngineFactory) -> None:
    engine = make_engine()
    down = engine.on_status(OD1, False, T0, T0)
    assert states(down) == [("firing", "warning")]
    assert (down[0].rule, down[0].field, down[0].value) == ("offline", "online", False)
    assert engine.on_status(OD1, False, T0 + 1000, T0 + 1000) == []  # retained LWT again
    up = engine.on_reading(OD1, odor(1.0), T0 + MINUTE, T0 + MINUTE)
    assert states(up) == [("resolved", "warning")] and up[0].alert_id == down[0].alert_id
    again = engine.on_status(OD1, False, T0 + 2 * MINUTE, T0 + 2 * MINUTE)
    assert engine.on_status(OD1, True, T0 + 3 * MINUTE, T0 + 3 * MINUTE)[0].state == "resolved"
    assert again[0].alert_id != down[0].alert_id


def test_offline_by_silence_on_the_wall_clock(make_engine: EngineFactory) -> None:
    engine = make_engine()
    assert engine.sweep(T0) == []  # start: every device counts from now
    engine.on_reading(OD1, odor(1.0), T0 - 99 * MINUTE, T0 + MINUTE)  # old ts, heard now
    silent = engine.sweep(T0 + 3 * MINUTE + 1)
    # OD1 was heard at T0 + 1 min; the others (60 s interval) are silent 3 min; SP-1 is 300 s
    assert sorted(e.device_id for e in silent) == ["TS-0001-OD-1", "TS-0001-ST-1",
                                                   "WC-0001-OD-2", "WC-0001-PC-1"]
    assert {e.rule for e in silent} == {"offline"}
    assert all(e.threshold == 180.0 for e in silent)
    assert [e.device_id for e in engine.sweep(T0 + 4 * MINUTE + 2)] == ["WC-0001-OD-1"]
    assert engine.sweep(T0 + 14 * MINUTE) == []  # each fires once; SP-1 has 15 min
    back = engine.on_reading(OD2, odor(1.0), T0 + 5 * MINUTE, T0 + 5 * MINUTE)
    assert states(back) == [("resolved", "warning")] and back[0].device_id == "WC-0001-OD-2"


def test_equality_rules(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fault = engine.on_reading(ST1, StationTerminalReading(fill_pct=40, compactor="fault"), T0, T0)
    assert [(e.rule, e.severity, e.value, e.threshold) for e in fault] == [
        ("station_compactor_fault", "critical", "fault", "fault")]
    assert engine.on_reading(ST1, StationTerminalReading(fill_pct=40, compactor="fault"),
                             T0 + 1, T0) == []
    assert engine.on_reading(ST1, StationTerminalReading(fill_pct=41), T0 + 2, T0) == []
    ok = engine.on_reading(ST1, StationTerminalReading(fill_pct=40, compactor="idle"), T0 + 3, T0)
    assert states(ok) == [("resolved", "critical")]
    empty = engine.on_reading(SP1, SprayerReading(liquid_pct=0, state="empty"), T0, T0)
    assert sorted(e.rule for e in empty) == ["sprayer_fault", "sprayer_liquid_low"]


def test_battery_low_applies_to_every_type(make_engine: EngineFactory) -> None:
    engine = make_engine()
    low = engine.on_reading(ST1, StationTerminalReading(fill_pct=10, battery_pct=9), T0, T0)
    low += engine.on_reading(OD2, odor(0.1, battery_pct=9), T0, T0)
    assert sorted((e.rule, e.device_id) for e in low) == [
        ("battery_low", "TS-0001-ST-1"), ("battery_low", "WC-0001-OD-2")]
    # hysteresis: 20 % is not yet back above 30 %
    assert engine.on_reading(OD2, odor(0.1, battery_pct=20), T0 + 1, T0) == []
    assert states(engine.on_reading(OD2, odor(0.1, battery_pct=80), T0 + 2, T0)) == [
        ("resolved", "warning")]


def test_site_kind_site_and_device_overrides(make_engine: EngineFactory,
                                             city: dict[str, Any]) -> None:
    city["sites"][0]["devices"][1]["alerts"] = {
        "odor_nh3_high": {"levels": {"warning": {"above": 3.5, "recover": 3.0}}}}
    city["sites"][0]["alerts"] = {"battery_low": {"below": 50, "recover": 60}}
    engine = make_engine(city=city)
    reg = Registry.from_dict(city)
    od1, od2 = reg.devices["WC-0001-OD-1"], reg.devices["WC-0001-OD-2"]
    assert feed(engine, [3, 3, 3], device=od2) == []  # its own warning bound is 3.5
    assert feed(engine, [4, 4, 4], start=T0 + 3 * MINUTE, device=od2)[0].threshold == 3.5
    assert feed(engine, [3, 3, 3], device=od1)[0].threshold == 2.0
    # transfer station odor: warning at 6 ppm by the rule's site_kind override
    assert feed(engine, [5, 5, 5], device=TS_OD) == []
    assert feed(engine, [7, 7, 7], start=T0 + 3 * MINUTE, device=TS_OD)[0].threshold == 6.0
    # the toilet site's battery bound is 50 %
    events = engine.on_reading(od1, odor(3, battery_pct=40), T0 + 9 * MINUTE, T0)
    assert [e.rule for e in events] == ["battery_low"]


def test_disabled_rule_and_orphaned_incident_resolved_at_start(
        make_engine: EngineFactory, tmp_path: Path, rules: dict[str, Any]) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    fired = feed(first, [3, 3, 3])[0]
    first.close()
    rules["rules"]["odor_nh3_high"]["enabled"] = False
    second = make_engine(rules=rules, state_dir=state)
    assert second.active() == []
    (event,) = second.sweep(T0)
    assert (event.alert_id, event.state) == (fired.alert_id, "resolved")
    assert feed(second, [9, 9, 9, 9]) == []


def test_every_event_carries_every_key(make_engine: EngineFactory) -> None:
    engine = make_engine()
    events = feed(engine, [3, 3, 3, 6, 6, 6, 1])
    events += engine.on_status(OD2, False, T0, T0)
    keys = {"alert_id", "rule", "severity", "state", "site_id", "device_id", "device_type",
            "field", "value", "threshold", "started_at", "resolved_at", "message"}
    for event in events:
        payload = orjson.loads(event.payload())
        assert keys <= payload.keys()
        where = f"{event.site_id}/{event.device_id}/{event.rule}"
        assert event.topic() == f"sanitation/v1/_alerts/{where}"
        assert event.line().startswith("alerts,device_id=")
    assert orjson.loads(events[-2].payload())["resolved_at"] == "2025-11-24T16:06:00Z"


def test_a_failing_store_does_not_stop_alerts_and_catches_up(
        make_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    engine = make_engine(state_dir=state)
    store = engine._store
    real_save = store.save

    def disk_full(*_: object) -> None:
        raise AlertStoreError(f"alert store {store.path}: write failed (database or disk is full)")

    monkeypatch.setattr(store, "save", disk_full)
    fired = feed(engine, [3, 3, 3])
    assert states(fired) == [("firing", "warning")]  # still announced
    assert engine.sweep(T0) == []
    monkeypatch.setattr(store, "save", real_save)
    engine.sweep(T0 + 1000)  # retried: written now
    engine.close()
    reopened = make_engine(state_dir=state)
    assert [i.alert_id for i in reopened.active()] == [fired[0].alert_id]
    assert feed(reopened, [3, 3, 3]) == []  # the device mark was saved too: no re-fire
