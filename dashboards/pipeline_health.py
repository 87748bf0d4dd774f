"""Pipeline: the ingest processes' own figures — throughput, write latency, queue and
spool, back-pressure pauses and rejects."""

from __future__ import annotations

from grafana_foundation_sdk.builders import statetimeline, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import variables
from dashboards.document import section, skeleton
from dashboards.influxql import InfluxQL
from dashboards.panels import bool_colours, graph, override, timeline
from dashboards.thresholds import AlertLevels

UID = "sanitel-pipeline"
TITLE = "Sanitel / Pipeline"
WHERE = '"instance" =~ /^$instance$/ AND $timeFilter'


def build(levels: AlertLevels) -> Dashboard:
    del levels
    board = skeleton(
        UID, TITLE,
        "Throughput, write latency, queue and spool of every `sanitel ingest` instance, "
        "and the messages it rejected.",
        [variables.instance()],
    )
    board.with_row(section("Throughput"))
    board.with_panel(throughput()).with_panel(write_latency())
    board.with_row(section("Backlog"))
    board.with_panel(queue()).with_panel(spool())
    board.with_panel(paused()).with_panel(rejects())
    return board


def _pipeline(select: str) -> InfluxQL:
    return InfluxQL(f"""
        SELECT {select} FROM "pipeline" WHERE {WHERE}
        GROUP BY time($__interval), "instance" fill(none)
    """).alias("$tag_instance $col")


def throughput() -> timeseries.Panel:
    query = _pipeline("""
        sum("received") / sum("interval_s") AS "received",
        sum("stored") / sum("interval_s") AS "stored",
        sum("rejected") / sum("interval_s") AS "rejected",
        sum("alerts") / sum("interval_s") AS "alerts"
    """)
    return graph("Messages per second", [query], unit="reqps")


def write_latency() -> timeseries.Panel:
    query = _pipeline("""
        mean("write_latency_ms_p50") AS "p50", max("write_latency_ms_max") AS "max"
    """)
    return graph("InfluxDB write latency", [query], unit="ms")


def queue() -> timeseries.Panel:
    query = _pipeline('max("queue_depth") AS "queued batches", max("inflight") AS "unacked"')
    return graph("Queue and unacknowledged messages", [query], unit="short")


def spool() -> timeseries.Panel:
    size = _pipeline('max("spool_bytes") AS "spool"')
    batches = _pipeline('max("spool_batches") AS "batches"')
    panel = graph("Spool on disk", [size, batches], unit="bytes")
    return panel.override_by_query("B", [override("unit", "short")])


def paused() -> statetimeline.Panel:
    query = InfluxQL(f'SELECT "paused" FROM "pipeline" WHERE {WHERE} GROUP BY "instance"')
    return timeline("Receiving paused (back-pressure)", [query.alias("$tag_instance")],
                    bool_colours(("paused", "orange"), ("receiving", "green")))


def rejects() -> timeseries.Panel:
    query = InfluxQL("""
        SELECT sum("count") AS "rejects" FROM "rejects"
        WHERE $timeFilter GROUP BY time($__interval), "reason" fill(none)
    """).alias("$tag_reason")
    return graph("Rejected messages by reason", [query], bars=True)
