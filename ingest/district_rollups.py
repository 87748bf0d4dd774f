"""Daily figures per district, from the hourly rollups: what a city overview over a year
reads (SPEC section 9 keeps hourly rollups per device; over a year and thousands of
devices those are millions of points, too many for a dashboard that answers at once).

`district_1d` (retention policy `rollup`), tags `district`, `site_kind`, one point per
UTC day: `people_in` (sum of `people_flow_1h.entries_sum`), `nh3_ppm_max` and
`h2s_ppm_max` (max of `odor_1h`). Recomputed, like the hourly ones, for the days whose
hours were recomputed; so it is as right as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.influx_admin import ROLLUP_RP, quote
from ingest.lineproto import point
from ingest.rollups import HOUR_MS

DAY_MS = 24 * HOUR_MS
MEASUREMENT = "district_1d"
TAGS = ("district", "site_kind")


@dataclass(frozen=True)
class DailyFigure:
    name: str
    select: str
    #: The hourly rollup it is computed from.
    source: str
    integer: bool


FIGURES = (
    DailyFigure("people_in", 'sum("entries_sum")', "people_flow_1h", True),
    DailyFigure("nh3_ppm_max", 'max("nh3_ppm_max")', "odor_1h", False),
    DailyFigure("h2s_ppm_max", 'max("h2s_ppm_max")', "odor_1h", False),
)
#: Readings measurements whose recomputed hours change a day's figures.
FROM_READINGS = ("people_flow", "odor")


def day_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % DAY_MS


def days_of(hours: dict[str, set[int]]) -> set[int]:
    return {day_of(hour) for name in FROM_READINGS for hour in hours.get(name, ())}


def selects(day: int) -> list[tuple[list[DailyFigure], str]]:
    """One statement per hourly rollup, for the UTC day starting at `day`."""
    out = []
    for source in sorted({figure.source for figure in FIGURES}):
        figures = [figure for figure in FIGURES if figure.source == source]
        columns = ", ".join(f'{figure.select} AS "{figure.name}"' for figure in figures)
        out.append((figures, (
            f"SELECT {columns} FROM {quote(ROLLUP_RP)}.{quote(source)} "
            f"WHERE time >= {day}ms AND time < {day + DAY_MS}ms "
            f'GROUP BY time(1d), "district", "site_kind" fill(none)')))
    return out


def points(figures: list[DailyFigure], rows: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        fields: dict[str, int | float | None] = {}
        for figure in figures:
            value = row.get(figure.name)
            fields[figure.name] = None if value is None else (
                int(value) if figure.integer else float(value))
        if all(value is None for value in fields.values()):
            continue
        tags = {tag: str(row[tag]) for tag in TAGS if row.get(tag)}
        lines.append(point(MEASUREMENT, tags, fields, int(row["time"])))
    return lines
