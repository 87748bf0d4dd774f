"""The outbox: every event is stored with its incident change and handed out again after a
crash until it is confirmed delivered."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from alert_city import CITY, MINUTE, RULES, T0, EngineFactory, odor

from devices.sites import Registry
from ingest.alerts import AlertEngine, AlertEvent, AlertStoreError

REG = Registry.from_dict(CITY)
OD1 = REG.devices["WC-0001-OD-1"]
OD2 = REG.devices["WC-0001-OD-2"]
ROOT = Path(__file__).resolve().parents[3]


def feed(engine: AlertEngine, values: list[float], start: int = T0) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for i, value in enumerate(values):
        ts = start + i * MINUTE
        events += engine.on_reading(OD1, odor(value), ts, ts)
    return events


def every_kind_of_event(engine: AlertEngine) -> list[AlertEvent]:
    """Fire, escalate (two lines), ack, status, sweep (offline by silence), resolve."""
    events = feed(engine, [3, 3, 3, 6, 6, 6])
    events += engine.on_ack(events[0].alert_id, "li.wei", T0 + 6 * MINUTE)
    events += engine.on_status(OD2, False, T0, T0)
    assert engine.sweep(T0) == []
    events += engine.sweep(T0 + 10 * MINUTE)
    events += feed(engine, [1], start=T0 + 7 * MINUTE)
    return events


def test_events_stay_unconfirmed_until_confirmed(make_engine: EngineFactory) -> None:
    engine = make_engine()
    events = every_kind_of_event(engine)
    assert {"firing", "acknowledged", "resolved"} <= {e.state for e in events}
    assert {"offline", "odor_nh3_high"} <= {e.rule for e in events}
    assert any(e.previous_severity for e in events)
    assert engine.unconfirmed() == events
    engine.confirm([events[1].event_id, events[3].event_id, "no-such-event", "x-1"])
    assert engine.unconfirmed() == [e for i, e in enumerate(events) if i not in (1, 3)]
    engine.confirm([])
    engine.confirm(e.event_id for e in events)
    assert engine.unconfirmed() == []
    later = feed(engine, [3, 3, 3], start=T0 + 20 * MINUTE)
    assert engine.unconfirmed() == later


def test_event_ids_rise_per_incident_and_go_into_the_payload(make_engine: EngineFactory,
                                                              tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    events = feed(first, [3, 3, 3, 6, 6, 6])
    alert_id = events[0].alert_id
    assert [e.event_id for e in events] == [f"{alert_id}-1", f"{alert_id}-2"]
    assert orjson.loads(events[1].payload())["event_id"] == f"{alert_id}-2"
    second = make_engine(state_dir=state)  # a restart: the count goes on from the store
    (resolved,) = feed(second, [1], start=T0 + 9 * MINUTE)
    assert resolved.event_id == f"{alert_id}-3"


def test_reopened_without_close_the_unconfirmed_events_are_identical(
        make_engine: EngineFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    events = every_kind_of_event(first)
    first.confirm([events[0].event_id])
    # no close: the first engine is simply dropped, as a kill -9 would
    second = make_engine(state_dir=state)
    again = second.unconfirmed()
    assert again == events[1:]
    assert [e.line() for e in again] == [e.line() for e in events[1:]]
    assert [e.payload() for e in again] == [e.payload() for e in events[1:]]
    second.confirm([events[2].event_id, events[4].event_id])
    third = make_engine(state_dir=state)
    assert third.unconfirmed() == [e for i, e in enumerate(events) if i not in (0, 2, 4)]


def test_kill_9_right_after_an_event_keeps_it_unconfirmed(make_engine: EngineFactory,
                                                          tmp_path: Path) -> None:
    state, rules = tmp_path / "state", tmp_path / "rules.yaml"
    rules.write_bytes(orjson.dumps(RULES))  # JSON is YAML
    city = tmp_path / "city.yaml"
    city.write_bytes(orjson.dumps(CITY))
    script = f"""
