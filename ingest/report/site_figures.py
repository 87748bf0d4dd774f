"""Figures per site and district from aggregated rows: people served, odor hours, toilet
terminals (cleanings, water and power per visitor), device availability. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ingest.report.thresholds import WarningLevels


@dataclass(frozen=True, slots=True)
class PeopleRow:
    """`sum(entries)` of one site's people counters over one local day."""

    site_id: str
    day: str  # YYYY-MM-DD, local
    entries: int


def people_by_site(rows: Iterable[PeopleRow]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row.site_id] += row.entries
    return dict(totals)


def people_by_day(rows: Iterable[PeopleRow]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row.day] += row.entries
    return dict(sorted(totals.items()))


@dataclass(frozen=True, slots=True)
class OdorHourRow:
    """The mean NH3 and H2S of one odor device over one hour (None: no such reading)."""

    device_id: str
    site_id: str
    hour_ms: int
    nh3_mean: float | None
    h2s_mean: float | None


@dataclass(frozen=True, slots=True)
class OdorSite:
    site_id: str
    #: Hours (of the city's clock) whose mean NH3 / H2S of a sensor of the site was above
    #: that sensor's warning level; `hours_any`: either gas, an hour counted once.
    hours_nh3: int
    hours_h2s: int
    hours_any: int
    hours_measured: int
    worst_nh3_mean: float | None
    worst_h2s_mean: float | None


def odor_hours(rows: Iterable[OdorHourRow], levels: WarningLevels) -> dict[str, OdorSite]:
    nh3: dict[str, set[int]] = defaultdict(set)
    h2s: dict[str, set[int]] = defaultdict(set)
    measured: dict[str, set[int]] = defaultdict(set)
    worst: dict[str, list[float | None]] = defaultdict(lambda: [None, None])
    for row in rows:
        measured[row.site_id].add(row.hour_ms)
        for i, (value, field, hours) in enumerate(
                ((row.nh3_mean, "nh3_ppm", nh3), (row.h2s_mean, "h2s_ppm", h2s))):
            if value is None:
                continue
            top = worst[row.site_id][i]
            worst[row.site_id][i] = value if top is None else max(top, value)
            bound = levels.bound(row.device_id, field)
            if bound is not None and value > bound:
                hours[row.site_id].add(row.hour_ms)
    return {
        site: OdorSite(site, len(nh3[site]), len(h2s[site]), len(nh3[site] | h2s[site]),
                       len(hours), worst[site][0], worst[site][1])
        for site, hours in measured.items()
    }


@dataclass(frozen=True, slots=True)
class ToiletRow:
    """One site's toilet terminals over the period, aggregated by InfluxDB."""

    site_id: str
    #: Meter increases over the period (`meter_increase`).
    water_m3: float | None
    power_kwh: float | None
    cleanings: int
    rating_good: int
    rating_ok: int
    rating_bad: int


def meter_increase(last: float | None, before: float | None, first: float | None
                   ) -> float | None:
    """A meter's increase over the period: from its last reading before the period (or, with
    none, its first in it) to its last in it; never negative (a replaced meter). The hourly
    rollups count the same way, so their sum over the period equals this."""
    start = before if before is not None else first
    if last is None or start is None:
        return None
    return max(0.0, float(last) - float(start))


@dataclass(frozen=True, slots=True)
class ToiletSite:
    row: ToiletRow
    visitors: int

    @property
    def water_l_per_visitor(self) -> float | None:
        if self.row.water_m3 is None or not self.visitors:
            return None
        return self.row.water_m3 * 1000 / self.visitors

    @property
    def power_wh_per_visitor(self) -> float | None:
        if self.row.power_kwh is None or not self.visitors:
            return None
        return self.row.power_kwh * 1000 / self.visitors


def toilet_sites(rows: Iterable[ToiletRow], people: Mapping[str, int]) -> list[ToiletSite]:
    return [ToiletSite(row, people.get(row.site_id, 0)) for row in rows]


@dataclass(frozen=True, slots=True)
class Availability:
    device_id: str
    received: int
    expected: float

    @property
    def share(self) -> float:
        """Readings received / readings expected, capped at 1 (a device may report early)."""
        if self.expected <= 0:
            return 1.0 if self.received else 0.0
        return min(1.0, self.received / self.expected)


def availability(received: Mapping[str, int], intervals_s: Mapping[str, float],
                 period_s: float) -> list[Availability]:
    """One entry per registered device (`intervals_s`); silent ones at 0."""
    return [Availability(device_id, received.get(device_id, 0), period_s / interval)
            for device_id, interval in intervals_s.items()]
