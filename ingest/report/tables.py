"""The report's tables (one CSV each) from the figures: titles, columns, rows. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.report.alert_figures import AlertGroup, by_district, by_district_and_rule
from ingest.report.collect import ReportData
from ingest.report.sequence_figures import COLLECTION_MIN_DROP_KG, REFILL_MIN_RISE_PCT
from ingest.report.site_figures import people_by_site, toilet_sites

Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # the CSV's file name, without `.csv`
    title: str
    note: str  # how the figures are defined
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]] = field(default_factory=list)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def people_tables(data: ReportData) -> list[Table]:
    by_site = people_by_site(data.people)
    toilets = [s for s in data.registry.sites.values()
               if s.kind == "toilet" and data.wanted(s.id)]
    counted = {s.id for s in toilets} | set(by_site)
    per_toilet = sorted(((site, data.site_name(site), data.district_of(site), by_site.get(site, 0))
                         for site in counted), key=lambda r: (-r[3], r[0]))
    districts: dict[str, list[int]] = defaultdict(list)
    for _, _, district, people in per_toilet:
        districts[district].append(people)
    total = sum(by_site.values()) or 1
    per_district = sorted(((d, len(v), sum(v), round(sum(v) / len(v)), _r(100 * sum(v) / total))
                           for d, v in districts.items()), key=lambda r: (-r[2], r[0]))
    return [
        Table("people_by_district", "People served per district",
              "Sum of `entries` of the people counters of the district's toilets.",
              ("district", "toilets", "people_served", "per_toilet", "share_pct"),
              list(per_district)),
        Table("people_by_toilet", "People served per toilet",
              "Sum of `entries` of the site's people counters over the period.",
              ("site_id", "toilet", "district", "people_served"), list(per_toilet)),
    ]


def odor_table(data: ReportData) -> Table:
    rows = sorted(((s.site_id, data.site_name(s.site_id), data.district_of(s.site_id),
                    s.hours_any, s.hours_nh3, s.hours_h2s, s.hours_measured,
                    _r(s.worst_nh3_mean, 2), _r(s.worst_h2s_mean, 3))
                   for s in data.odor.values()), key=lambda r: (-int(r[3] or 0), str(r[0])))
    return Table(
        "odor_hours", "Hours with NH3 or H2S above the warning level",
        "An hour (of the city's clock) counts when the mean of that hour's readings of one of "
        "the site's odor sensors is above the sensor's warning level (the alert rules "
        "`odor_nh3_high` / `odor_h2s_high` with the site's and device's overrides); "
        "`hours_above` counts an hour once even when both gases were above.",
        ("site_id", "site", "district", "hours_above", "nh3_hours", "h2s_hours",
         "hours_measured", "worst_hour_nh3_ppm", "worst_hour_h2s_ppm"), rows)


def alert_tables(data: ReportData) -> list[Table]:
    note = ("Incidents raised in the period; acknowledged and resolved: those of them that "
            "were by the end of the period. Medians in minutes from raised to acknowledged "
            "/ resolved, over the incidents that were.")
    columns = ("district", "rule", "raised", "acknowledged", "resolved", "median_ack_min",
               "median_resolve_min")

    def rows(groups: list[AlertGroup]) -> list[tuple[Cell, ...]]:
        return [(g.district, g.rule, g.raised, g.acknowledged, g.resolved,
                 _r(g.median_ack_min), _r(g.median_resolve_min)) for g in groups]
    return [
        Table("alerts_by_district", "Alerts per district (all rules)", note, columns,
              rows(by_district(data.incidents, data.district_of))),
        Table("alerts_by_district_rule", "Alerts per district and rule", note, columns,
              rows(by_district_and_rule(data.incidents, data.district_of))),
    ]


def station_table(data: ReportData) -> Table:
    rows = sorted(((t.site_id, data.site_name(t.site_id), data.district_of(t.site_id),
                    t.device_id, _r(t.peak_fill_pct), t.collections, _r(t.hauled_kg / 1000, 2))
                   for t in data.stations), key=lambda r: (-float(r[6] or 0), str(r[0])))
    return Table(
        "stations", "Transfer stations: peak fill and tonnage",
        f"Peak fill: the highest `fill_pct` read. A collection: the container's `weight_kg` "
        f"dropped by {COLLECTION_MIN_DROP_KG:g} kg or more from one reading to the next; "
        "tonnage: the sum of those drops (garbage hauled away), in tonnes.",
        ("site_id", "station", "district", "device_id", "peak_fill_pct", "collections",
         "tonnes_hauled"), rows)


def sprayer_table(data: ReportData) -> Table:
    rows = sorted(((t.site_id, data.site_name(t.site_id), data.district_of(t.site_id),
                    t.device_id, t.refills, t.sprays, _r(t.min_liquid_pct))
                   for t in data.sprayers), key=lambda r: (-int(r[4] or 0), str(r[3])))
    return Table(
        "sprayer_refills", "Sprayer refills",
        f"A refill: `liquid_pct` rose by {REFILL_MIN_RISE_PCT:g} points or more from one "
        "reading to the next.",
        ("site_id", "site", "district", "device_id", "refills", "sprays", "lowest_liquid_pct"),
        rows)


def toilet_table(data: ReportData) -> Table:
    people = people_by_site(data.people)
    rows = sorted(((t.row.site_id, data.site_name(t.row.site_id),
                    data.district_of(t.row.site_id), t.visitors, t.row.cleanings,
                    _r(t.row.water_m3, 2), _r(t.water_l_per_visitor, 2), _r(t.row.power_kwh, 2),
                    _r(t.power_wh_per_visitor, 1), t.row.rating_good, t.row.rating_ok,
                    t.row.rating_bad)
                   for t in toilet_sites(data.toilets, people)), key=lambda r: str(r[0]))
    return Table(
        "toilet_terminals", "Toilet terminals: cleanings, water and power per visitor",
        "Cleanings: readings with `cleaned_by` (an attendant checked in). Water and power: the "
        "meter's increase over the period (from its last reading before the period, up to "
        "24 h back, else its first in it, to its last in it), divided by the visitors "
        "counted by the site's people counters.",
        ("site_id", "toilet", "district", "visitors", "cleanings", "water_m3",
         "water_l_per_visitor", "power_kwh", "power_wh_per_visitor", "rating_good",
         "rating_ok", "rating_bad"), rows)


def availability_table(data: ReportData) -> Table:
    devices = data.registry.devices
    rows = sorted(((a.device_id, devices[a.device_id].type, devices[a.device_id].site.id,
                    data.district_of(devices[a.device_id].site.id), a.received,
                    round(a.expected, 1), _r(100 * a.share))
                   for a in data.availability), key=lambda r: (float(r[6] or 0), str(r[0])))
    return Table(
        "device_availability", "Device availability",
        "Readings received / readings expected (period, or up to now when it reaches past "
        "now, / the device's `interval_s`), capped at 100 %; worst first.",
        ("device_id", "type", "site_id", "district", "received", "expected", "availability_pct"),
        rows)


def all_tables(data: ReportData) -> list[Table]:
    return [*people_tables(data), odor_table(data), *alert_tables(data), station_table(data),
            sprayer_table(data), toilet_table(data), availability_table(data)]
