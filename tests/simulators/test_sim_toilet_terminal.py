"""The simulated toilet terminal agrees with its people counter and behaves like the box
by the door: stalls from the occupancy, meters that grow with visits, consumables used up
and refilled at check-ins, attendants on a schedule, ratings that fall with a smell."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Any

import orjson
import pytest

from devices.open_hours import OpenHours
from devices.sites import Registry
from simulators.behaviour import Conditions, StepEvents
from simulators.city import generate_city
from simulators.engine import Simulator
from simulators.faults import FaultKind, FaultRates
from simulators.toilet_terminal import ToiletTerminal, check_in_minutes

from .conftest import START_MS, classify

HOUR_MS = 3_600_000
CHENGDU = timezone(timedelta(hours=8))


def day_of_readings(city: Registry, hours: int = 24, seed: int = 3) -> dict[str, list[Any]]:
    """Every device's readings over `hours`, all devices reporting on the same grid."""
    sim = Simulator(city, seed=seed, start_ms=START_MS, phased=False)
    readings: dict[str, list[Any]] = defaultdict(list)
    for message in sim.due(START_MS + hours * HOUR_MS):
        readings[message.device_id].append(orjson.loads(message.payload))
    return readings


@pytest.fixture(scope="module")
def toilets() -> tuple[Registry, dict[str, list[Any]]]:
    city = Registry.from_dict(generate_city(30, seed=11))
    return city, day_of_readings(city)


def pairs(city: Registry) -> list[tuple[str, str]]:
    """(terminal id, people counter id) of every site that has both."""
    found = []
    for site in city.sites.values():
        by_type = {d.type: d.id for d in site.devices}
        if "toilet_terminal" in by_type and "people_counter" in by_type:
            found.append((by_type["toilet_terminal"], by_type["people_counter"]))
    return found


def test_most_generated_toilets_have_a_terminal() -> None:
    city = generate_city(200, seed=5)
    toilets = [s for s in city["sites"] if s["kind"] == "toilet"]
    with_terminal = [s for s in toilets
                     if any(d["type"] == "toilet_terminal" for d in s["devices"])]
    assert 0.6 < len(with_terminal) / len(toilets) < 0.95
    for site in with_terminal:
        terminal = next(d for d in site["devices"] if d["type"] == "toilet_terminal")
        assert terminal == {"id": f"{site['id']}-TT-1", "type": "toilet_terminal",
                            "interval_s": 300}
    assert not any(d["type"] == "toilet_terminal" for s in city["sites"]
                   if s["kind"] == "transfer_station" for d in s["devices"])
    Registry.from_dict(city)  # and the registry takes it


def test_stalls_follow_the_people_counter(toilets: tuple[Registry, dict[str, list[Any]]]
                                          ) -> None:
    city, readings = toilets
    checked = 0
    for terminal_id, counter_id in pairs(city):
        occupancy = {r["ts"]: r["occupancy"] for r in readings[counter_id]}
        for reading in readings[terminal_id]:
            total, free = reading["stalls_total"], reading["stalls_free"]
            assert 0 <= free <= total
            assert free == max(0, total - occupancy[reading["ts"]]), reading
            checked += 1
    assert checked > 1000


def test_water_grows_with_visits(toilets: tuple[Registry, dict[str, list[Any]]]) -> None:
    """Between two terminal reports the meter rises 6-10 L per person the counter let in,
    and not at all with nobody (no leak here); the power meter never falls."""
    city, readings = toilets
    quiet = busy = 0
    for terminal_id, counter_id in pairs(city):
        entries = {r["ts"]: r["entries"] for r in readings[counter_id]}
        reports = readings[terminal_id]
        for before, after in itertools.pairwise(reports):
            visits = sum(n for ts, n in entries.items() if before["ts"] < ts <= after["ts"])
            rise = after["water_m3"] - before["water_m3"]
            assert 0.006 * visits - 2e-4 <= rise <= 0.010 * visits + 2e-4, (visits, rise)
            assert after["power_kwh"] >= before["power_kwh"]
            quiet += visits == 0
            busy += visits > 0
    assert quiet > 50 and busy > 500


def test_consumables_run_down_and_check_ins_refill_them(
    toilets: tuple[Registry, dict[str, list[Any]]]
) -> None:
    city, readings = toilets
    check_ins = 0
    for terminal_id, _ in pairs(city):
        reports = readings[terminal_id]
        for before, after in itertools.pairwise(reports):
            if "cleaned_by" in after:
                check_ins += 1
                assert after["paper_pct"] > 95 and after["soap_pct"] > 95
                assert 0 < len(after["cleaned_by"]) <= 32
            else:
                assert after["paper_pct"] <= before["paper_pct"]
                assert after["soap_pct"] <= before["soap_pct"]
    # six rounds a day (06:30 .. 21:30, every 3 h) at ~25 terminals, a few skipped
    terminals = len(pairs(city))
    assert 4.5 * terminals <= check_ins <= 6 * terminals + terminals  # 24 h toilets have 8


