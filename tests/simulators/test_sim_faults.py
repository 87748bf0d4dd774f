"""Fault injection: every broken message fails the way the tally says it will."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.sites import Registry
from simulators.engine import DUPLICATE, STATUS, STORED, Message, Simulator
from simulators.faults import REJECT_REASON, FaultKind, FaultRateError, FaultRates

from .conftest import START_MS, classify


def _run(
    city: Registry, rates: dict[FaultKind, float], readings: int = 2_000
) -> tuple[Simulator, list[Message]]:
    sim = Simulator(city, seed=4, start_ms=START_MS, faults=FaultRates(rates))
    return sim, sim.take(readings)


@pytest.mark.parametrize("kind", list(REJECT_REASON))
def test_each_breaking_fault_is_rejected_with_its_reason(city: Registry, kind: FaultKind) -> None:
    sim, messages = _run(city, {kind: 1.0}, readings=600)
    reason = REJECT_REASON[kind]
    for m in messages:
        assert m.expect == reason
        assert classify(m.topic, m.payload, city, START_MS) == reason, m.payload[:200]
    assert sim.tally.rejected == Counter({reason: 600})
    assert sim.tally.faults == Counter({kind: 600})
    assert sim.tally.stored == 0


def test_clock_skew_is_ahead_of_the_wall_too(city: Registry) -> None:
    now = int(time.time() * 1000)
    past = START_MS - 365 * 86_400_000
    sim = Simulator(city, seed=1, start_ms=past, faults=FaultRates({FaultKind.CLOCK_SKEW: 1.0}),
                    wall_clock=lambda: now)  # fmt: skip
    for m in sim.take(200):
        assert orjson.loads(m.payload)["ts"] > now + 5 * 60_000


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), total=st.floats(0.01, 1.0))
def test_mixed_faults_match_the_tally(city: Registry, seed: int, total: float) -> None:
    sim = Simulator(city, seed=seed, start_ms=START_MS, faults=FaultRates.parse([], total))
    messages = sim.take(1_500)
    outcome: Counter[str] = Counter()
    stored: Counter[str] = Counter()
    previous = None
    now_ms = START_MS  # the pipeline receives each message as it is sent
    for m in messages:
        if m.expect == STATUS:
            outcome[STATUS] += 1
            continue
        if m.expect == DUPLICATE:
            assert previous is not None and (m.topic, m.payload) == previous
            outcome[DUPLICATE] += 1
            continue
        got = classify(m.topic, m.payload, city, now_ms)
        assert got == m.expect
        outcome[got] += 1
        if got == STORED:
            stored[m.device_type] += 1
            now_ms = max(now_ms, orjson.loads(m.payload)["ts"])
        previous = (m.topic, m.payload)
    tally = sim.tally
    assert dict(stored) == {k: v for k, v in tally.readings.items() if v}
    assert {k: outcome[k] for k in tally.rejected} == dict(tally.rejected)
    assert outcome[DUPLICATE] == tally.duplicates
    assert outcome[STATUS] == tally.status_online + tally.status_offline
    assert tally.messages == len(messages) - outcome[STATUS]


def test_duplicates_repeat_the_same_bytes(city: Registry) -> None:
    sim, messages = _run(city, {FaultKind.DUPLICATE: 0.2})
    pairs = [(a, b) for a, b in itertools.pairwise(messages) if b.expect == DUPLICATE]
    assert len(pairs) == sim.tally.duplicates > 0
    assert all(a.payload == b.payload and a.topic == b.topic for a, b in pairs)


def test_silence_sends_offline_then_skips_then_comes_back(city: Registry) -> None:
    sim, messages = _run(city, {FaultKind.SILENCE: 0.02}, readings=5_000)
    by_device: dict[str, list[str]] = {}
    for m in messages:
        if m.expect == STATUS:
            what = "online" if orjson.loads(m.payload)["online"] else "offline"
        else:
            what = "reading"
        by_device.setdefault(m.device_id, []).append(what)
    went_silent = [seq for seq in by_device.values() if "offline" in seq]
    assert went_silent
    for seq in went_silent:
        i = seq.index("offline")
        assert seq[i + 1 : i + 2] in (["online"], [])  # nothing in between
    assert sim.tally.status_offline == sim.tally.faults[FaultKind.SILENCE]
    assert sim.tally.silenced_readings >= 4 * sim.tally.status_online


def test_stuck_sensor_repeats_its_values(city: Registry) -> None:
    sim = Simulator(city, seed=4, start_ms=START_MS, faults=FaultRates({FaultKind.STUCK: 0.01}))
    readings: dict[str, list[dict[str, Any]]] = {}
    for m in sim.take(8_000):
        if m.device_type == "odor":
            readings.setdefault(m.device_id, []).append(orjson.loads(m.payload))
    assert sim.tally.stuck_readings > 0
    repeats = 0
    for values in readings.values():
        keys = ("nh3_ppm", "h2s_ppm", "temp_c", "rh_pct")
        for a, b in itertools.pairwise(values):
            if all(a[k] == b[k] for k in keys):
                repeats += 1
                assert b["seq"] == a["seq"] + 1
    assert repeats >= 4


def test_burst_sends_readings_a_second_apart(city: Registry) -> None:
    sim, messages = _run(city, {FaultKind.BURST: 0.01}, readings=3_000)
    burst = [orjson.loads(m.payload) for m in messages if m.fault is FaultKind.BURST]
    assert len(burst) == sim.tally.faults[FaultKind.BURST] + sim.tally.burst_readings
    assert all(m.expect == STORED for m in messages)
    per_device: dict[str, list[int]] = {}
    for m in messages:
        per_device.setdefault(m.device_id, []).append(orjson.loads(m.payload)["ts"])
    for ts in per_device.values():
        assert ts == sorted(set(ts))  # distinct points, in order
    assert any(b["ts"] - a["ts"] == 1000 for a, b in itertools.pairwise(burst))


def test_rates_parse_and_spread() -> None:
    rates = FaultRates.parse(["malformed_json=0.01", "clock_skew=0.02"])
    assert rates.rates == {FaultKind.MALFORMED_JSON: 0.01, FaultKind.CLOCK_SKEW: 0.02}
    spread = FaultRates.parse([], 0.11)
    assert set(spread.rates) == set(FaultKind)
    assert sum(spread.rates.values()) == pytest.approx(0.11)
    assert FaultRates.parse(["stuck=0.5"], 0.11).rates[FaultKind.STUCK] == 0.5


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["bogus=0.1"], "unknown kind 'bogus'; one of malformed_json"),
        (["stuck=lots"], "rate 'lots' is not a number"),
        (["stuck"], "write KIND=RATE"),
        (["stuck=1.5"], "rate 1.5 is not between 0 and 1"),
        (["stuck=0.6", "burst=0.6"], "add up to 1.200"),
    ],
)
def test_bad_rates_say_what_is_wrong(specs: list[str], message: str) -> None:
    with pytest.raises(FaultRateError, match=message):
        FaultRates.parse(specs)


def test_tally_file_is_json(city: Registry, tmp_path: Path) -> None:
    sim, _ = _run(city, {FaultKind.OUT_OF_RANGE: 0.1, FaultKind.DUPLICATE: 0.1})
    data = orjson.loads(sim.tally.write(tmp_path / "tally.json").read_bytes())
    assert data["rejected"] == {"out_of_range": sim.tally.rejected["out_of_range"]}
    assert data["duplicates"] == sim.tally.duplicates > 0
    assert data["stored"] == sum(data["readings"].values())


def test_the_pipeline_validator_agrees_with_the_tally(city: Registry) -> None:
    from ingest.rejects import Rejected
    from ingest.validation import Validator

    validator = Validator(city)
    sim = Simulator(city, seed=3, start_ms=START_MS, faults=FaultRates.parse([], 0.5))
    outcome: Counter[str] = Counter()
    now_ms = START_MS
    for m in sim.take(5_000):
        if m.expect == DUPLICATE:
            continue
        try:
            accepted = validator.check(m.topic, m.payload, now_ms)
        except Rejected as exc:
            outcome[str(exc.reason)] += 1
            assert str(exc.reason) == m.expect, (m.fault, m.payload[:200])
        else:
            assert m.expect in (STORED, STATUS), (m.fault, m.payload[:200])
            if m.expect == STORED:
                now_ms = max(now_ms, accepted.ts_ms)
    assert dict(outcome) == dict(sim.tally.rejected)
