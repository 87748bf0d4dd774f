"""Transfer stations: how full and heavy, what the compactors do, faults, odor on site."""

from __future__ import annotations

from grafana_foundation_sdk.builders import statetimeline, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import variables
from dashboards.document import section, skeleton
from dashboards.influxql import PLACE_MATCH, InfluxQL
from dashboards.panels import bool_colours, graph, grid, timeline, transformation, value_colours
from dashboards.rollup_choice import raw_or_rollup
from dashboards.thresholds import AlertLevels, RuleLevels

UID = "sanitel-transfer-stations"
TITLE = "Sanitel / Transfer stations"
KIND = "transfer_station"
WHERE = f"{PLACE_MATCH} AND \"site_kind\" = '{KIND}' AND $timeFilter"
COMPACTOR_COLOURS = {"idle": "blue", "running": "green", "fault": "red"}


def build(levels: AlertLevels) -> Dashboard:
    board = skeleton(
        UID, TITLE,
        "Container fill and weight, compactor state over time, faults and odor at the "
        "transfer stations.",
        [variables.district(KIND), variables.site(KIND)],
    )
    board.with_row(section("Containers"))
    board.with_panel(fill(levels.get("station_fill_high"))).with_panel(weight())
    board.with_row(section("Compactors"))
    board.with_panel(compactor_state()).with_panel(door())
    board.with_panel(faults())
    board.with_row(section("Odor at the station"))
    board.with_panel(odor("NH3", "nh3_ppm", levels.get("odor_nh3_high", KIND)))
    board.with_panel(odor("H2S", "h2s_ppm", levels.get("odor_h2s_high", KIND)))
    return board


def _over_range(field: str, function: str, measurement: str, rollup_field: str) -> list[InfluxQL]:
    """Raw readings up to 7 days, the hourly rollups beyond (same column name)."""
    return raw_or_rollup(
        measurement, f'{function}("{field}") AS "{field}"',
        f'{function}("{rollup_field}") AS "{field}"', WHERE, '"site_id"', alias="$tag_site_id")


def fill(levels: RuleLevels | None) -> timeseries.Panel:
    query = _over_range("fill_pct", "max", "station", "fill_pct_max")
    return graph("Container fill", query, unit="percent", levels=levels).min(0).max(100)


def weight() -> timeseries.Panel:
    return graph("Weight", _over_range("weight_kg", "max", "station", "weight_kg_max"),
                 unit="masskg")


def _raw_per_device(field: str) -> InfluxQL:
    return InfluxQL(f"""
        SELECT "{field}" FROM "station" WHERE {WHERE} GROUP BY "device_id"
    """).alias("$tag_device_id")


def compactor_state() -> statetimeline.Panel:
    return timeline("Compactor state", [_raw_per_device("compactor")],
                    value_colours(COMPACTOR_COLOURS))


def door() -> statetimeline.Panel:
    return timeline("Door", [_raw_per_device("door_open")],
                    bool_colours(("open", "orange"), ("closed", "green")))


def faults() -> table.Panel:
    query = InfluxQL(f"""
        SELECT "compactor", "fault_code", "fill_pct", "weight_kg" FROM "station"
        WHERE {WHERE} AND ("compactor" = 'fault' OR "fault_code" != '')
        GROUP BY "site_id", "device_id"
    """).table()
    panel = grid("Faults", [query], width=24, height=7, transformations=[
        transformation("merge", {}),
        transformation("sortBy", {"sort": [{"field": "Time", "desc": True}]}),
    ])
    return panel.mappings(value_colours(COMPACTOR_COLOURS))


def odor(gas: str, field: str, levels: RuleLevels | None) -> timeseries.Panel:
    query = _over_range(field, "mean", "odor", f"{field}_mean")
    return graph(f"{gas} (ppm) with alert thresholds", query, unit="ppm", levels=levels)
