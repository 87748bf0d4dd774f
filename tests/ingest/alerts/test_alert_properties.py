"""Random readings, acks, confirmations and restarts: the incident and outbox invariants
always hold."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from alert_city import CITY, MINUTE, RULES, T0, odor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.sites import Registry
from ingest.alerts import AlertEngine, AlertEvent

REG = Registry.from_dict(CITY)
DEVICES = [REG.devices["WC-0001-OD-1"], REG.devices["WC-0001-OD-2"],
           REG.devices["TS-0001-OD-1"]]

step = st.one_of(
    # a reading: device, value, time step (negative: late, out of order), battery
    st.tuples(st.just("reading"), st.integers(0, 2), st.floats(0, 40, allow_nan=False),
              st.integers(-5 * MINUTE, 3 * MINUTE), st.sampled_from([None, 5.0, 50.0])),
    st.tuples(st.just("ack"), st.integers(0, 5)),
    st.tuples(st.just("status"), st.integers(0, 2), st.booleans()),
    # confirm some of the events handed out (a bit mask over them, oldest first)
    st.tuples(st.just("confirm"), st.integers(0, 2**20)),
    # a restart: close, or just drop the engine as a kill -9 would
    st.tuples(st.just("restart"), st.booleans()),
)


class Ledger:
    """What the events say about each incident; fails on the first broken invariant."""

    def __init__(self) -> None:
        self.fired: dict[str, tuple[str, str]] = {}
        self.resolved: set[str] = set()
        self.open: dict[tuple[str, str], str] = {}
        self.event_ids: set[str] = set()
        #: Events handed out and not confirmed, oldest first: what the outbox must hold.
        self.outbox: list[AlertEvent] = []

    def record(self, event: AlertEvent) -> None:
        key, alert_id = (event.device_id, event.rule), event.alert_id
        assert event.event_id not in self.event_ids, "two events with one event_id"
        self.event_ids.add(event.event_id)
        self.outbox.append(event)
        assert alert_id not in self.resolved, "an event after its incident resolved"
        if alert_id not in self.fired:
            assert event.state == "firing", "an incident's first event is its firing"
            assert key not in self.open, "two open incidents for one device and rule"
            self.fired[alert_id] = key
            self.open[key] = alert_id
            return
        assert self.fired[alert_id] == key
        assert self.open.get(key) == alert_id
        if event.state == "resolved":
            self.resolved.add(alert_id)
            del self.open[key]
        else:
            assert event.previous_severity is not None or event.state == "acknowledged"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=60))
def test_incident_invariants(steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump(RULES))
        engine = AlertEngine.open(rules, REG, Path(tmp) / "state")
        ledger = Ledger()
        ts = T0
        for action in steps:
            if action[0] == "reading":
                _, index, value, dt, battery = action
                ts += dt
                events = engine.on_reading(DEVICES[index], odor(value, battery_pct=battery), ts, ts)
            elif action[0] == "ack":
                ids = sorted(ledger.open.values())
                events = engine.on_ack(ids[action[1] % len(ids)], "crew", ts) if ids else []
            elif action[0] == "status":
                events = engine.on_status(DEVICES[action[1]], bool(action[2]), ts, ts)
            elif action[0] == "confirm":
                mask, outbox = action[1], ledger.outbox
                done = [e.event_id for i, e in enumerate(outbox) if mask >> (i % 20) & 1]
                engine.confirm(done)
                ledger.outbox = [e for e in outbox if e.event_id not in done]
                events = []
            else:
                if action[1]:
                    engine.close()
                engine = AlertEngine.open(rules, REG, Path(tmp) / "state")
                events = []
            for event in events:
                ledger.record(event)
            assert {(i.device_id, i.rule): i.alert_id for i in engine.active()} == ledger.open
            assert engine.unconfirmed() == ledger.outbox
        engine.close()
