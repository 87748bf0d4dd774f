"""The MQTT edge: a QoS 1 subscriber with a persistent session and manual acknowledgement.

paho-mqtt is used rather than aiomqtt because it can hold back the PUBACK of a reading
(`manual_ack`) until the reading is in InfluxDB or in the spool, which is the delivery
promise of SPEC section 5; aiomqtt acknowledges on receipt. paho's network thread only
appends arrivals to a deque and wakes the event loop; everything else runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.client import PUBACK
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.paho_fastpath import (
    BufferedClient,
    Publish,
    acknowledged,
    configure,
    drop_queued_packets,
    holding_publishes,
    honour_receive_maximum,
    queue_packets,
)
from ingest.settings import MqttSettings

__all__ = ["Arrival", "BrokerError", "MqttReceiver", "acknowledged"]

log = logging.getLogger("sanitel.mqtt")

#: PUBACK: fixed header 0x40, remaining length 2, packet id.
_PUBACK = struct.Struct("!BBH")


@dataclass(slots=True)
class Arrival:
    topic: str
    payload: bytes
    mid: int
    qos: int
    #: Which connection delivered it: an ack is only valid on that same connection.
    generation: int
    received_ms: int


class BrokerError(RuntimeError):
    """The broker cannot be reached or refused us; the message names it."""


class MqttReceiver:
    """`async with MqttReceiver(settings, topics) as rx:` then `await rx.wait()` / `rx.take()`."""

    def __init__(self, settings: MqttSettings, topics: list[str], shared: list[str]) -> None:
        self._settings = settings
        group = settings.shared_group
        self._filters = [*topics, *(f"$share/{group}/{t}" if group else t for t in shared)]
        self.inbox: deque[Arrival] = deque()
        #: Which connection is current; bumped (under `_ack_lock`) before each connect.
        self.generation = 0
        self._ack_lock = threading.Lock()
        #: QoS 0 arrivals dropped because the inbox held `receive_maximum` messages.
        self.dropped_qos0 = 0
        self._inbox_bound = settings.receive_maximum
        self.connected = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._signalled = False
        self._accepting = True
        self._unreachable_logged = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = self._build_client()

    def _build_client(self) -> paho.Client:
        s = self._settings
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=s.client_id,
            protocol=paho.MQTTv5, manual_ack=True,
        )
        configure(client, s)
        client.reconnect_delay_set(int(max(1, s.reconnect_min_s)), int(s.reconnect_max_s))
        client.max_queued_messages_set(s.max_queued_publishes)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publishes = self._on_publishes
        client.on_subscribe = self._on_subscribe
        client.on_connect_fail = self._on_connect_fail
        return client

    @property
    def client(self) -> paho.Client:
        return self._client

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        s = self._settings
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = s.session_expiry_s
        props.ReceiveMaximum = s.receive_maximum
        self._client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def stop_accepting(self) -> None:
        """Leave further arrivals unacknowledged: the broker keeps and redelivers them."""
        self._accepting = False

    async def wait(self, timeout: float | None) -> None:
        """Until something is in the inbox, or `timeout` seconds have passed."""
        if self.inbox:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()
        self._signalled = False

    def wake(self) -> None:
        """End a `wait` early (from the event loop's thread)."""
        self._wakeup.set()

    def ack(self, arrivals: list[Arrival]) -> None:
        """PUBACK every QoS 1 arrival of the current connection, in one write.

        paho's own `ack()` queues one packet, wakes its thread and makes one `send` per
        message; here the 4-byte PUBACKs (reason: success) of a whole batch go as one
        buffer, which the broker reads as the same packets. Arrivals from an earlier
        connection are left alone: the broker redelivers them, and their packet ids may
        already name other messages. The lock (once per batch) keeps a reconnect from
        slipping between the check and the queueing; see `_on_pre_connect`.
        """
        pack = _PUBACK.pack
        with self._ack_lock:
            generation = self.generation
            blob = b"".join(
                pack(0x40, 2, arrival.mid) for arrival in arrivals
                if arrival.qos == 1 and arrival.generation == generation
            )
            if blob:
                queue_packets(self._client, PUBACK, blob)

    def publishing(self) -> contextlib.AbstractContextManager[None]:
        """`with rx.publishing():` around many `publish` calls from one thread."""
        return holding_publishes(self._client)

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    # paho's network thread -------------------------------------------------------

    def _on_publishes(self, batch: list[Publish]) -> None:
        """The plain PUBLISHes of one socket read (paho_fastpath), in order."""
        if not self._accepting:
            return
        room = self._inbox_bound - len(self.inbox)
        if room < len(batch):  # once per socket read, not per message
            batch = self._within(batch, room)
        generation, now_ms = self.generation, int(time.time() * 1000)
        self.inbox.extend([Arrival(topic, payload, mid, qos, generation, now_ms)
                           for topic, payload, mid, qos in batch])
        self._signal()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        """Any other PUBLISH (with properties, say), through paho's own decoding."""
        if not self._accepting:
            return
        if msg.qos == 0 and len(self.inbox) >= self._inbox_bound:
            self._dropped(1)
            return
        self.inbox.append(
            Arrival(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation,
                    int(time.time() * 1000))
        )
        self._signal()

    def _within(self, batch: list[Publish], room: int) -> list[Publish]:
        """The inbox holds at most `receive_maximum` messages: QoS 1 arrivals are bounded by
        our Receive Maximum, QoS 0 ones (at most once by definition) only by this, or a
        flood of them would grow the inbox without end. Keeps QoS 0 ones while there is
        room, every QoS 1 one."""
        kept = []
        for publish in batch:
            if publish[3] == 1 or room > 0:
                kept.append(publish)
                room -= 1
        self._dropped(len(batch) - len(kept))
        return kept

    def _dropped(self, count: int) -> None:
        if count and not self.dropped_qos0:
            log.warning("the inbox holds %d messages: QoS 0 arrivals are dropped while it "
                        "does (publish readings with QoS 1)", len(self.inbox))
        self.dropped_qos0 += count

    def _signal(self) -> None:
        if not self._signalled and self._loop is not None:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def _on_pre_connect(self, client: paho.Client, userdata: Any) -> None:
        """A new connection is about to be made: arrivals of the old one may no longer be
        acknowledged, and PUBACKs queued for it since paho emptied its queue must not go
        out on the new one."""
        with self._ack_lock:
            self.generation += 1
            drop_queued_packets(client, PUBACK)

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker %s:%s refused the connection: %s",
                      self._settings.host, self._settings.port, reason)
            return
        self._unreachable_logged = False
        honour_receive_maximum(client, props)
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self._filters])
        log.info("connected to mqtt://%s:%s (session present: %s)",
                 self._settings.host, self._settings.port, flags.session_present)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        refused = [str(code) for code in reasons if code.is_failure]
        if refused:
            log.error("broker refused our subscriptions %s: %s", self._filters, refused)
        else:
            log.info("subscribed to %s", ", ".join(self._filters))
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self.connected.set)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self._unreachable_logged:  # once per outage, not at every retry
            self._unreachable_logged = True
            log.warning("cannot reach the broker at mqtt://%s:%s; retrying every %s-%s s",
                        self._settings.host, self._settings.port,
                        self._settings.reconnect_min_s, self._settings.reconnect_max_s)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)
        if reason.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason)
