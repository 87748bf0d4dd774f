"""The hourly rollups of SPEC section 9: what each one selects, and its points. Pure.

One InfluxQL statement per measurement computes every hour of a span at once
(`GROUP BY time(1h), *`: one row per series and hour, tags as the raw measurement's);
`points` turns its rows into line protocol for the `rollup` retention policy, each
point at the start of its hour (UTC). Recomputing an hour rewrites the same points
(same series, same time), so it is idempotent; a reading stored twice is one point
in InfluxDB, so it counts once.

The toilet terminal's meters (`water_m3`, `power_kwh`) only grow; an hour's use is the
increase from the last reading before the hour (up to `METER_LOOKBACK_H` back) to the
last reading in it, so the hours of a day add up to the day's use even when readings
straddle the hour. With no earlier reading, it is the increase within the hour. A meter
that goes down (replaced) counts as 0, never negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ingest.influx_admin import ROLLUP_RP, quote
from ingest.lineproto import point

HOUR_MS = 3_600_000
METER_LOOKBACK_H = 24
#: Tags every readings measurement carries (SPEC section 5).
TAGS = ("site_id", "device_id", "district", "site_kind")


@dataclass(frozen=True)
class RollupField:
    name: str
    #: The InfluxQL aggregate over the raw field, e.g. `sum("entries")`.
    select: str
    integer: bool


def _f(name: str, function: str, raw: str, integer: bool) -> RollupField:
    return RollupField(name, f'{function}("{raw}")', integer)


@dataclass(frozen=True)
class Rollup:
    source: str
    fields: tuple[RollupField, ...]
    #: Meter fields whose hourly use is computed here, not by InfluxQL.
    meters: tuple[tuple[str, str], ...] = ()

    @property
    def target(self) -> str:
        return f"{self.source}_1h"

    def select(self, start_ms: int, end_ms: int) -> str:
        """Every hour of [start, end): one row per series and hour that has readings."""
        columns = [f'{field.select} AS "{field.name}"' for field in self.fields]
        for _used, raw in self.meters:
            columns.append(f'last("{raw}") AS "{raw}_last"')
            columns.append(f'first("{raw}") AS "{raw}_first"')
        return (f"SELECT {', '.join(columns)} FROM {quote(self.source)} "
                f"WHERE time >= {start_ms}ms AND time < {end_ms}ms "
                "GROUP BY time(1h), * fill(none)")

    def meters_before(self, start_ms: int) -> str | None:
        """Each series' last meter readings in the `METER_LOOKBACK_H` before `start`."""
        if not self.meters:
            return None
        columns = ", ".join(f'last("{raw}") AS "{raw}"' for _used, raw in self.meters)
        since = start_ms - METER_LOOKBACK_H * HOUR_MS
        return (f"SELECT {columns} FROM {quote(self.source)} "
                f"WHERE time >= {since}ms AND time < {start_ms}ms GROUP BY *")


ROLLUPS: tuple[Rollup, ...] = (
    Rollup("people_flow", (
        _f("entries_sum", "sum", "entries", True),
        _f("exits_sum", "sum", "exits", True),
        _f("occupancy_max", "max", "occupancy", True),
    )),
    Rollup("odor", (
        _f("nh3_ppm_mean", "mean", "nh3_ppm", False),
        _f("nh3_ppm_max", "max", "nh3_ppm", False),
        _f("h2s_ppm_mean", "mean", "h2s_ppm", False),
        _f("h2s_ppm_max", "max", "h2s_ppm", False),
    )),
    Rollup("station", (
        _f("fill_pct_max", "max", "fill_pct", False),
        _f("weight_kg_max", "max", "weight_kg", False),
    )),
    Rollup("sprayer", (
        _f("sprays_sum", "sum", "sprays", True),
        _f("liquid_pct_min", "min", "liquid_pct", False),
    )),
    Rollup("toilet", (
        _f("stalls_free_min", "min", "stalls_free", True),
        _f("rating_good_sum", "sum", "rating_good", True),
        _f("rating_ok_sum", "sum", "rating_ok", True),
        _f("rating_bad_sum", "sum", "rating_bad", True),
        _f("cleanings", "count", "cleaned_by", True),
    ), meters=(("water_m3_used", "water_m3"), ("power_kwh_used", "power_kwh"))),
)
BY_SOURCE = {rollup.source: rollup for rollup in ROLLUPS}

Row = Mapping[str, Any]
SeriesKey = tuple[str, ...]


def series_key(row: Row) -> SeriesKey:
    return tuple(str(row.get(tag) or "") for tag in TAGS)


def meter_use(last: float | None, before: float | None, first: float | None) -> float | None:
    """The hour's increase of a meter that only grows (see the module's docstring)."""
    if last is None:
        return None
    start = before if before is not None else first
    if start is None:
        return None
    return max(0.0, float(last) - float(start))


def points(rollup: Rollup, rows: Iterable[Row], before: Mapping[SeriesKey, Row]) -> list[str]:
    """Line protocol of the rollup points of `rows` (sorted by time within a series).

    `before`: each series' last meter readings before the span, for its first hour."""
    previous: dict[SeriesKey, dict[str, float]] = {
        key: {raw: float(row[raw]) for _u, raw in rollup.meters if row.get(raw) is not None}
        for key, row in before.items()
    }
    lines = []
    for row in sorted(rows, key=lambda r: (series_key(r), r["time"])):
        key = series_key(row)
        fields: dict[str, int | float | None] = {}
        for field in rollup.fields:
            value = row.get(field.name)
            if value is None and field.select.startswith("count("):
                value = 0  # an hour with readings and none of these counts none, not unknown
            fields[field.name] = None if value is None else (
                int(value) if field.integer else float(value))
        last_seen = previous.setdefault(key, {})
        for used, raw in rollup.meters:
            last = row.get(f"{raw}_last")
            fields[used] = meter_use(last, last_seen.get(raw), row.get(f"{raw}_first"))
            if last is not None:
                last_seen[raw] = float(last)
        if all(value is None for value in fields.values()):
            continue
        tags = {tag: str(row[tag]) for tag in TAGS if row.get(tag)}
        lines.append(point(rollup.target, tags, fields, int(row["time"])))
    return lines


def hour_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % HOUR_MS


def touched_hours(lines: Iterable[str]) -> set[tuple[str, int]]:
    """(measurement, hour) of every line of a rolled-up measurement, from its text: each
    line's measurement (up to the first comma) and its time (the last field), for the
    lines of a spool replay, which come without their readings."""
    touched = set()
    for line in lines:
        head = line.partition(",")[0]
        if head in BY_SOURCE:
            touched.add((head, hour_of(int(line.rpartition(" ")[2]))))
    return touched


def spans(hours: Iterable[int], max_hours: int = 24) -> list[tuple[int, int]]:
    """Contiguous runs of hour starts as [start, end) spans of at most `max_hours`."""
    out: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if out and out[-1][1] == hour and (hour - out[-1][0]) < max_hours * HOUR_MS:
            out[-1] = (out[-1][0], hour + HOUR_MS)
        else:
            out.append((hour, hour + HOUR_MS))
    return out


def rollup_target(database: str) -> tuple[str, str]:
    """(database, retention policy) the rollup points go to."""
    return database, ROLLUP_RP
