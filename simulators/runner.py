"""Driving a `Simulator` against a publisher on the simulated clock: the async edge.

`run` announces every device online (retained), publishes each reading when the
simulated clock reaches it (or one per device with `once`), keeps to a rate cap, and on
a clean stop announces every device offline. The publisher only needs an async
`publish(message)`; `MqttPublisher` is the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from simulators.clock import SimClock
from simulators.engine import STATUS, Message, Simulator
from simulators.tally import Tally

#: Readings generated per pass; the loop yields to the event loop between passes.
CHUNK = 500
PROGRESS_EVERY_S = 0.5


class Publisher(Protocol):
    async def publish(self, message: Message) -> None: ...


@dataclass
class RunStats:
    """Figures for the progress view, updated as messages go out."""

    started: float = field(default_factory=time.monotonic)
    sim_ms: int = 0
    telemetry: int = 0
    status: int = 0
    #: Telemetry messages per second over the last progress interval.
    per_second: float = 0.0
    _mark_t: float = field(default_factory=time.monotonic)
    _mark_n: int = 0

    def count(self, message: Message) -> None:
        if message.expect == STATUS:
            self.status += 1
        else:
            self.telemetry += 1

    def tick(self) -> None:
        now = time.monotonic()
        if now > self._mark_t:
            self.per_second = (self.telemetry - self._mark_n) / (now - self._mark_t)
        self._mark_t, self._mark_n = now, self.telemetry

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class RateLimit:
    """At most `per_s` messages a second (a token bucket holding one second's worth)."""

    def __init__(
        self,
        per_s: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_s = per_s
        self._clock, self._sleep = clock, sleep
        self._tokens = float(per_s or 0)
        self._t = clock()

    async def acquire(self) -> None:
        if not self.per_s:
            return
        while True:
            now = self._clock()
            self._tokens = min(self.per_s, self._tokens + (now - self._t) * self.per_s)
            self._t = now
            if self._tokens >= 1 - 1e-9:  # float dust must not make us wait forever
                self._tokens = max(0.0, self._tokens - 1)
                return
            await self._sleep((1 - self._tokens) / self.per_s)


async def run(
    sim: Simulator,
    publisher: Publisher,
    clock: SimClock,
    *,
    duration_s: float | None = None,
    readings: int | None = None,
    once: bool = False,
    rate: float | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[RunStats], None] | None = None,
) -> Tally:
    """Publish until `duration_s` (wall) has passed, `readings` readings are out, `stop` is
    set, or, with `once`, every device has sent one reading. Returns the simulator's tally.

    Readings go out in small batches, and a batch once taken from the simulator is always
    sent whole, so the tally counts exactly what was published."""
    stop = stop or asyncio.Event()
    stats = RunStats(sim_ms=clock.now_ms())
    limit = RateLimit(rate)
    # With a rate cap, a batch is a tenth of a second's worth: stopping overshoots little.
    chunk = CHUNK if rate is None else max(1, min(CHUNK, int(rate / 10)))
    progress_at = 0.0

    async def send(messages: Iterable[Message]) -> None:
        nonlocal progress_at
        for n, message in enumerate(messages):
            await limit.acquire()
            await publisher.publish(message)
            stats.count(message)
            if n % 200 == 199:
                await asyncio.sleep(0)
            if on_progress and time.monotonic() - progress_at >= PROGRESS_EVERY_S:
                progress_at = time.monotonic()
                stats.tick()
                on_progress(stats)

    deadline = None if duration_s is None else time.monotonic() + duration_s
    await send(sim.status(online=True))
    if once:
        readings = len(sim.devices)
    while not stop.is_set():
        left_s = None if deadline is None else deadline - time.monotonic()
        done = readings is not None and sim.readings_done >= readings
        if done or (left_s is not None and left_s <= 0):
            break
        size = chunk if readings is None else min(chunk, readings - sim.readings_done)
        stats.sim_ms = clock.now_ms()
        batch = sim.take(size) if once else sim.due(stats.sim_ms, limit=size)
        if batch:
            await send(batch)
            continue
        await _idle(sim, clock, stop, left_s)
        if on_progress:
            stats.tick()
            on_progress(stats)
    if not once:
        await send(sim.status(online=False))
    if on_progress:
        stats.per_second = stats.telemetry / max(stats.elapsed_s, 1e-3)  # the run's average
        on_progress(stats)
    return sim.tally


async def _idle(sim: Simulator, clock: SimClock, stop: asyncio.Event, left_s: float | None) -> None:
    """Wait for the next reading's time on the simulated clock (a quarter second at most)."""
    next_due = sim.next_due_ms()
    wait_s = 0.25 if next_due is None else min(0.25, clock.wall_delay_s(next_due))
    if left_s is not None:
        wait_s = min(wait_s, left_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(wait_s, 0.001))
