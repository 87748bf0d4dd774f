"""City overview: where every site is and how it is doing, at a glance.

A map of the sites coloured by their worst active alert (a toilet that is full or has
a water leak marked as such), the active alerts, the readings flowing in, what is being
rejected, and which devices are offline.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import geomap, stat, table, timeseries
from grafana_foundation_sdk.builders.common import FrameGeometrySource, MapLayerOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, ThresholdsConfig
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode
from grafana_foundation_sdk.models.dashboard import (
    DashboardSpecialValueMapOptions,
    DynamicConfigValue,
    SpecialValueMap,
    SpecialValueMatch,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.geomap import MapCenterID, TooltipMode

from dashboards import variables
from dashboards.document import section, skeleton
from dashboards.influxql import DATASOURCE, DISTRICT_MATCH, PLACE_MATCH, SITE_MATCH, InfluxQL
from dashboards.panels import (
    SEVERITY_COLOURS,
    figure,
    graph,
    grid,
    transformation,
    value_colours,
)
from dashboards.rollup_choice import raw_hourly_or_daily
from dashboards.thresholds import AlertLevels

UID = "sanitel-city-overview"
TITLE = "Sanitel / City overview"
#: How far back an alert's last state is looked up: an alert can fire for days.
ALERT_LOOKBACK = "time > now() - 30d"
#: Worst active severity as a number, for colouring: 0 none .. 3 critical.
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
#: A toilet terminal's state on the map: its active rule, ranked (a leak beats full).
TOILET_ISSUES = {"toilet_full": (1, "full", "purple"), "toilet_water_leak": (2, "leak", "red")}


def build(levels: AlertLevels) -> Dashboard:
    del levels  # the overview draws no thresholds
    board = skeleton(
        UID, TITLE,
        "Every site on the map, coloured by its worst active alert; alerts, throughput, "
        "rejects and devices online.",
        [variables.district(), variables.site()],
    )
    board.with_row(section("City"))
    board.with_panel(site_map()).with_panel(active_alerts())
    board.with_row(section("Flow"))
    board.with_panel(readings_per_second()).with_panel(rejects_by_reason())
    board.with_panel(devices_online()).with_panel(devices_offline())
    board.with_row(section("Over the period"))
    board.with_panel(people_per_district()).with_panel(nh3_peak_per_district())
    return board


def people_per_district() -> timeseries.Panel:
    """Raw up to 7 days, hourly rollups up to 90, daily district figures beyond."""
    queries = raw_hourly_or_daily(
        "people_flow", ('sum("entries") AS "people"', 'sum("entries_sum") AS "people"',
                        'sum("people_in") AS "people"'),
        f"{PLACE_MATCH} AND $timeFilter", f"{DISTRICT_MATCH} AND $timeFilter",
        alias="$tag_district")
    return graph("People in per district", queries, unit="short", bars=True, width=12)


def nh3_peak_per_district() -> timeseries.Panel:
    queries = raw_hourly_or_daily(
        "odor", ('max("nh3_ppm") AS "nh3_ppm"', 'max("nh3_ppm_max") AS "nh3_ppm"',
                 'max("nh3_ppm_max") AS "nh3_ppm"'),
        f"{PLACE_MATCH} AND $timeFilter", f"{DISTRICT_MATCH} AND $timeFilter",
        alias="$tag_district")
    return graph("NH3 peak per district", queries, unit="ppm", width=12)


def sites_query() -> InfluxQL:
    return InfluxQL(f"""
        SELECT last("lat") AS "lat", last("lon") AS "lon", last("name") AS "name",
               last("devices") AS "devices"
        FROM "sites" WHERE {PLACE_MATCH} AND $timeFilter
        GROUP BY "site_id", "site_kind", "district"
    """).table()


def _active_of_severity(severity: str) -> str:
    rank = SEVERITY_RANK[severity]
    return f"""
        (SELECT count("state") / count("state") * {rank} AS "level" FROM
            (SELECT last("state") AS "state" FROM "alerts"
             WHERE "severity" = '{severity}' AND {SITE_MATCH} AND {ALERT_LOOKBACK}
             GROUP BY "site_id", "device_id", "rule")
         WHERE "state" != 'resolved' GROUP BY "site_id")
    """


def _active_of_rule(rule: str, rank: int) -> str:
    return f"""
        (SELECT count("state") / count("state") * {rank} AS "issue" FROM
            (SELECT last("state") AS "state" FROM "alerts"
             WHERE "rule" = '{rule}' AND {SITE_MATCH} AND {ALERT_LOOKBACK}
             GROUP BY "site_id", "device_id", "rule")
         WHERE "state" != 'resolved' GROUP BY "site_id")
    """


def toilet_issue_query() -> InfluxQL:
    """Per toilet with an active `toilet_full` or `toilet_water_leak`: 1 full, 2 leak."""
    sources = ", ".join(_active_of_rule(rule, rank) for rule, (rank, _, _) in
                        TOILET_ISSUES.items())
    return InfluxQL(
        f'SELECT max("issue") AS "toilet_issue" FROM {sources} GROUP BY "site_id"'
    ).table()


def _toilet_issue_mappings() -> list[object]:
    return [ValueMap({str(rank): ValueMappingResult(text=text, color=colour, index=i)
                      for i, (rank, text, colour) in enumerate(TOILET_ISSUES.values())})]


def _toilet_issue_layer() -> MapLayerOptions:
    """A halo over a toilet that is full (purple) or leaking (red), labelled; none elsewhere."""
    style = {
        "color": {"field": "toilet_issue", "fixed": "transparent"},
        "opacity": 0.45,
        "size": {"fixed": 18},
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "symbolAlign": {"horizontal": "center", "vertical": "center"},
        "text": {"mode": "field", "field": "toilet_issue", "fixed": ""},
        "textConfig": {"fontSize": 10, "offsetX": 0, "offsetY": 14,
                       "textAlign": "center", "textBaseline": "top"},
    }
    return (
        MapLayerOptions().type("markers").name("Toilet full or leaking")
        .config({"showLegend": False, "style": style})
        .location(FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS)
                  .latitude("lat").longitude("lon"))
        .tooltip(True)
    )


def alert_level_query() -> InfluxQL:
    """Per site, the rank of the worst severity among alerts still firing or acknowledged."""
    sources = ", ".join(_active_of_severity(s) for s in SEVERITY_RANK)
    return InfluxQL(
        f'SELECT max("level") AS "alert_level" FROM {sources} GROUP BY "site_id"'
    ).table()


def _alert_level_mappings() -> list[object]:
    names = {"0": ("none", "green")} | {
        str(rank): (name, SEVERITY_COLOURS[name]) for name, rank in SEVERITY_RANK.items()
    }
    return [
        ValueMap({v: ValueMappingResult(text=t, color=c, index=i)
                  for i, (v, (t, c)) in enumerate(names.items())}),
        SpecialValueMap(DashboardSpecialValueMapOptions(
            SpecialValueMatch.NULL, ValueMappingResult(text="none", color="green", index=4))),
    ]


def _sites_layer() -> MapLayerOptions:
    style = {
        "color": {"field": "alert_level", "fixed": "green"},
        "opacity": 0.8,
        "size": {"fixed": 8, "min": 4, "max": 15},
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "text": {"mode": "field", "field": "name", "fixed": ""},
        "textConfig": {"fontSize": 10, "offsetX": 0, "offsetY": -12,
                       "textAlign": "center", "textBaseline": "bottom"},
    }
    return (
        MapLayerOptions()
        .type("markers")
        .name("Sites")
        .config({"showLegend": True, "style": style})
        .location(FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS)
                  .latitude("lat").longitude("lon"))
        .tooltip(True)
    )


def site_map() -> geomap.Panel:
    steps = [Threshold(None, "green")] + [
        Threshold(float(rank), SEVERITY_COLOURS[name]) for name, rank in SEVERITY_RANK.items()
    ]
    return (
        geomap.Panel()
        .title("Sites by worst active alert")
        .datasource(DATASOURCE)
        .with_target(sites_query().ref_id("A"))
        .with_target(alert_level_query().ref_id("B"))
        .with_target(toilet_issue_query().ref_id("C"))
        .with_transformation(transformation("joinByField", {"byField": "site_id",
                                                            "mode": "outer"}))
        .view(geomap.MapViewConfig().id(MapCenterID.FIT).all_layers(True).zoom(11))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True)
                  .show_attribution(True))
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
        .basemap(MapLayerOptions().type("default").name("Basemap"))
        .layers([_sites_layer(), _toilet_issue_layer()])
        .thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
        .override_by_name("alert_level", [
            DynamicConfigValue(id_val="mappings", value=_alert_level_mappings()),
        ])
        .override_by_name("toilet_issue", [
            DynamicConfigValue(id_val="mappings", value=_toilet_issue_mappings()),
            DynamicConfigValue(id_val="thresholds", value=ThresholdsConfig().mode(
                ThresholdsMode.ABSOLUTE).steps([Threshold(None, "transparent")] + [
                    Threshold(float(rank), colour) for rank, _, colour in TOILET_ISSUES.values()
                ]).build()),
        ])
        .height(12).span(12)
    )


def active_alerts() -> table.Panel:
    """Alerts whose last state is firing or acknowledged; `value_text` holds non-numbers."""
    query = InfluxQL(f"""
        SELECT "state", "value", "value_text", "threshold", "message", "alert_id" FROM
            (SELECT last("state") AS "state", "value", "value_text", "threshold", "message",
                    "alert_id"
             FROM "alerts" WHERE {SITE_MATCH} AND {ALERT_LOOKBACK}
             GROUP BY "site_id", "device_id", "rule", "severity")
        WHERE "state" != 'resolved'
        GROUP BY "site_id", "device_id", "rule", "severity"
    """).table()
    panel = grid("Active alerts", [query], height=12, width=12, transformations=[
        transformation("merge", {}),
        transformation("sortBy", {"sort": [{"field": "Time", "desc": True}]}),
    ])
    colours = SEVERITY_COLOURS | {"firing": "red", "acknowledged": "yellow"}
    return panel.mappings(value_colours(colours))


def readings_per_second() -> timeseries.Panel:
    query = InfluxQL("""
        SELECT sum("received") / sum("interval_s") AS "received",
               sum("stored") / sum("interval_s") AS "stored"
        FROM "pipeline" WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)
    """).alias("$tag_instance $col")
    return graph("Readings per second", [query], unit="reqps", width=12)


def rejects_by_reason() -> timeseries.Panel:
    query = InfluxQL("""
        SELECT sum("count") AS "rejects" FROM "rejects"
        WHERE $timeFilter GROUP BY time($__interval), "reason" fill(none)
    """).alias("$tag_reason")
    return graph("Rejected messages by reason", [query], bars=True, width=12)


def _devices_with_status(online: bool) -> InfluxQL:
    name = "online" if online else "offline"
    return InfluxQL(f"""
        SELECT count("online") AS "{name}" FROM
            (SELECT last("online") AS "online" FROM "device_status"
             WHERE {SITE_MATCH} AND {ALERT_LOOKBACK} GROUP BY "device_id")
        WHERE "online" = {"true" if online else "false"}
    """)


def devices_online() -> stat.Panel:
    return figure("Devices online", [_devices_with_status(True)], width=12, height=6,
                  thresholds=ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
                  .steps([Threshold(None, "green")]))


def devices_offline() -> stat.Panel:
    return figure("Devices offline", [_devices_with_status(False)],
                  width=12, height=6,
                  thresholds=ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
                  .steps([Threshold(None, "green"), Threshold(1.0, "red")]))
