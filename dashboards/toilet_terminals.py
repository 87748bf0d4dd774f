"""Panels of the toilet management terminals (SPEC v1.1), on the public toilets dashboard.

The "find a free, clean toilet near me" view first: free stalls now, on a map and in a
table beside paper, soap and the air; then cleaning check-ins against the schedule,
water and power per visitor, and the visitors' satisfaction over time.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import geomap, table, timeseries
from grafana_foundation_sdk.builders.common import FrameGeometrySource, MapLayerOptions
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode
from grafana_foundation_sdk.models.geomap import MapCenterID, TooltipMode

from dashboards.influxql import DATASOURCE, PLACE_MATCH, InfluxQL
from dashboards.panels import graph, grid, levels_thresholds, override, transformation
from dashboards.rollup_choice import raw_or_rollup
from dashboards.thresholds import RuleLevels

KIND = "toilet"
WHERE = f"{PLACE_MATCH} AND \"site_kind\" = '{KIND}' AND $timeFilter"
#: Free stalls: none is red, one is orange, two or more green.
FREE_STEPS = [Threshold(None, "red"), Threshold(1.0, "orange"), Threshold(2.0, "green")]
#: A terminal reports every 300 s (the registry's convention for toilet_terminal).
REPORTS_PER_HOUR = 12


def _free_thresholds() -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(FREE_STEPS)


def toilet_sites() -> InfluxQL:
    return InfluxQL(f"""
        SELECT last("name") AS "name", last("lat") AS "lat", last("lon") AS "lon"
        FROM "sites" WHERE {WHERE} GROUP BY "site_id", "district"
    """).table()


def stalls_now() -> InfluxQL:
    return InfluxQL(f"""
        SELECT last("stalls_free") AS "free", last("stalls_total") AS "stalls",
               last("paper_pct") AS "paper_pct", last("soap_pct") AS "soap_pct"
        FROM "toilet" WHERE {WHERE} GROUP BY "site_id"
    """).table()


def air_now() -> InfluxQL:
    return InfluxQL(f"""
        SELECT last("nh3_ppm") AS "nh3_ppm" FROM "odor" WHERE {WHERE} GROUP BY "site_id"
    """).table()


def free_stalls_map() -> geomap.Panel:
    style = {
        "color": {"field": "free", "fixed": "green"},
        "opacity": 0.9,
        "size": {"field": "stalls", "fixed": 8, "min": 6, "max": 16},
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "text": {"mode": "field", "field": "free", "fixed": ""},
        "textConfig": {"fontSize": 11, "offsetX": 0, "offsetY": 0,
                       "textAlign": "center", "textBaseline": "middle"},
    }
    layer = (
        MapLayerOptions().type("markers").name("Free stalls")
        .config({"showLegend": True, "style": style})
        .location(FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS)
                  .latitude("lat").longitude("lon"))
        .tooltip(True)
    )
    return (
        geomap.Panel()
        .title("Free stalls now (find a free toilet near you)")
        .description("Each toilet with a terminal at its place: the number is its free "
                     "stalls at its last report; red none, orange one, green two or more.")
        .datasource(DATASOURCE)
        .with_target(toilet_sites().ref_id("A"))
        .with_target(stalls_now().ref_id("B"))
        .with_transformation(transformation("joinByField", {"byField": "site_id",
                                                            "mode": "inner"}))
        .view(geomap.MapViewConfig().id(MapCenterID.FIT).all_layers(True).zoom(12))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True))
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
        .basemap(MapLayerOptions().type("default").name("Basemap"))
        .layers([layer])
        .thresholds(_free_thresholds())
        .height(12).span(12)
    )


def free_stalls_table(paper: RuleLevels | None) -> table.Panel:
    """One row per toilet, the freest first: stalls, paper, soap and NH3 now."""
    panel = grid("Free and clean now", [toilet_sites(), stalls_now(), air_now()],
                 height=12, width=12, transformations=[
                     transformation("joinByField", {"byField": "site_id", "mode": "outer"}),
                     transformation("organize", {"excludeByName": {
                         "Time": True, "Time 1": True, "Time 2": True, "Time 3": True,
                         "lat": True, "lon": True}}),
                     transformation("sortBy", {"sort": [{"field": "free", "desc": True}]}),
                 ])
    return (
        panel.description("Free stalls, paper and soap left and NH3 at each toilet's last "
                          "report: where to send a visitor, and where an attendant.")
        .override_by_name("free", [override("thresholds", _free_thresholds().build()),
                                   override("custom.cellOptions", {"type": "color-background"})])
        .override_by_name("paper_pct", [override("unit", "percent"),
                                        override("thresholds", levels_thresholds(paper).build()),
                                        override("custom.cellOptions",
                                                 {"type": "color-text"})])
        .override_by_name("soap_pct", [override("unit", "percent")])
        .override_by_name("nh3_ppm", [override("unit", "ppm")])
    )


def cleaning_compliance(every_h: float) -> table.Panel:
    """Check-ins against the rounds due over the range: one per `every_h` hours of reports
    (closed hours count too; `toilet_cleaning_overdue` is the exact check, by open hours)."""
    per_round = every_h * REPORTS_PER_HOUR
    query = InfluxQL(f"""
        SELECT count("cleaned_by") AS "check_ins",
               count("stalls_free") / {per_round:g} AS "rounds_due",
               last("cleaned_by") AS "last_attendant"
        FROM "toilet" WHERE {WHERE} GROUP BY "site_id"
    """).table()
    return grid("Cleaning check-ins vs schedule", [query], height=8, width=12, transformations=[
        transformation("calculateField", {
            "alias": "compliance_pct", "mode": "binary",
            "binary": {"left": "check_ins", "operator": "/", "right": "rounds_due"},
            "replaceFields": False}),
        transformation("organize", {"excludeByName": {"Time": True}}),
    ]).description(
        f"Attendants' check-ins (cleaned_by) per toilet, against one round every "
        f"{every_h:g} h (the toilet_cleaning_overdue rule's cleaning_every_h).",
    ).override_by_name("rounds_due", [override("decimals", 1)]).override_by_name(
        "compliance_pct", [override("unit", "percentunit"), override("decimals", 0)])


def _over_range(raw_select: str, rollup_select: str, interval: str = "$__interval"
                ) -> list[InfluxQL]:
    """Raw readings up to 7 days, the hourly `toilet_1h` rollups beyond (SPEC 9)."""
    return raw_or_rollup("toilet", raw_select, rollup_select, WHERE, '"site_id"', interval,
                         alias="$tag_site_id")


def stalls_over_time() -> timeseries.Panel:
    query = _over_range('min("stalls_free") AS "free"', 'min("stalls_free_min") AS "free"')
    return graph("Free stalls (fewest per interval)", query).min(0)


def per_visitor() -> table.Panel:
    """Water (L) and power (kWh) per visitor per toilet over the range: what each meter
    moved, over what its people counter let in."""
    meters = InfluxQL(f"""
        SELECT spread("water_m3") * 1000 AS "water_l", spread("power_kwh") AS "power_kwh"
        FROM "toilet" WHERE {WHERE} GROUP BY "site_id"
    """).table()
    visitors = InfluxQL(f"""
        SELECT sum("entries") AS "visitors" FROM "people_flow" WHERE {WHERE} GROUP BY "site_id"
    """).table()
    return grid("Water and power per visitor", [meters, visitors], height=8, width=12,
                transformations=[
                    transformation("joinByField", {"byField": "site_id", "mode": "inner"}),
                    transformation("calculateField", {
                        "alias": "litres_per_visitor", "mode": "binary",
                        "binary": {"left": "water_l", "operator": "/", "right": "visitors"}}),
                    transformation("calculateField", {
                        "alias": "wh_per_visitor", "mode": "binary",
                        "binary": {"left": "power_kwh", "operator": "/",
                                   "right": "visitors"}}),
                    transformation("organize", {"excludeByName": {"Time": True, "Time 1": True,
                                                                  "Time 2": True}}),
                ]).override_by_name("wh_per_visitor", [override("unit", "kwatth"),
                                                      override("decimals", 3)])


def water_per_hour() -> timeseries.Panel:
    query = _over_range('spread("water_m3") * 1000 AS "water_l"',
                        'sum("water_m3_used") * 1000 AS "water_l"', "1h")
    return graph("Water used per hour (L); a night that is not flat is a leak", query,
                 unit="litre", bars=True)


def satisfaction() -> timeseries.Panel:
    share = ('sum("rating_good{0}") * 100 / (sum("rating_good{0}") + sum("rating_ok{0}") '
             '+ sum("rating_bad{0}")) AS "satisfied"')
    query = _over_range(share.format(""), share.format("_sum"), "1h")
    return graph("Satisfied visitors (share of button presses)", query,
                 unit="percent").min(0).max(100)


def consumables(paper: RuleLevels | None) -> timeseries.Panel:
    paper_q = InfluxQL(f"""
        SELECT last("paper_pct") AS "paper" FROM "toilet" WHERE {WHERE}
        GROUP BY time($__interval), "site_id" fill(none)
    """).alias("$tag_site_id paper")
    return graph("Toilet paper left", [paper_q], unit="percent", levels=paper).min(0).max(100)
