"""Where the pipeline's alert events go after the engine, and when they count as delivered.

An event is published on MQTT (`_alerts`) and its point goes with the batch; it leaves the
engine's outbox once that batch is stored *and* the broker acknowledged the publish
(`AlertConfirmations`). Webhooks and Alertmanager, when configured, get every event too;
they keep their own retries (`open_webhooks`, `open_alertmanager`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode

from devices.sites import Registry
from ingest.receiver import acknowledged
from ingest.settings import AlertOutboxSettings, Settings

if TYPE_CHECKING:
    from ingest.alerts import AlertEngine, AlertEvent, WebhookNotifier
    from ingest.alerts.alertmanager import AlertmanagerNotifier

log = logging.getLogger("sanitel.pipeline")

#: An alert event's id and its MQTT publish.
Published = tuple[str, MQTTMessageInfo]


class AlertConfirmations:
    """The events published and stored, until the broker acknowledges their publish."""

    def __init__(self, engine: AlertEngine, outbox: AlertOutboxSettings) -> None:
        self.engine = engine
        self.outbox = outbox
        self.unconfirmed: list[Published] = []
        #: Some events could not be queued for the broker: the outbox is published again.
        self.unsent = False

    def stored(self, events: list[Published]) -> None:
        """These events' points are in InfluxDB (or the spool): confirmable from now on."""
        self.unconfirmed.extend(events)

    def confirm(self) -> None:
        """Events whose point is stored and whose publish the broker acknowledged leave the
        engine's outbox; the rest are published again after a restart. An event paho could
        not queue (its queue full) is let go here, bounding the list, and published again
        from the outbox once the list is empty (`to_publish_again`)."""
        if not self.unconfirmed:
            return
        done = [event_id for event_id, info in self.unconfirmed if acknowledged(info)]
        unsent = [event_id for event_id, info in self.unconfirmed
                  if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE]
        if done:
            self.engine.confirm(done)
        if done or unsent:
            finished = {*done, *unsent}
            self.unconfirmed = [e for e in self.unconfirmed if e[0] not in finished]
        if unsent and not self.unsent:
            log.warning("%d alert events could not be queued for the broker (paho holds "
                        "mqtt.max_queued_publishes already); they stay in the outbox and are "
                        "published again when it has room", len(unsent))
        self.unsent = self.unsent or bool(unsent)

    def to_publish_again(self, connected: bool) -> list[AlertEvent]:
        """Once every queued event is confirmed, the outbox's let-go events, to publish."""
        if not self.unsent or self.unconfirmed or not connected:
            return []
        self.unsent = False
        return self.engine.unconfirmed()

    def bound_outbox(self, now_ms: int) -> None:
        self.engine.bound_outbox(self.outbox.max_events, self.outbox.max_age_s, now_ms)

    async def settle(self, within_s: float) -> None:
        """At stop: confirm what the broker acknowledges within `within_s`."""
        deadline = time.monotonic() + within_s
        while self.unconfirmed and time.monotonic() < deadline:
            self.confirm()
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def open_webhooks(settings: Settings, engine: AlertEngine | None
                        ) -> AsyncIterator[WebhookNotifier | None]:
    if engine is None or not settings.webhooks.urls:
        yield None
        return
    from ingest.alerts import WebhookNotifier

    async with WebhookNotifier(settings.webhooks) as hooks:
        yield hooks


@contextlib.asynccontextmanager
async def open_alertmanager(settings: Settings, engine: AlertEngine | None,
                            registry: Callable[[], Registry]
                            ) -> AsyncIterator[AlertmanagerNotifier | None]:
    """`registry`: the registry in force (it changes with a reload)."""
    if engine is None or not settings.alertmanager.urls:
        yield None
        return
    from ingest.alerts.alertmanager import AlertmanagerNotifier

    async with AlertmanagerNotifier(
        settings.alertmanager, settings.grafana, registry, engine.active, settings.state_dir,
    ) as notifier:
        yield notifier
