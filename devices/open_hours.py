"""A site's opening hours (SPEC v1.1 section 4): `open_hours: "HH:MM-HH:MM"` in local time.

Local time is the city's `timezone` (a top-level setting, default UTC). "22:00-06:00" runs
past midnight; "00:00-24:00" is always open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

DEFAULT_OPEN_HOURS = "06:00-23:00"
_SHAPE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
DAY_MIN = 24 * 60


class OpenHoursError(ValueError):
    """An `open_hours` value that cannot be read; the message says what would be accepted."""


@dataclass(frozen=True, slots=True)
class OpenHours:
    """Open from `start_min` to `end_min` (minutes after local midnight, end exclusive)."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> OpenHours:
        match = _SHAPE.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise OpenHoursError(
                f"{text!r:.40} is not opening hours; write HH:MM-HH:MM in local time, "
                f"e.g. {DEFAULT_OPEN_HOURS!r} (or '00:00-24:00' for always open)"
            )
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise OpenHoursError(f"{text!r}: hours run 00-23 (24:00 only as a closing time) "
                                 "and minutes 00-59")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end % DAY_MIN and end != DAY_MIN:
            raise OpenHoursError(f"{text!r}: opens and closes at the same time; for always "
                                 "open write '00:00-24:00'")
        return cls(start, end)

    def is_open_at(self, minute_of_day: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute_of_day < self.end_min
        return minute_of_day >= self.start_min or minute_of_day < self.end_min

    def is_open(self, ts_ms: int, zone: tzinfo = UTC) -> bool:
        """Open at epoch `ts_ms`, in the city's time zone?"""
        local = datetime.fromtimestamp(ts_ms / 1000, zone)
        return self.is_open_at(local.hour * 60 + local.minute)

    def open_after(self, from_ms: int, open_ms: int, zone: tzinfo = UTC) -> int:
        """The first instant after `from_ms` by which the site has been open for more than
        `open_ms`: always an instant when it is open (never a closing time)."""
        remaining = open_ms
        day = datetime.fromtimestamp(from_ms / 1000, zone).date() - timedelta(days=1)
        daily_ms = ((self.end_min - self.start_min) % DAY_MIN or DAY_MIN) * 60_000
        for _ in range(open_ms // daily_ms + 3):
            for start, end in self._stretches(day, zone):
                start = max(start, from_ms)
                if end - start > remaining:
                    return start + remaining
                remaining -= max(0, end - start)
            day += timedelta(days=1)
        raise AssertionError("unreachable: a site is open every day")

    def _stretches(self, day: date, zone: tzinfo) -> list[tuple[int, int]]:
        """The opening stretch that starts on local `day`, as epoch ms (past midnight too)."""
        end_day = day if self.start_min < self.end_min else day + timedelta(days=1)
        return [(_epoch_ms(day, self.start_min, zone), _epoch_ms(end_day, self.end_min, zone))]


@lru_cache(maxsize=4096)
def _epoch_ms(day: date, minute: int, zone: tzinfo) -> int:
    """Memoized: sites share a few opening times, and a toilet terminal's first reading
    and each check-in look up the same few days (callgrind: `open_after` cost 131,000
    instructions a call with every conversion made afresh, 30,000 memoized)."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute)
    return int(local.replace(tzinfo=zone).timestamp() * 1000)
