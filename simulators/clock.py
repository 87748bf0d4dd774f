"""The simulated clock: epoch milliseconds that run `speed` times faster than the wall.

Readings carry `ts` on this clock. With `cap_at_wall` (the default for live runs), the
simulated clock never runs ahead of the wall clock: once it has caught up, it goes on in
real time, so the pipeline never sees a good reading as `clock_skew`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class StartTimeError(ValueError):
    """`--start` is not an ISO 8601 time."""


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_start(text: str) -> int:
    """ISO 8601 (`2026-11-24T06:00`, `2026-11-24T06:00+08:00`, `...Z`) -> epoch ms; naive is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise StartTimeError(
            f"--start {text!r} is not an ISO 8601 time; use e.g. 2026-11-24T06:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def default_start_ms(now_ms: int, speed: float, duration_s: float | None) -> int:
    """Where a live run starts: now at real speed; in the past when faster, so that the
    fast-forwarded stretch ends about now (a day back when there is no duration)."""
    if speed <= 1:
        return now_ms
    span_s = duration_s * speed if duration_s else 86_400.0
    return now_ms - int(span_s * 1000)


class SimClock:
    def __init__(
        self,
        start_ms: int,
        speed: float = 1.0,
        *,
        cap_at_wall: bool = True,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start_ms = start_ms
        self.speed = speed
        self.cap_at_wall = cap_at_wall
        self._wall = wall
        self._wall0 = wall()

    def now_ms(self) -> int:
        wall = self._wall()
        sim = self.start_ms + int((wall - self._wall0) * self.speed)
        if self.cap_at_wall and self.start_ms <= wall:
            return min(sim, wall)
        return sim

    def wall_delay_s(self, sim_ms: int) -> float:
        """Wall seconds until the simulated clock reaches `sim_ms` (0 when it has)."""
        ahead = sim_ms - self.now_ms()
        if ahead <= 0:
            return 0.0
        wall = self._wall()
        fast_end = self.start_ms + int((wall - self._wall0) * self.speed)
        if self.cap_at_wall and fast_end >= wall:
            return ahead / 1000  # caught up: real time from here on
        return ahead / 1000 / self.speed
