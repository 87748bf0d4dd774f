"""The device behaviours have the shape of the real thing."""

from __future__ import annotations

from collections import defaultdict
from random import Random
from typing import Any

import orjson
import pytest

from devices.sites import Registry
from simulators.behaviour import Conditions, StepEvents
from simulators.clock import parse_start
from simulators.engine import Simulator
from simulators.odor import Air
from simulators.people_counter import PeopleFlow
from simulators.sprayer import SprayerUnit
from simulators.station_terminal import Container

from .conftest import START_MS

HOUR_MS = 3_600_000


def _conditions(hour: float, **overrides: Any) -> Conditions:
    values: dict[str, Any] = {
        "t_ms": START_MS, "hour": hour, "temp_c": 22.0, "rh_pct": 60.0, "nh3_ppm": 0.2,
        "popularity": 1.0, "kind": "toilet",
    }  # fmt: skip
    values.update(overrides)
    return Conditions(**values)


def _people_at(hour: float, seed: int) -> int:
    flow, rng = PeopleFlow(), Random(seed)
    for _ in range(60):
        flow.step(_conditions(hour), 60.0, rng, StepEvents())
    return flow.entries_total


def test_more_people_at_noon_than_at_three_in_the_morning() -> None:
    noon = sum(_people_at(12.0, seed) for seed in range(20))
    night = sum(_people_at(3.0, seed) for seed in range(20))
    assert noon > 10 * max(night, 1)


def test_busier_toilets_near_parks_and_stations() -> None:
    quiet = busy = 0
    for seed in range(20):
        for popularity, out in ((0.8, "quiet"), (2.5, "busy")):
            flow, rng = PeopleFlow(), Random(seed)
            for _ in range(120):
                flow.step(_conditions(12.0, popularity=popularity), 60.0, rng, StepEvents())
            if out == "quiet":
                quiet += flow.entries_total
            else:
                busy += flow.entries_total
    assert busy > 2 * quiet


def _readings(registry: Registry, count: int, start_ms: int = START_MS) -> list[dict[str, Any]]:
    sim = Simulator(registry, seed=11, start_ms=start_ms)
    out = []
    for message in sim.take(count):
        payload = orjson.loads(message.payload)
        payload["_type"] = message.device_type
        out.append(payload)
    return out


def test_entries_and_exits_add_up_and_occupancy_never_negative(city: Registry) -> None:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for reading in _readings(city, len(city) * 600):
        if reading["_type"] == "people_counter":
            by_device[reading["device_id"]].append(reading)
    assert by_device
    for readings in by_device.values():
        occupancy = readings[0]["occupancy"] - readings[0]["entries"] + readings[0]["exits"]
        for r in readings:
            occupancy += r["entries"] - r["exits"]
            assert r["occupancy"] == occupancy >= 0
        assert sum(r["entries"] for r in readings) > 0