def test_check_ins_keep_to_the_schedule_in_local_time(
    toilets: tuple[Registry, dict[str, list[Any]]]
) -> None:
    city, readings = toilets
    for terminal_id, _ in pairs(city):
        hours = city.devices[terminal_id].site.hours
        rounds = check_in_minutes(hours)
        for reading in readings[terminal_id]:
            if "cleaned_by" in reading:
                local = datetime.fromtimestamp(reading["ts"] / 1000, CHENGDU)
                minute = local.hour * 60 + local.minute
                # reported within one 5 min interval after its round
                assert any(0 <= (minute - r) % 1440 < 5 for r in rounds), (terminal_id, local)


def test_schedule_of_rounds() -> None:
    assert check_in_minutes(OpenHours.parse("06:00-23:00")) == (
        390, 570, 750, 930, 1110, 1290)  # 06:30, 09:30 ... 21:30
    assert len(check_in_minutes(OpenHours.parse("00:00-24:00"))) == 8
    assert check_in_minutes(OpenHours.parse("22:00-06:00")) == (1350, 90, 270)


def _conditions(hour: float, nh3: float) -> Conditions:
    return Conditions(t_ms=START_MS, hour=hour, temp_c=20.0, rh_pct=60.0, nh3_ppm=nh3,
                      popularity=2.0, kind="toilet")


def _bad_share(nh3: float, paper: float) -> float:
    terminal, rng = ToiletTerminal(Random(1), OpenHours.parse("06:00-23:00"), 2.0), Random(2)
    totals = [0, 0, 0]
    for _ in range(1000):
        terminal.paper_pct = paper
        terminal.step(_conditions(12.0, nh3), 60.0, rng, StepEvents())
        report = terminal.report(rng)
        for i, key in enumerate(("rating_good", "rating_ok", "rating_bad")):
            totals[i] += report[key]
    assert sum(totals) > 300
    return totals[2] / sum(totals)


def test_ratings_fall_when_it_smells_or_the_paper_is_out() -> None:
    fine, smelly, no_paper = _bad_share(0.3, 80), _bad_share(3.5, 80), _bad_share(0.3, 0)
    assert fine < 0.12 and smelly > 2 * fine and no_paper > 2 * fine


def test_a_leak_makes_water_flow_at_night_with_nobody_in() -> None:
    city = Registry.from_dict(generate_city(30, seed=11))
    terminal_id, counter_id = pairs(city)[0]
    sim = Simulator(city, seed=3, start_ms=START_MS, phased=False)
    sim.due(START_MS + 60_000)
    site = sim._site(city.devices[terminal_id].site)
    assert site.start_leak(terminal_id, Random(1))
    assert not site.start_leak(counter_id, Random(1))  # only a terminal leaks
    readings: dict[str, list[Any]] = defaultdict(list)
    for message in sim.due(START_MS + 4 * HOUR_MS):  # 00:00-04:00 local
        readings[message.device_id].append(orjson.loads(message.payload))
    entries = {r["ts"]: r["entries"] for r in readings[counter_id]}
    reports = readings[terminal_id]
    still = [(b, a) for b, a in itertools.pairwise(reports)
             if not any(b["ts"] < ts <= a["ts"] and n for ts, n in entries.items())]
    assert len(still) > 10  # quiet 5 minutes at night
    assert all(a["water_m3"] > b["water_m3"] for b, a in still)  # and still the water runs


def test_leak_faults_only_touch_terminals_and_readings_stay_valid() -> None:
    city = Registry.from_dict(generate_city(30, seed=11))
    sim = Simulator(city, seed=2, start_ms=START_MS, faults=FaultRates({FaultKind.LEAK: 0.2}))
    messages = sim.take(3_000)
    assert all(classify(m.topic, m.payload, city, START_MS + 10 * HOUR_MS) == "stored"
               for m in messages)
    leaks = [m for m in messages if m.fault is FaultKind.LEAK]
    assert leaks and all(m.device_type == "toilet_terminal" for m in leaks)
    assert sim.tally.faults[FaultKind.LEAK] == len(leaks)


def test_terminal_faults_are_rejected_with_their_reason() -> None:
    city = Registry.from_dict(generate_city(30, seed=11))
    for kind, reason in ((FaultKind.OUT_OF_RANGE, "out_of_range"),
                         (FaultKind.WRONG_TYPE, "schema_invalid")):
        sim = Simulator(city, seed=2, start_ms=START_MS, faults=FaultRates({kind: 1.0}))
        broken = [m for m in sim.take(1_000) if m.device_type == "toilet_terminal"]
        assert broken
        assert all(classify(m.topic, m.payload, city, START_MS) == reason for m in broken)
