"""The pipeline: receive -> validate -> store, alert. The whole flow, top to bottom.

    MQTT (paho thread) --inbox--> validate --> batch --> Store --> InfluxDB | spool
                                     |           ^           +--> ack to the broker
                                     |           |
                                     +-> alerts -+-> MQTT `_alerts`, webhooks, Alertmanager
                                     +-> dead letters -> MQTT `_dlq`, `rejects` points
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from paho.mqtt.client import MQTTMessageInfo

from devices.crews import Crews
from devices.sites import Device, Registry
from ingest.alert_delivery import AlertConfirmations, open_alertmanager, open_webhooks
from ingest.alerts.acks import ack_filters, is_ack_topic, parse_ack, refusal
from ingest.deadletter import DeadLetters
from ingest.influx_writer import InfluxWriter, open_writer
from ingest.lineproto import reading_line, site_points, status_line
from ingest.receiver import Arrival, MqttReceiver
from ingest.rejects import Rejected, RejectReason
from ingest.rollup_task import RollupTask
from ingest.rollups import HOUR_MS
from ingest.settings import Settings
from ingest.spool import Spool
from ingest.stats import PipelineStats
from ingest.store_stage import Batch, Store
from ingest.topics import STATUS_FILTER, TELEMETRY_FILTER
from ingest.validation import Validator

if TYPE_CHECKING:
    from ingest.alerts import AlertEngine, AlertEvent, WebhookNotifier
    from ingest.alerts.alertmanager import AlertmanagerNotifier

log = logging.getLogger("sanitel.pipeline")

SITES_EVERY_S = 60.0
SWEEP_EVERY_S = 1.0
#: At stop, how long the broker has to acknowledge the last alert events.
CONFIRM_AT_STOP_S = 5.0
#: Arrivals handled before the loop lets other tasks (writes, timers) run.
SLICE = 2000
#: The longest a batch waits to fill while a backlog is being drained.
HOLD_MAX_S = 0.5


def now_ms() -> int:
    return int(time.time() * 1000)


class Pipeline:
    def __init__(
        self, settings: Settings, registry: Registry, alerts: AlertEngine | None = None,
        crews: Crews | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.alerts = alerts
        self.crews = crews
        self.validator = Validator(registry, int(settings.pipeline.max_future_s * 1000))
        self.stats = PipelineStats(settings.pipeline.instance)
        self.batch = Batch()
        self._flush_s = settings.influx.flush_interval_ms / 1000
        #: Where alert events go besides MQTT, when configured (open while `run` runs).
        self.webhooks: WebhookNotifier | None = None
        self.alertmanager: AlertmanagerNotifier | None = None
        self.confirmations = (AlertConfirmations(alerts, settings.alert_outbox)
                              if alerts is not None else None)
        #: Dead letters of the slice being handled (published at its end), else None.
        self._slice_rejects: list[tuple[RejectReason, str, Arrival]] | None = None
        # An `alerts` instance sees what the `store` instances store and dead-letter.
        self._stores = settings.pipeline.role != "alerts"

    def use_registry(self, registry: Registry) -> None:
        """Check every message from now on against `registry` (a reload, SPEC section 10)."""
        self.registry = registry
        self.validator = Validator(registry, int(self.settings.pipeline.max_future_s * 1000))

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        s = self.settings
        spool = Spool(s.spool_dir, s.spool.max_bytes)
        mqtt = s.mqtt if self._stores else s.mqtt.model_copy(update={"shared_group": None})
        acks = ack_filters(s.access.enabled)
        receiver = MqttReceiver(mqtt, acks, [TELEMETRY_FILTER, STATUS_FILTER])
        # The hours each batch touched are rolled up again (SPEC section 9).
        self.rollups = RollupTask(s) if self._stores and s.retention.rollups else None
        async with (
            open_writer(s.influx) as writer,
            receiver as rx,
            open_webhooks(s, self.alerts) as hooks,
            open_alertmanager(s, self.alerts, lambda: self.registry) as alertmanager,
        ):
            self.rx, self.webhooks, self.alertmanager = rx, hooks, alertmanager
            self.dlq = DeadLetters(lambda topic, payload: rx.publish(topic, payload),
                                   s.pipeline.instance)
            self.store = self.open_store(writer, spool)
            async with asyncio.TaskGroup() as tasks:
                writing = tasks.create_task(self.store.run())
                ticking = tasks.create_task(self._tick())
                background = [tasks.create_task(self.store.replay())]
                if self.rollups is not None:
                    background.append(tasks.create_task(self.rollups.run()))
                if self.confirmations is not None:  # alerts on: events a crash kept
                    self.confirmations.bound_outbox(now_ms())  # from their crews
                    self._emit(self.confirmations.engine.unconfirmed())
                if started is not None:
                    background.append(tasks.create_task(self._announce(rx, started)))
                await self._receive(stop)
                await self._drain(writing, ticking)
                for task in background:
                    task.cancel()

    def open_store(self, writer: InfluxWriter, spool: Spool) -> Store:
        """The store stage, acknowledging through us and noting hours for the rollups."""
        s = self.settings
        return Store(
            writer, spool, s.spool, self._ack, self._storage_rejected,
            s.pipeline.max_pending_batches, self._batch_stored,
            max_points=s.influx.batch_size, max_bytes=s.influx.max_body_bytes,
            noted=self.rollups.dirty.add if self.rollups is not None else None,
        )

    @staticmethod
    async def _announce(rx: MqttReceiver, started: asyncio.Event) -> None:
        """`started` once subscribed (or after 10 s without a broker); readings that the
        broker sends before our SUBACK are handled meanwhile."""
        try:
            await asyncio.wait_for(rx.connected.wait(), 10)
        except TimeoutError:
            log.warning("no broker after 10 s; running, and connecting as soon as it answers")
        started.set()

    # receive -> validate -> batch ---------------------------------------------------

    async def _receive(self, stop: asyncio.Event) -> None:
        rx = self.rx

        async def wake_on_stop() -> None:
            await stop.wait()
            rx.wake()

        waker = asyncio.create_task(wake_on_stop())
        while not stop.is_set():
            await rx.wait(self._flush_s)
            self._handle_slice(max(1, min(SLICE, self.settings.influx.batch_size
                                          - self._batch_points())))
            await self._flush_if_due()
            await asyncio.sleep(0)
        await waker

    def _handle_slice(self, limit: int) -> None:
        inbox = self.rx.inbox
        rejects: list[tuple[RejectReason, str, Arrival]] = []
        self._slice_rejects = rejects
        try:
            for _ in range(min(limit, len(inbox))):
                self._handle(inbox.popleft())
        finally:
            self._slice_rejects = None
        if rejects:  # the slice's dead letters in one burst: paho's lock taken once
            with self.rx.publishing():
                for reason, detail, arrival in rejects:
                    self._dead_letter_now(reason, detail, arrival)

    def _handle(self, arrival: Arrival) -> None:
        self.stats.received += 1
        self.stats.inflight += 1
        self.batch.arrivals.append(arrival)
        if is_ack_topic(arrival.topic):
            self._handle_ack(arrival)
            return
        try:
            accepted = self.validator.check(arrival.topic, arrival.payload, arrival.received_ms)
        except Rejected as rejected:
            self._dead_letter(rejected.reason, rejected.detail, arrival)
            return
        device, message, ts_ms = accepted.device, accepted.message, accepted.ts_ms
        alerts = self.alerts
        if accepted.kind == "telemetry":
            if self._stores:
                batch = self.batch
                batch.add(reading_line(device, message, ts_ms), arrival)  # type: ignore[arg-type]
                # for the rollups: a set insert here, not parsing each written line again;
                # the hour is `rollups.hour_of`, written out (no call per reading)
                batch.hours.add((message.measurement, ts_ms - ts_ms % HOUR_MS))  # type: ignore[union-attr]
            if alerts is not None:
                events = alerts.on_reading(device, message, ts_ms, arrival.received_ms)  # type: ignore[arg-type]
                if events:
                    self._emit(events)
        else:
            online: bool = message.online  # type: ignore[union-attr]
            if self._stores:
                self.batch.add(status_line(device, online, ts_ms), arrival)
            if alerts is not None:
                self._emit(alerts.on_status(device, online, ts_ms, arrival.received_ms))

    def _handle_ack(self, arrival: Arrival) -> None:
        try:
            ack = parse_ack(arrival.topic, arrival.payload)
        except Rejected as rejected:
            self._dead_letter(rejected.reason, rejected.detail, arrival)
            return
        if self.alerts is not None:
            why = refusal(ack, self.alerts.site_of(ack.alert_id), self.registry, self.crews)
            if why is not None:
                log.warning(why)
                return
            self._emit(self.alerts.on_ack(ack.alert_id, ack.by, now_ms()))

    def _dead_letter(self, reason: RejectReason, detail: str, arrival: Arrival) -> None:
        """Reject an arrival of the open batch: its ack waits for the dead letter's PUBACK.
        Within a slice the publish waits for the slice's end (same batch): taking paho's
        lock of outgoing messages per dead letter, or over the whole slice, stalled one
        thread or the other (py-spy)."""
        if self._slice_rejects is not None:
            self._slice_rejects.append((reason, detail, arrival))
        else:
            self._dead_letter_now(reason, detail, arrival)

    def _dead_letter_now(self, reason: RejectReason, detail: str, arrival: Arrival) -> None:
        info = self._reject(reason, detail, arrival)
        if info is not None:
            self.batch.dead_letters.append((info, arrival))

    def _reject(
        self, reason: RejectReason, detail: str, arrival: Arrival
    ) -> MQTTMessageInfo | None:
        self.stats.rejected += 1
        self.stats.rejected_by_reason[reason] += 1
        if self._stores:
            return self.dlq.reject(
                reason, detail, arrival.topic, arrival.payload, arrival.received_ms
            )
        return None

    def _emit(self, events: Sequence[AlertEvent]) -> None:
        for event in events:
            self.stats.alerts += 1
            info = self.rx.publish(event.topic(), event.payload(), qos=1)
            self.batch.add(event.line())
            self.batch.events.append((event.event_id, info))
            if self.webhooks is not None:
                self.webhooks.submit(event)
            if self.alertmanager is not None:
                self.alertmanager.submit(event)

    # batch -> store -----------------------------------------------------------------

    async def _flush_if_due(self) -> None:
        batch = self.batch
        if not (batch.lines or batch.arrivals):
            batch.opened = time.monotonic()
            return
        full = self._batch_points() >= self.settings.influx.batch_size
        age = time.monotonic() - batch.opened
        # While a backlog waits in the inbox (more than a slice), the batch fills up instead
        # of going at the flush interval: draining 50k, slices slower than the interval
        # made batches of one slice (~2,000 points), 2.5x the writes. Never held longer
        # than HOLD_MAX_S; live traffic (less than a slice waiting) keeps the interval.
        backlog = len(self.rx.inbox) >= SLICE
        if full or (age >= self._flush_s and (not backlog or age >= HOLD_MAX_S)):
            await self._flush()

    def _batch_points(self) -> int:
        """The points the open batch will be written with: its lines and the `rejects`
        points its flush adds. A slice takes no more arrivals than fit, so that a batch that
        fills goes in one write of `influx.batch_size` points: slices of 2,000 had made
        batches of 6,000 lines written as 5,000 and 1,000, two requests one after the other."""
        return len(self.batch) + self.dlq.pending_points

    async def _flush(self) -> None:
        # Swap first: the timers keep adding to `self.batch` while we wait for room.
        batch, self.batch = self.batch, Batch()
        for line in self.dlq.drain_points(now_ms()):
            batch.add(line)
        await self.store.queue.put(batch)

    def _ack(self, arrivals: list[Arrival]) -> None:
        self.stats.inflight -= len(arrivals)
        self.rx.ack(arrivals)

    def _batch_stored(self, batch: Batch) -> None:
        if self.confirmations is not None:
            self.confirmations.stored(batch.events)

    def _storage_rejected(self, detail: str, origin: Arrival | None) -> MQTTMessageInfo | None:
        if origin is None:
            return self.dlq.reject(RejectReason.STORAGE_REJECTED, detail, "", b"", now_ms())
        return self._reject(RejectReason.STORAGE_REJECTED, detail, origin)

    async def _drain(self, writing: asyncio.Task[None], ticking: asyncio.Task[None]) -> None:
        """Stop taking messages, store what we hold, acknowledge it; bounded in time. The
        timers stop first: an alert event raised after the last batch would be neither
        stored nor confirmed, and left in the outbox for the next start."""
        self.rx.stop_accepting()
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        if self.alerts is not None:  # the last sweep: its events go with the last batch
            self._emit(self.alerts.sweep(now_ms()))
        while self.rx.inbox:
            self._handle_slice(SLICE)
        self.batch.add(self._stats_point())
        await self._flush()
        await self.store.queue.put(None)
        timeout = self.settings.pipeline.shutdown_timeout_s
        try:
            await asyncio.wait_for(asyncio.shield(writing), timeout)
        except TimeoutError:
            log.error("could not store everything within %.0f s; the broker keeps the rest "
                      "unacknowledged and redelivers it on the next start", timeout)
            writing.cancel()
        if self.confirmations is not None:
            await self.confirmations.settle(CONFIRM_AT_STOP_S)

    # timers -------------------------------------------------------------------------

    async def _tick(self) -> None:
        stats_every = self.settings.pipeline.stats_interval_s
        next_stats = next_sites = time.monotonic()
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            if self.confirmations is not None:  # alerts on
                self._emit(self.confirmations.engine.sweep(now_ms()))
                self.confirmations.confirm()
                self._emit(self.confirmations.to_publish_again(self.rx.connected.is_set()))
            now = time.monotonic()
            if now >= next_stats:
                self.batch.add(self._stats_point())
                next_stats = now + stats_every
            if now >= next_sites:
                if self.confirmations is not None:
                    self.confirmations.bound_outbox(now_ms())
                for line in site_points(self.registry, now_ms()):
                    self.batch.add(line)
                next_sites = now + SITES_EVERY_S

    def _stats_point(self) -> str:
        store = self.store
        return self.stats.point(
            store.figures, len(self.rx.inbox) + store.queue.qsize(),
            store.spool.bytes, store.spool.batches, now_ms(),
        )


def describe(settings: Settings, registry: Registry, rules: int | None) -> str:
    s = settings
    group = f", shared group {s.mqtt.shared_group!r}" if s.mqtt.shared_group else ""
    if s.pipeline.role != "all":
        group += f", role {s.pipeline.role}"
    devices: dict[str, Device] = registry.devices
    return (
        f"sanitel ingest: started; broker mqtt://{s.mqtt.host}:{s.mqtt.port} "
        f"(client id {s.mqtt.client_id!r}{group}); InfluxDB {s.influx.api} {s.influx.url} "
        f"database {s.influx.database!r}; registry {len(registry.sites)} sites, "
        f"{len(devices)} devices" + (f"; {rules} alert rules" if rules is not None else "")
    )
