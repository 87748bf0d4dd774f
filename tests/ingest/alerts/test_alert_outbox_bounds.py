"""The outbox is bounded in events and in age, and says so when it drops (issue 13); an
event paho could not queue leaves the pipeline's unconfirmed list (bounded memory) and is
published again from the outbox."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from alert_city import CITY, MINUTE, T0, EngineFactory, odor
from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode

from devices.sites import Registry
from ingest.alert_delivery import AlertConfirmations
from ingest.alerts import AlertEngine, AlertEvent
from ingest.alerts.incident_db import store_path
from ingest.settings import Settings

REG = Registry.from_dict(CITY)
OD1 = REG.devices["WC-0001-OD-1"]


def events_over_time(engine: AlertEngine, count: int) -> list[AlertEvent]:
    """Fire and resolve an NH3 incident again and again: two events per round."""
    events: list[AlertEvent] = []
    ts = T0
    while len(events) < count:
        for value in (9.0, 9.0, 9.0, 0.1, 0.1):
            events += engine.on_reading(OD1, odor(value), ts, ts)
            ts += MINUTE
    return events


def outbox_ids(tmp_path: Path) -> list[str]:
    with sqlite3.connect(store_path(tmp_path / "state")) as db:
        return [row[0] for row in db.execute("SELECT event_id FROM outbox ORDER BY seq")]


def test_the_outbox_keeps_the_newest_max_events_and_logs_the_drop(
    make_engine: EngineFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    events = events_over_time(engine, 10)
    assert outbox_ids(tmp_path) == [e.event_id for e in events]
    with caplog.at_level(logging.WARNING):
        dropped = engine.bound_outbox(4, 365 * 86_400, events[-1].ts_ms)
    assert dropped == len(events) - 4
    assert outbox_ids(tmp_path) == [e.event_id for e in events[-4:]]
    assert f"dropped the {dropped} oldest undelivered events" in caplog.text
    assert engine.bound_outbox(4, 365 * 86_400, events[-1].ts_ms) == 0  # within bounds now


def test_the_outbox_drops_events_older_than_max_age(
    make_engine: EngineFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    events = events_over_time(engine, 6)
    cutoff = events[3].ts_ms
    with caplog.at_level(logging.WARNING):
        dropped = engine.bound_outbox(1000, 60, cutoff + 60_000)
    assert outbox_ids(tmp_path) == [e.event_id for e in events if e.ts_ms >= cutoff]
    assert dropped == sum(e.ts_ms < cutoff for e in events) > 0
    assert "max_age_s" in caplog.text


def test_an_outbox_of_the_release_before_gets_times_and_keeps_its_events(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine()
    events = events_over_time(engine, 4)
    engine.close()
    with sqlite3.connect(store_path(tmp_path / "state")) as db:  # as the last release wrote
        db.execute("ALTER TABLE outbox DROP COLUMN ts_ms")
    again = make_engine()
    assert again.bound_outbox(1000, 60, events[-1].ts_ms + 86_400_000) == 0
    assert outbox_ids(tmp_path) == [e.event_id for e in events]


def test_an_event_paho_could_not_queue_leaves_the_unconfirmed_list(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine()
    [event] = events_over_time(engine, 1)[:1]
    confirmations = AlertConfirmations(engine, Settings(data_dir=tmp_path).alert_outbox)
    unsent, waiting = MQTTMessageInfo(1), MQTTMessageInfo(2)
    unsent.rc = MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
    confirmations.stored([(event.event_id, unsent), ("other", waiting)])
    confirmations.confirm()
    assert confirmations.unconfirmed == [("other", waiting)]  # never to be acknowledged: let go
    assert event.event_id in outbox_ids(tmp_path)  # kept to be published again
    assert confirmations.unsent
    assert confirmations.to_publish_again(connected=True) == []  # "other" still waits
    waiting._set_as_published()  # the broker's PUBACK
    confirmations.confirm()
    assert confirmations.unconfirmed == []
    assert confirmations.to_publish_again(connected=False) == []  # not while away
    again = confirmations.to_publish_again(connected=True)  # once the list is empty: the
    assert [e.event_id for e in again] == outbox_ids(tmp_path)  # outbox, the let-go one in it
    assert event.event_id in outbox_ids(tmp_path)
    assert not confirmations.unsent
