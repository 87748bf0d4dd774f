"""`/metrics` (SPEC section 10): the pipeline's figures in the Prometheus text format.

A custom collector reads the plain counters the pipeline keeps anyway (`PipelineStats`,
`StoreFigures`, the spool, the queues) when Prometheus scrapes: handling a message costs no
extra work and takes no lock. Scrapes run on the event loop, like the pipeline, so they
read consistent values without locks either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ingest.rejects import RejectReason

if TYPE_CHECKING:
    from ingest.pipeline import Pipeline
    from ingest.reload import ConfigReloader

SEVERITIES = ("info", "warning", "critical")


def metrics_registry(pipeline: Pipeline, reloader: ConfigReloader | None) -> CollectorRegistry:
    """A registry of this pipeline's figures and the process's own (CPU, memory, files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(pipeline, reloader))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline, reloader: ConfigReloader | None) -> None:
        self._pipeline = pipeline
        self._reloader = reloader

    def collect(self) -> Iterator[Metric]:
        p = self._pipeline
        yield InfoMetricFamily("sanitel", "This sanitel ingest.", value={
            "instance": p.settings.pipeline.instance, "role": p.settings.pipeline.role})
        yield _counter("sanitel_messages_received_total",
                       "Messages taken from the broker (readings, statuses, acks).",
                       p.stats.received)
        yield self._rejected()
        yield _counter("sanitel_alert_events_total", "Alert state changes published.",
                       p.stats.alerts)
        yield _gauge("sanitel_registry_devices", "Devices in the registry in force.",
                     len(p.registry.devices))
        yield _gauge("sanitel_registry_sites", "Sites in the registry in force.",
                     len(p.registry.sites))
        if hasattr(p, "store"):  # running: the store and the receiver exist
            yield from self._store()
            yield from self._flow()
        yield from self._alerts()
        yield from self._reloads()

    def _rejected(self) -> CounterMetricFamily:
        p = self._pipeline
        family = CounterMetricFamily("sanitel_rejected_total",
                                     "Messages rejected and dead-lettered, by reason (SPEC 3).",
                                     labels=["reason"])
        by_reason = p.stats.rejected_by_reason
        for reason in RejectReason:
            value = by_reason[reason]
            if reason == RejectReason.STORAGE_REJECTED and hasattr(p, "store"):
                value = max(value, p.store.figures.storage_rejected)  # spooled points too
            family.add_metric([reason.value], value)
        return family

    def _store(self) -> Iterator[Metric]:
        store = self._pipeline.store
        f = store.figures
        yield _counter("sanitel_points_stored_total", "Points InfluxDB took: readings, "
                       "statuses and the pipeline's own (pipeline, rejects, alerts, sites).",
                       f.stored)
        yield _counter("sanitel_points_spooled_total",
                       "Points written to the disk spool while InfluxDB was away.", f.spooled)
        yield _counter("sanitel_points_replayed_total",
                       "Points written from the spool to InfluxDB (rate: the replay rate).",
                       f.replayed)
        yield _gauge("sanitel_spool_bytes", "Bytes in the disk spool.", store.spool.bytes)
        yield _gauge("sanitel_spool_files", "Batches (files) in the disk spool.",
                     store.spool.batches)
        yield _gauge("sanitel_spool_max_bytes", "The spool's bound (spool.max_bytes).",
                     store.spool.max_bytes)
        yield _gauge("sanitel_acknowledgement_paused", "1 while the spool refuses batches and "
                     "readings are left unacknowledged with the broker.", int(f.paused))
        yield _gauge("sanitel_influxdb_writable", "0 from a failed write until one succeeds.",
                     int(not store.influx_unavailable))
        yield _gauge("sanitel_influxdb_credentials_refused", "1 while InfluxDB refuses our "
                     "credentials (401/403); readings wait in the spool.",
                     int(f.credentials_refused))
        yield _counter("sanitel_influxdb_credentials_refusals_total",
                       "Writes refused for credentials.", f.credentials_refusals)
        yield _gauge("sanitel_last_write_error_timestamp_seconds",
                     "When a write to InfluxDB last failed (0: never).", f.last_error_at)
        if f.last_error:
            yield InfoMetricFamily("sanitel_last_write_error", "The last failed write.",
                                   value={"error": f.last_error[:200]})
        hist = f.write_seconds
        yield HistogramMetricFamily(
            "sanitel_write_duration_seconds", "Duration of successful InfluxDB writes.",
            buckets=hist.cumulative(), sum_value=hist.total_s)

    def _flow(self) -> Iterator[Metric]:
        p = self._pipeline
        yield _gauge("sanitel_queue_depth", "Messages waiting in the inbox plus batches "
                     "waiting for the writer.", len(p.rx.inbox) + p.store.queue.qsize())
        yield _gauge("sanitel_inflight_messages", "Messages taken from the broker and not yet "
                     "acknowledged.", p.stats.inflight)
        yield _gauge("sanitel_broker_connected", "1 while connected and subscribed.",
                     int(p.rx.connected.is_set()))
        hooks = p.webhooks
        if hooks is not None:
            family = CounterMetricFamily("sanitel_webhook_deliveries_total",
                                         "Alert webhook deliveries by outcome (failed: after "
                                         "every retry; dropped: too many pending).",
                                         labels=["outcome"])
            for outcome, value in (("delivered", hooks.delivered), ("failed", hooks.failed),
                                   ("dropped", hooks.dropped)):
                family.add_metric([outcome], value)
            yield family
        manager = p.alertmanager
        if manager is not None:
            yield _counter("sanitel_alertmanager_alerts_sent_total",
                           "Alerts POSTed to Alertmanager (re-sends included).", manager.sent)
            yield _counter("sanitel_alertmanager_failures_total",
                           "POSTs to Alertmanager that failed (retried).", manager.failures)

    def _alerts(self) -> Iterator[Metric]:
        engine = self._pipeline.alerts
        if engine is None:
            return
        active = GaugeMetricFamily("sanitel_alerts_active", "Open alert incidents (firing or "
                                   "acknowledged), by severity.", labels=["severity"])
        counts = dict.fromkeys(SEVERITIES, 0)
        for incident in engine.active():
            counts[incident.severity] = counts.get(incident.severity, 0) + 1
        for severity, count in counts.items():
            active.add_metric([severity], count)
        yield active
        yield _gauge("sanitel_alert_outbox_events", "Alert events not yet confirmed published "
                     "and stored (delivered again after a restart).", engine.outbox_size())
        yield _gauge("sanitel_alert_rules", "Alert rules in force.", len(engine.rules))

    def _reloads(self) -> Iterator[Metric]:
        r = self._reloader
        if r is None:
            return
        yield _gauge("sanitel_config_last_reload_successful",
                     "0 when the last reload failed (the previous files stay in force).",
                     int(r.last_error is None))
        yield _gauge("sanitel_config_last_reload_success_timestamp_seconds",
                     "When the configuration was last loaded successfully.", r.last_success_at)
        family = CounterMetricFamily("sanitel_config_reloads_total",
                                     "Reloads of the registry and alert rules, by outcome.",
                                     labels=["outcome"])
        family.add_metric(["success"], r.succeeded)
        family.add_metric(["failure"], r.failed)
        yield family


