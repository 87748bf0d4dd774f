"""Public toilets: free stalls now, visitors, occupancy, air quality against the alert
bounds, fragrance, and the management terminals (cleaning, water and power, satisfaction).

Odor and the sprayers sit side by side, so a crew sees whether spraying follows
the smell.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import toilet_terminals as terminal
from dashboards import variables
from dashboards.document import section, skeleton
from dashboards.influxql import PLACE_MATCH, InfluxQL
from dashboards.panels import graph
from dashboards.rollup_choice import raw_or_rollup
from dashboards.thresholds import AlertLevels, RuleLevels

UID = "sanitel-public-toilets"
TITLE = "Sanitel / Public toilets"
KIND = "toilet"
WHERE = f"{PLACE_MATCH} AND \"site_kind\" = '{KIND}' AND $timeFilter"


def build(levels: AlertLevels) -> Dashboard:
    board = skeleton(
        UID, TITLE,
        "Free stalls now (map and table: where is a free, clean toilet), people flow per "
        "site and hour, occupancy, NH3 and H2S with their alert thresholds, sprayer "
        "activity beside the odor, cleaning check-ins, water and power per visitor and "
        "satisfaction from the toilet terminals.",
        [variables.district(KIND), variables.site(KIND)],
    )
    paper = levels.get("toilet_paper_low")
    board.with_row(section("Find a free, clean toilet"))
    board.with_panel(terminal.free_stalls_map()).with_panel(terminal.free_stalls_table(paper))
    board.with_row(section("Visitors"))
    board.with_panel(people_per_hour()).with_panel(occupancy(levels.get("toilet_crowded")))
    board.with_row(section("Air and fragrance"))
    board.with_panel(odor("NH3", "nh3_ppm", levels.get("odor_nh3_high", KIND)))
    board.with_panel(sprays())
    board.with_panel(odor("H2S", "h2s_ppm", levels.get("odor_h2s_high", KIND)))
    board.with_panel(liquid(levels.get("sprayer_liquid_low")))
    board.with_row(section("Toilet terminals"))
    board.with_panel(terminal.cleaning_compliance(levels.cleaning_every_h))
    board.with_panel(terminal.stalls_over_time())
    board.with_panel(terminal.per_visitor()).with_panel(terminal.water_per_hour())
    board.with_panel(terminal.satisfaction()).with_panel(terminal.consumables(paper))
    return board


def _per_site(select: str, measurement: str, interval: str = "$__interval") -> InfluxQL:
    return InfluxQL(f"""
        SELECT {select} FROM "{measurement}" WHERE {WHERE}
        GROUP BY time({interval}), "site_id" fill(none)
    """).alias("$tag_site_id")


def _over_range(raw_select: str, rollup_select: str, measurement: str,
                interval: str = "$__interval") -> list[InfluxQL]:
    """Raw readings up to 7 days, the hourly rollups beyond."""
    return raw_or_rollup(measurement, raw_select, rollup_select, WHERE, '"site_id"',
                         interval, alias="$tag_site_id")


def people_per_hour() -> timeseries.Panel:
    entries = _over_range('sum("entries") AS "entries"', 'sum("entries_sum") AS "entries"',
                          "people_flow", "1h")
    return graph("People in per site and hour", entries, unit="short", bars=True)


def occupancy(levels: RuleLevels | None) -> timeseries.Panel:
    query = _over_range('max("occupancy") AS "occupancy"',
                        'max("occupancy_max") AS "occupancy"', "people_flow")
    return graph("Occupancy", query, unit="short", levels=levels)


def odor(gas: str, field: str, levels: RuleLevels | None) -> timeseries.Panel:
    query = _over_range(f'mean("{field}") AS "{field}"', f'mean("{field}_mean") AS "{field}"',
                        "odor")
    return graph(f"{gas} (ppm) with alert thresholds", query, unit="ppm", levels=levels)


def sprays() -> timeseries.Panel:
    query = _over_range('sum("sprays") AS "sprays"', 'sum("sprays_sum") AS "sprays"', "sprayer")
    return graph("Sprays", query, unit="short", bars=True)


def liquid(levels: RuleLevels | None) -> timeseries.Panel:
    query = _over_range('last("liquid_pct") AS "liquid_pct"',
                        'min("liquid_pct_min") AS "liquid_pct"', "sprayer")
    return graph("Fragrance liquid left", query, unit="percent", levels=levels).min(0).max(100)