def test_people_flow_follows_the_day(city: Registry) -> None:
    entries_by_hour: dict[int, int] = defaultdict(int)
    for r in _readings(city, len(city) * 1440):
        # one day exactly: readings of the next day's morning would count twice
        if r["_type"] == "people_counter" and r["ts"] < START_MS + 24 * HOUR_MS:
            hour = ((r["ts"] + 8 * HOUR_MS) // HOUR_MS) % 24
            entries_by_hour[hour] += r["entries"]
    assert entries_by_hour[12] > 5 * max(entries_by_hour[3], 1)
    assert entries_by_hour[8] > entries_by_hour[10] < entries_by_hour[12]


def test_nh3_falls_after_a_spray() -> None:
    air = Air("toilet", Random(1))
    cond = _conditions(12.0)
    for _ in range(30):
        air.step(cond, 60.0, StepEvents(entries=4))
    before = air.nh3
    air.step(cond, 60.0, StepEvents(sprays=1))
    sprayed = air.nh3
    air2 = Air("toilet", Random(1))
    for _ in range(30):
        air2.step(cond, 60.0, StepEvents(entries=4))
    air2.step(cond, 60.0, StepEvents())
    assert sprayed < before
    assert sprayed < air2.nh3  # the spray, not only ventilation


def test_nh3_rises_with_use_and_heat_and_cleaning_clears_it() -> None:
    def after(temp_c: float, entries: int) -> Air:
        air = Air("toilet", Random(2))
        for _ in range(30):
            air.step(_conditions(12.0, temp_c=temp_c), 60.0, StepEvents(entries=entries))
        return air

    assert after(22.0, 4).nh3 > after(22.0, 1).nh3 > after(22.0, 0).nh3
    assert after(32.0, 4).nh3 > after(12.0, 4).nh3
    air = after(22.0, 4)
    dirty = air.nh3
    air.step(_conditions(12.0), 60.0, StepEvents(cleaned=True))
    assert air.nh3 - air.nh3_base < 0.2 * (dirty - air.nh3_base)


def test_station_smells_more_when_full() -> None:
    def after(fill: float) -> float:
        air = Air("transfer_station", Random(3))
        for _ in range(120):
            air.step(_conditions(12.0, kind="transfer_station"), 60.0, StepEvents(fill_pct=fill))
        return air.nh3

    assert after(90.0) > after(10.0) * 1.5


def test_temperature_follows_the_day(city: Registry) -> None:
    temps: dict[int, list[float]] = defaultdict(list)
    for r in _readings(city, len(city) * 1440):
        if r["_type"] == "odor":
            temps[((r["ts"] + 8 * HOUR_MS) // HOUR_MS) % 24].append(r["temp_c"])
    mean = {h: sum(v) / len(v) for h, v in temps.items()}
    assert mean[15] > mean[5] + 3


def test_fill_drops_at_collection_and_weight_follows() -> None:
    container, rng = Container(Random(4)), Random(5)
    drops = rises = 0
    for minute in range(3 * 1440):
        hour = (minute / 60) % 24
        before = (container.fill_pct, container.weight_kg)
        events = StepEvents()
        container.step(
            _conditions(hour, t_ms=START_MS + minute * 60_000, kind="transfer_station"),
            60.0, rng, events,
        )  # fmt: skip
        if container.fill_pct < before[0] - 20:
            drops += 1
            assert container.weight_kg < before[1] * 0.2
        if events.deliveries:
            rises += 1
            assert container.weight_kg > before[1]
    assert container.collections == drops >= 2
    assert rises > 20


def test_station_terminal_reports_compactor_door_and_faults() -> None:
    seen: dict[str, set[Any]] = defaultdict(set)
    for seed in range(10):
        container, rng = Container(Random(seed)), Random(seed)
        for minute in range(2 * 1440):
            container.step(
                _conditions((minute / 60) % 24, t_ms=START_MS + minute * 60_000), 60.0, rng,
                StepEvents(),
            )  # fmt: skip
            for key, value in container.report(rng).items():
                if key != "fill_pct" and key != "weight_kg":
                    seen[key].add(value)
    assert seen["compactor"] == {"idle", "running", "fault"}
    assert seen["door_open"] == {True, False}
    assert seen["fault_code"] and all(code.startswith("E0") for code in seen["fault_code"])


def test_sprayer_liquid_falls_per_spray_then_low_empty_and_refill() -> None:
    states: set[str] = set()
    refills = 0
    unit, rng = SprayerUnit(Random(6)), Random(7)
    unit.liquid_pct = 30.0
    for minute in range(40 * 1440):
        events = StepEvents()
        before = unit.liquid_pct
        unit.step(_conditions((minute / 60) % 24), 60.0, rng, events)
        if events.sprays:
            assert unit.liquid_pct == pytest.approx(before - unit.per_spray_pct)
        if unit.liquid_pct > before + 1:
            refills += 1
        states.add(unit.state)
    assert {"ok", "low"} <= states
    assert refills >= 1


def test_an_empty_sprayer_does_not_spray() -> None:
    unit, rng = SprayerUnit(Random(8)), Random(9)
    unit.liquid_pct = 0.0
    events = StepEvents()
    for _ in range(120):
        unit.step(_conditions(10.0), 60.0, rng, events)
    assert unit.state == "empty" and events.sprays == 0
    assert unit.report(rng) == {"liquid_pct": 0.0, "sprays": 0, "state": "empty"}


def test_battery_drains_slowly(city: Registry) -> None:
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in _readings(city, len(city) * 300, parse_start("2026-11-24T00:00:00Z")):
        first.setdefault(r["device_id"], r["battery_pct"])
        last[r["device_id"]] = r["battery_pct"]
    drained = [first[d] - last[d] for d in first if last[d] <= first[d]]
    assert len(drained) > 0.9 * len(first)
    assert all(0 < d < 5 for d in drained)