import os, signal, sys
from pathlib import Path
import orjson
from devices.odor import OdorReading
from devices.sites import Registry
from ingest.alerts import AlertEngine
reg = Registry.load({str(city)!r})
engine = AlertEngine.open(Path({str(rules)!r}), reg, Path({str(state)!r}))
device = reg.devices["WC-0001-OD-1"]
for i in range(3):
    for event in engine.on_reading(device, OdorReading(nh3_ppm=9.5), {T0} + i * 60000, 0):
        sys.stdout.buffer.write(orjson.dumps(event) + b"\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                          cwd=ROOT, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    returned = AlertEvent(**orjson.loads(proc.stdout))
    assert returned.state == "firing" and returned.value == 9.5
    engine = make_engine(state_dir=state)
    assert engine.unconfirmed() == [returned]
    assert feed(engine, [9.5, 9.5, 9.5]) == []  # redelivered readings: no second event
    engine.confirm([returned.event_id])
    assert make_engine(state_dir=state).unconfirmed() == []


def test_an_orphan_resolve_is_handed_out_once(make_engine: EngineFactory, tmp_path: Path,
                                              rules: dict[str, Any]) -> None:
    state = tmp_path / "state"
    first = make_engine(state_dir=state)
    fired = feed(first, [3, 3, 3])
    first.confirm(e.event_id for e in fired)
    rules["rules"]["odor_nh3_high"]["enabled"] = False
    second = make_engine(rules=rules, state_dir=state)
    assert second.unconfirmed() == []  # the resolve comes with the next sweep, not twice
    (resolved,) = second.sweep(T0)
    assert resolved.state == "resolved"
    assert second.unconfirmed() == [resolved]
    assert make_engine(rules=rules, state_dir=state).unconfirmed() == [resolved]


def test_a_reading_that_changes_nothing_touches_no_store(
        make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()
    fired = feed(engine, [3, 3, 3])

    def no_io(*_: object) -> None:
        raise AssertionError("the store was used")

    for method in ("save", "outbox", "confirm"):
        monkeypatch.setattr(engine._store, method, no_io)
    assert feed(engine, [3.5, 4.0, 3.0, 2.5], start=T0 + 3 * MINUTE) == []  # still warning
    assert [i.alert_id for i in engine.active()] == [fired[0].alert_id]


def test_a_failing_store_keeps_events_and_confirmations_until_it_works(
        make_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    engine = make_engine(state_dir=state)
    store = engine._store
    real_save, real_confirm = store.save, store.confirm

    def disk_full(*_: object) -> None:
        raise AlertStoreError(f"alert store {store.path}: write failed (database or disk is full)")

    monkeypatch.setattr(store, "save", disk_full)
    monkeypatch.setattr(store, "confirm", disk_full)
    events = feed(engine, [3, 3, 3, 6, 6, 6])  # fired, escalated: announced, not stored
    assert len(events) == 2
    assert engine.unconfirmed() == events
    engine.confirm([events[0].event_id])  # delivered meanwhile: never needs storing
    assert engine.unconfirmed() == events[1:]
    monkeypatch.setattr(store, "save", real_save)
    engine.sweep(T0 + 7 * MINUTE)  # the retry writes the change and the rest of the outbox
    assert make_engine(state_dir=state).unconfirmed() == events[1:]
    (resolved,) = feed(engine, [1], start=T0 + 7 * MINUTE)
    engine.confirm([events[1].event_id])  # refused by the store: kept, and not handed out
    assert engine.unconfirmed() == [resolved]
    monkeypatch.setattr(store, "confirm", real_confirm)
    engine.confirm([])  # tried again
    assert make_engine(state_dir=state).unconfirmed() == [resolved]


OLD_SCHEMA = """
CREATE TABLE incidents (
    alert_id TEXT PRIMARY KEY,
    rule TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
    site_id TEXT NOT NULL, site_name TEXT NOT NULL,
    device_id TEXT NOT NULL, device_type TEXT NOT NULL, field TEXT,
    value TEXT NOT NULL, threshold TEXT NOT NULL,
    started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, resolved_ms INTEGER,
    message TEXT NOT NULL, acknowledged_by TEXT
);
CREATE TABLE device_marks (device_id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL);
INSERT INTO incidents VALUES ('abc', 'odor_nh3_high', 'warning', 'firing', 'WC-0001',
    'People''s Park North', 'WC-0001-OD-1', 'odor', 'nh3_ppm', '3.0', '2.0', 1764000120000,
    1764000120000, NULL, 'NH3 high', NULL);
"""


def test_a_store_of_the_release_before_the_outbox_is_upgraded(make_engine: EngineFactory,
                                                              tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "alerts.sqlite3") as db:
        db.executescript(OLD_SCHEMA)
    engine = make_engine(state_dir=state)
    assert [i.alert_id for i in engine.active()] == ["abc"]
    assert engine.unconfirmed() == []
    (resolved,) = feed(engine, [1], start=T0 + 3 * MINUTE)
    assert (resolved.alert_id, resolved.state, resolved.event_id) == ("abc", "resolved", "abc-1")
    assert make_engine(state_dir=state).unconfirmed() == [resolved]
