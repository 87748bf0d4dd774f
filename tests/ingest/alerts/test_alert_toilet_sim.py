"""The toilet terminal's rules on simulated data: the simulator's city (its terminals and
people counters) through the validator into the alert engine. Each rule fires and
resolves, and each event agrees with the readings around it as SPEC section 6 words it."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from devices.open_hours import OpenHours
from devices.sites import Registry
from ingest.alerts import AlertEngine, AlertEvent
from ingest.validation import Validator
from simulators.engine import Simulator
from simulators.toilet_terminal import ToiletTerminal

ROOT = Path(__file__).resolve().parents[3]
CHENGDU = ZoneInfo("Asia/Shanghai")
HOUR, MINUTE = 3_600_000, 60_000
START = int(datetime(2026, 11, 24, tzinfo=CHENGDU).timestamp() * 1000)

CITY: dict[str, Any] = {"sites": [
    {"id": f"WC-000{n}", "kind": "toilet", "name": name, "district": "Qingyang",
     "lat": 30.66, "lon": 104.05,
     "devices": [{"id": f"WC-000{n}-PC-1", "type": "people_counter", "interval_s": 60},
                 {"id": f"WC-000{n}-OD-1", "type": "odor", "interval_s": 60},
                 {"id": f"WC-000{n}-TT-1", "type": "toilet_terminal", "interval_s": 300}]}
    for n, name in ((1, "Wenshu Monastery Square"), (2, "Yulin Lane"))
]}


def run(hours: int, setup: Any) -> tuple[list[AlertEvent], dict[str, list[dict[str, Any]]]]:
    """Simulate `hours` from midnight (local), every reading through the validator into an
    engine on the shipped rules; `setup(sim)` arranges the scenario first."""
    registry = Registry.from_dict(CITY)
    sim = Simulator(registry, seed=5, start_ms=START, phased=False, utc_offset_h=8)
    setup(sim)
    validator = Validator(registry)
    engine = AlertEngine.open(ROOT / "config" / "alerts.yaml", registry, run.state / str(hours),
                              CHENGDU)
    events: list[AlertEvent] = []
    readings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in sim.due(START + hours * HOUR):
        accepted = validator.check(message.topic, message.payload, orjson.loads(message.payload)
                                   ["ts"])
        events += engine.on_reading(accepted.device, accepted.message,  # type: ignore[arg-type]
                                    accepted.ts_ms, accepted.ts_ms)
        readings[message.device_id].append(orjson.loads(message.payload))
    engine.close()
    return events, readings


@pytest.fixture(autouse=True)
def state(tmp_path: Path) -> None:
    run.state = tmp_path  # type: ignore[attr-defined]


def terminal(sim: Simulator, site: str) -> ToiletTerminal:
    site_sim = sim._site(sim.registry.sites[site])
    unit = site_sim.units[f"{site}-TT-1"]
    assert isinstance(unit, ToiletTerminal)
    return unit


def of(events: list[AlertEvent], rule: str, device: str) -> list[AlertEvent]:
    return [e for e in events if e.rule == rule and e.device_id == device]


def at(readings: list[dict[str, Any]], ts: int) -> dict[str, Any]:
    return next(r for r in readings if r["ts"] == ts)


def test_paper_and_soap_low_fire_as_they_run_out_and_resolve_at_the_next_check_in() -> None:
    def scenario(sim: Simulator) -> None:
        unit = terminal(sim, "WC-0001")
        unit.paper_pct, unit.soap_pct = 18.0, 17.0
        unit.paper_per_visit = unit.soap_per_visit = 0.4  # a busy morning, big hands

    events, readings = run(12, scenario)
    tt = readings["WC-0001-TT-1"]
    for rule, key in (("toilet_paper_low", "paper_pct"), ("toilet_soap_low", "soap_pct")):
        got = of(events, rule, "WC-0001-TT-1")
        assert [e.state for e in got[:2]] == ["firing", "resolved"], rule
        assert [e.state for e in got] == ["firing", "resolved"] * (len(got) // 2) \
            + ["firing"] * (len(got) % 2)
        first = got[0]
        assert all(r[key] >= 15 for r in tt if r["ts"] < first.ts_ms)
        for event in got:
            if event.state == "firing":
                assert at(tt, event.ts_ms)[key] < 15
            else:  # refilled by an attendant's check-in
                assert at(tt, event.ts_ms)[key] >= 50 and "cleaned_by" in at(tt, event.ts_ms)


def test_toilet_full_when_no_stall_is_free_for_10_minutes() -> None:
    def scenario(sim: Simulator) -> None:
        terminal(sim, "WC-0001").stalls_total = 1  # one stall, a busy square

    events, readings = run(24, scenario)
    tt = {r["ts"]: r["stalls_free"] for r in readings["WC-0001-TT-1"]}
    got = of(events, "toilet_full", "WC-0001-TT-1")
    assert got and got[0].state == "firing"
    states = [e.state for e in got]
    assert states == ["firing", "resolved"] * (len(states) // 2) + ["firing"] * (len(states) % 2)
    for event in got:
        if event.state == "firing":  # no free stall at this reading and the 10 min before
            assert all(tt[t] == 0 for t in tt if event.ts_ms - 10 * MINUTE <= t <= event.ts_ms)
        else:
            assert tt[event.ts_ms] > 0
    assert of(events, "toilet_full", "WC-0002-TT-1") == []  # stalls enough at the other


def test_cleaning_overdue_only_during_open_hours_and_resolved_by_a_check_in() -> None:
    """WC-0002's attendant skips the 09:30 and 12:30 rounds every day: 06:30 -> 15:30 is 9 h
    open, so the incident fires 4 h of opening time after the last check-in (10:30 when the
    06:30 round was not skipped too) and a check-in ends it."""
    def scenario(sim: Simulator) -> None:
        unit = terminal(sim, "WC-0002")
        unit.rounds = tuple(m for m in unit.rounds if m not in (570, 750))

    events, readings = run(48, scenario)
    tt = readings["WC-0002-TT-1"]
    got = of(events, "toilet_cleaning_overdue", "WC-0002-TT-1")
    assert [e.state for e in got] == ["firing", "resolved"] * 2
    hours = OpenHours.parse("06:00-23:00")
    check_ins = [r["ts"] for r in tt if "cleaned_by" in r]
    for fired, resolved in zip(got[::2], got[1::2], strict=True):
        assert hours.is_open(fired.ts_ms, CHENGDU)
        # counted from the last check-in (or from the first reading, at the start)
        last = max((t for t in check_ins if t < fired.ts_ms), default=START)
        assert hours.open_after(last, 4 * HOUR, CHENGDU) == fired.ts_ms
        assert resolved.ts_ms in check_ins and resolved.ts_ms > fired.ts_ms
    # the regular rounds at WC-0001 (and the night at both): never overdue
    assert of(events, "toilet_cleaning_overdue", "WC-0001-TT-1") == []


def test_a_night_leak_with_nobody_in_is_found_and_resolves_when_the_water_stops() -> None:
    """Water starts running at WC-0002 (a quiet lane) at midnight for three hours."""
    def scenario(sim: Simulator) -> None:
        terminal(sim, "WC-0002").start_leak(Random(3))
        terminal(sim, "WC-0002").leak_left_s = 3 * 3600

    events, readings = run(12, scenario)
    got = of(events, "toilet_water_leak", "WC-0002-TT-1")
    assert [e.state for e in got] == ["firing", "resolved"]
    fired, resolved = got
    tt = readings["WC-0002-TT-1"]
    entries = {r["ts"]: r["entries"] + r["occupancy"] for r in readings["WC-0002-PC-1"]}
    window = [r for r in tt if fired.ts_ms - HOUR <= r["ts"] <= fired.ts_ms]
    assert len(window) == 13 and all(b["water_m3"] > a["water_m3"]
                                     for a, b in itertools.pairwise(window))
    assert not any(n for t, n in entries.items() if fired.ts_ms - HOUR < t <= fired.ts_ms)
    assert fired.ts_ms < START + 3 * HOUR + 5 * MINUTE  # found at night, while it runs
    before = max(r["ts"] for r in tt if r["ts"] < resolved.ts_ms)
    assert at(tt, resolved.ts_ms)["water_m3"] == at(tt, before)["water_m3"]  # standing still
    assert resolved.ts_ms >= START + 3 * HOUR
    # WC-0001 has no leak: its meter only moves with visitors
    assert of(events, "toilet_water_leak", "WC-0001-TT-1") == []
