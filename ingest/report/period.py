"""The report's period: `--from` (inclusive) and `--to` (exclusive), dates in the city's
timezone, as epoch milliseconds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class ReportPeriodError(ValueError):
    """A date or the timezone of the report cannot be used; the message names the option."""


def city_timezone(name: str, key: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReportPeriodError(
            f"{key} {name!r} is not an IANA timezone; use e.g. UTC, Asia/Shanghai, Europe/Paris"
        ) from None


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportPeriodError(
            f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01"
        ) from None


@dataclass(frozen=True, slots=True)
class Period:
    """[start_ms, end_ms) in UTC epoch milliseconds, with the dates and zone it came from."""

    first_day: date
    end_day: date
    tz: ZoneInfo

    @classmethod
    def parse(cls, start: str, end: str, tz: ZoneInfo) -> Period:
        first, last = parse_date(start, "--from"), parse_date(end, "--to")
        if last <= first:
            raise ReportPeriodError(
                f"--to {end} must be after --from {start} (--to is exclusive: "
                f"--from 2026-11-01 --to 2026-12-01 is November)"
            )
        return cls(first, last, tz)

    @property
    def start_ms(self) -> int:
        return _midnight_ms(self.first_day, self.tz)

    @property
    def end_ms(self) -> int:
        return _midnight_ms(self.end_day, self.tz)

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    @property
    def hour_offset_ms(self) -> int:
        """Where the city's hours start within a UTC hour (30 min in India, else 0)."""
        offset = datetime.fromtimestamp(self.start_ms / 1000, self.tz).utcoffset()
        return int(offset.total_seconds() * 1000) % HOUR_MS if offset else 0

    def label(self) -> str:
        last = self.end_day - timedelta(days=1)
        return f"{self.first_day.isoformat()} to {last.isoformat()} ({self.tz.key})"

    def chunks(self, days: int) -> Iterator[tuple[int, int]]:
        """The period in slices of at most `days` days, for queries that return many rows."""
        day = self.first_day
        while day < self.end_day:
            nxt = min(day + timedelta(days=days), self.end_day)
            yield _midnight_ms(day, self.tz), _midnight_ms(nxt, self.tz)
            day = nxt

    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=n)
                for n in range((self.end_day - self.first_day).days)]

    def local_day(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, self.tz).date()


def _midnight_ms(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tz).timestamp() * 1000)
