"""Device health: when each device was last heard, its battery and signal, lost messages
(`seq` gaps) and its online/offline history."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard, ThresholdsConfig
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

from dashboards import variables
from dashboards.document import section, skeleton
from dashboards.influxql import PLACE_MATCH, READINGS, SITE_MATCH, InfluxQL
from dashboards.panels import (
    bool_colours,
    gauges,
    graph,
    grid,
    levels_thresholds,
    override,
    timeline,
    transformation,
)
from dashboards.thresholds import AlertLevels, RuleLevels

UID = "sanitel-device-health"
TITLE = "Sanitel / Device health"
WHERE = f"{PLACE_MATCH} AND $timeFilter"
#: The key every reading of a type carries (SPEC section 3), to find a device's last reading.
REQUIRED_FIELD = {"people_flow": "entries", "odor": "nh3_ppm", "station": "fill_pct",
                  "sprayer": "liquid_pct"}


def build(levels: AlertLevels) -> Dashboard:
    board = skeleton(
        UID, TITLE,
        "Last seen, battery, signal, lost messages (seq gaps) and offline history of every "
        "device.",
        [variables.district(), variables.site()],
    )
    board.with_row(section("Devices"))
    board.with_panel(last_seen()).with_panel(battery(levels.get("battery_low")))
    board.with_panel(signal()).with_panel(seq_gaps())
    board.with_row(section("Connectivity"))
    board.with_panel(online_history())
    return board


def last_seen() -> table.Panel:
    queries = [
        InfluxQL(f"""
            SELECT last("{field}") AS "last_value", "seq" FROM "{measurement}" WHERE {WHERE}
            GROUP BY "site_id", "device_id"
        """).table()
        for measurement, field in REQUIRED_FIELD.items()
    ]
    panel = grid("Last seen", queries, height=10, transformations=[
        transformation("merge", {}),
        transformation("organize", {"renameByName": {"Time": "last seen"}}),
        transformation("sortBy", {"sort": [{"field": "last seen", "desc": False}]}),
    ])
    return panel.override_by_name("last seen", [override("unit", "dateTimeFromNow")])


def battery(levels: RuleLevels | None) -> bargauge.Panel:
    query = InfluxQL(f"""
        SELECT last("battery_pct") AS "battery_pct" FROM {READINGS} WHERE {WHERE}
        GROUP BY "device_id"
    """).alias("$tag_device_id")
    return gauges("Battery", [query], unit="percent", height=10, minimum=0, maximum=100,
                  thresholds=levels_thresholds(levels))


def signal() -> timeseries.Panel:
    query = InfluxQL(f"""
        SELECT mean("rssi_dbm") AS "rssi_dbm" FROM {READINGS} WHERE {WHERE}
        GROUP BY time($__interval), "device_id" fill(none)
    """).alias("$tag_device_id")
    steps = [Threshold(None, "red"), Threshold(-100.0, "orange"), Threshold(-85.0, "green")]
    panel = graph("Signal (RSSI)", [query], unit="dBm")
    return panel.thresholds(ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))


def seq_gaps() -> timeseries.Panel:
    """Messages missing between consecutive `seq`; repeats and counter resets are not gaps."""
    query = InfluxQL(f"""
        SELECT sum("missing") AS "missing" FROM
            (SELECT non_negative_difference("seq") - 1 AS "missing" FROM {READINGS}
             WHERE {WHERE} GROUP BY "device_id")
        WHERE "missing" >= 0 GROUP BY time($__interval), "device_id" fill(none)
    """).alias("$tag_device_id")
    return graph("Lost messages (seq gaps)", [query], unit="short", bars=True)


def online_history() -> statetimeline.Panel:
    query = InfluxQL(f"""
        SELECT "online" FROM "device_status" WHERE {SITE_MATCH} AND $timeFilter
        GROUP BY "device_id"
    """).alias("$tag_device_id")
    return timeline("Online / offline history", [query],
                    bool_colours(("online", "green"), ("offline", "red")), width=24, height=10)
