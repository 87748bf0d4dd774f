"""The run loop and the simulated clock, with a publisher that only collects."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest

from devices.sites import Registry
from simulators.clock import SimClock, StartTimeError, default_start_ms, parse_start
from simulators.engine import STATUS, Message, Simulator
from simulators.faults import FaultRates
from simulators.runner import RateLimit, RunStats, run

from .conftest import START_MS


class Collector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.messages.append(message)


class FakeWall:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def test_parse_start() -> None:
    assert parse_start("2026-11-24T00:00:00Z") == 1_795_478_400_000
    assert parse_start("2026-11-24T08:00:00+08:00") == 1_795_478_400_000
    assert parse_start("2026-11-24T00:00") == 1_795_478_400_000  # naive is UTC
    with pytest.raises(StartTimeError, match="--start 'yesterday' is not an ISO 8601 time"):
        parse_start("yesterday")


def test_fast_clock_runs_speed_times_faster_until_it_reaches_the_wall() -> None:
    wall = FakeWall(1_000_000_000)
    clock = SimClock(wall.now_ms - 3_600_000, speed=60, wall=wall)
    wall.now_ms += 30_000  # 30 s of wall: 30 simulated minutes
    assert clock.now_ms() == wall.now_ms - 30_000 - 3_600_000 + 30 * 60_000
    assert clock.wall_delay_s(clock.now_ms() + 60_000) == pytest.approx(1.0)
    wall.now_ms += 60_000  # would be 30 min ahead of the wall: capped
    assert clock.now_ms() == wall.now_ms
    assert clock.wall_delay_s(wall.now_ms + 5_000) == pytest.approx(5.0)


def test_default_start_puts_the_fast_forward_in_the_past() -> None:
    assert default_start_ms(10_000_000, 1, None) == 10_000_000
    assert default_start_ms(10_000_000, 60, 100) == 10_000_000 - 6_000_000
    assert default_start_ms(200_000_000, 60, None) == 200_000_000 - 86_400_000


def test_once_sends_status_then_one_reading_per_device(city: Registry) -> None:
    sim = Simulator(city, seed=1, start_ms=START_MS, phased=False)
    out = Collector()
    tally = asyncio.run(run(sim, out, SimClock(START_MS, 1), once=True))
    statuses = [m for m in out.messages if m.expect == STATUS]
    readings = [m for m in out.messages if m.expect != STATUS]
    assert len(statuses) == len(city) and all(m.retain for m in statuses)
    assert out.messages[: len(city)] == statuses  # announced before the first reading
    assert Counter(m.device_id for m in readings) == dict.fromkeys(city.devices, 1)
    assert tally.stored == len(city) and tally.status_offline == 0


def test_count_stops_after_that_many_readings_and_announces_offline(city: Registry) -> None:
    sim = Simulator(city, seed=1, start_ms=START_MS)
    out = Collector()
    seen: list[RunStats] = []
    # Start in the past at high speed: the readings are due at once.
    clock = SimClock(START_MS, speed=1_000_000)
    asyncio.run(run(sim, out, clock, readings=1_000, on_progress=seen.append))
    readings = [m for m in out.messages if m.expect != STATUS]
    assert len(readings) == 1_000 == sim.readings_done
    offline = [m for m in out.messages[-len(city) :] if m.expect == STATUS]
    assert {orjson.loads(m.payload)["online"] for m in offline} == {False}
    assert len(offline) == len(city)
    assert seen and seen[-1].telemetry == 1_000


def test_readings_wait_for_the_simulated_clock(city: Registry) -> None:
    wall = FakeWall(START_MS)
    sim = Simulator(city, seed=1, start_ms=START_MS)
    clock = SimClock(START_MS, speed=1, wall=wall, cap_at_wall=False)
    out = Collector()
    asyncio.run(run(sim, out, clock, duration_s=0.3))
    readings = [orjson.loads(m.payload) for m in out.messages if m.expect != STATUS]
    # The wall never moved: only readings due at the start itself could go out.
    assert all(r["ts"] <= START_MS for r in readings)
    assert len(readings) < len(city)


def test_stop_event_ends_the_run_cleanly(city: Registry) -> None:
    sim = Simulator(city, seed=1, start_ms=START_MS)
    out = Collector()

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run(sim, out, SimClock(START_MS, 1), stop=stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert sim.tally.status_offline == len(city)
    assert out.messages[-1].expect == STATUS


def test_rate_limit_lets_through_one_second_then_per_s() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limit = RateLimit(100, clock=lambda: now[0], sleep=sleep)

    async def take(n: int) -> None:
        for _ in range(n):
            await limit.acquire()

    asyncio.run(take(100))
    assert now[0] == 0  # a second's worth at once
    asyncio.run(take(500))
    assert now[0] == pytest.approx(5.0, rel=0.01)


def test_no_rate_limit_never_sleeps() -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError("slept")

    limit = RateLimit(None, sleep=sleep)
    asyncio.run(limit.acquire())


def test_a_stop_mid_run_leaves_the_tally_equal_to_what_was_published(city: Registry) -> None:
    sim = Simulator(city, seed=2, start_ms=START_MS, faults=FaultRates.parse([], 0.3))
    out = Collector()

    async def main() -> None:
        stop = asyncio.Event()
        clock = SimClock(START_MS, speed=1_000_000)
        task = asyncio.create_task(run(sim, out, clock, rate=400, stop=stop))
        await asyncio.sleep(0.6)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    telemetry = [m for m in out.messages if m.expect != STATUS]
    statuses = [m for m in out.messages if m.expect == STATUS]
    assert 0 < len(telemetry) == sim.tally.messages
    assert len(statuses) == sim.tally.status_online + sim.tally.status_offline
