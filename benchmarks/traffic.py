"""The benchmark's traffic: a simulated city's readings, stamped with their send time.

Pure parts: `city_traffic` turns the simulator's messages into `Item`s once, and an
`Encoder` builds each payload just before it is published, with `ts` = the send time
(epoch ms, made unique per device so that no two readings of one device share a point)
and a fresh per-device `seq`. Bad messages go out as the simulator spoiled them; a
duplicate repeats the bytes of the reading before it. `Publisher` is the I/O edge.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.registry import DEVICE_TYPES
from devices.sites import Registry
from simulators import FaultKind, FaultRates, Simulator, generate_city
from simulators.engine import DUPLICATE, STORED

#: Where every contender's session subscribes.
TELEMETRY_FILTER = "sanitation/v1/+/+/+/telemetry"
#: Measurement of each device type in Sanitel's schema (SPEC section 5).
MEASUREMENTS = tuple(model.measurement for model in DEVICE_TYPES.values())
#: The message-breaking fault kinds; together they make `bad_share` of the readings.
BAD_KINDS = (
    FaultKind.MALFORMED_JSON,
    FaultKind.OUT_OF_RANGE,
    FaultKind.WRONG_TYPE,
    FaultKind.UNKNOWN_DEVICE,
    FaultKind.DEVICE_MISMATCH,
    FaultKind.PAYLOAD_TOO_LARGE,
    FaultKind.CLOCK_SKEW,
)


class TrafficError(RuntimeError):
    """The requested traffic cannot be built; the message says why."""


@dataclass(frozen=True, slots=True)
class Item:
    topic: str
    device_id: str
    #: `stored`, `duplicate`, or the reject reason the pipeline must give it.
    expect: str
    #: A good reading's fields (ts and seq are set at send time); None for the others.
    fields: dict[str, Any] | None
    #: The bytes to send as they are (bad messages); None for good readings and duplicates.
    raw: bytes | None


@dataclass
class Traffic:
    items: list[Item]
    devices: int
    sites: int

    @property
    def counts(self) -> Counter[str]:
        return Counter(item.expect for item in self.items)

    @property
    def good(self) -> int:
        """Distinct good readings: each one must become exactly one point."""
        return sum(1 for item in self.items if item.expect == STORED)

    @property
    def bad(self) -> int:
        return sum(1 for item in self.items if item.expect not in (STORED, DUPLICATE))

    def types(self) -> Counter[str]:
        return Counter(item.topic.split("/")[3] for item in self.items)


def fault_rates(bad_share: float, duplicate_share: float) -> FaultRates:
    rates = {kind: bad_share / len(BAD_KINDS) for kind in BAD_KINDS}
    if duplicate_share:
        rates[FaultKind.DUPLICATE] = duplicate_share
    return FaultRates(rates)


def city_registry(sites: int, seed: int, max_devices: int | None = None) -> dict[str, Any]:
    """`generate_city`'s registry dict, cut to at most `max_devices` devices."""
    city = generate_city(sites=sites, seed=seed)
    if max_devices is None:
        return city
    kept, left = [], max_devices
    for site in city["sites"]:
        if left <= 0:
            break
        site = {**site, "devices": site["devices"][:left]}
        left -= len(site["devices"])
        kept.append(site)
    return {"sites": kept}


def city_traffic(
    registry: Registry, messages: int, *, seed: int, bad_share: float = 0.03,
    duplicate_share: float = 0.005, phased: bool = True,
) -> Traffic:
    """Exactly `messages` telemetry messages of the city, in its schedule's order."""
    now = int(time.time() * 1000)
    sim = Simulator(
        registry, seed=seed, start_ms=now - 86_400_000, phased=phased,
        faults=fault_rates(bad_share, duplicate_share),
        wall_clock=lambda: int(time.time() * 1000),
    )
    items: list[Item] = []
    while len(items) < messages:
        for message in sim.take(min(10_000, messages)):
            if not message.topic.endswith("/telemetry"):
                continue  # status messages (no fault kind here makes them)
            items.append(_item(message.topic, message.device_id, message.expect, message.payload))
    del items[messages:]
    if items and items[0].expect == DUPLICATE:
        raise TrafficError("the traffic starts with a duplicate; use another seed")
    return Traffic(items, len(registry.devices), len(registry.sites))


def one_reading_each(registry: Registry, seed: int) -> Traffic:
    """One good reading from every device of the registry."""
    now = int(time.time() * 1000)
    sim = Simulator(registry, seed=seed, start_ms=now - 60_000, phased=False)
    items = [
        _item(m.topic, m.device_id, m.expect, m.payload)
        for m in sim.due(now - 60_000)
        if m.topic.endswith("/telemetry")
    ]
    return Traffic(items, len(registry.devices), len(registry.sites))


def _item(topic: str, device_id: str, expect: str, payload: bytes) -> Item:
    if expect == STORED:
        fields = orjson.loads(payload)
        fields.pop("ts", None)
        fields.pop("seq", None)
        return Item(topic, device_id, expect, fields, None)
    if expect == DUPLICATE:
        return Item(topic, device_id, expect, None, None)
    return Item(topic, device_id, expect, None, payload)


@dataclass
class Encoder:
    """Builds payloads at send time; `sent_ts` records each good reading's (device, ts)."""

    record: bool = False
    _last_ts: dict[str, int] = field(default_factory=dict)
    _seq: dict[str, int] = field(default_factory=dict)
    _previous: bytes = b""
    sent: list[tuple[str, int]] = field(default_factory=list)

    def encode(self, item: Item, now_ms: int) -> bytes:
        if item.fields is not None:
            ts = max(now_ms, self._last_ts.get(item.device_id, 0) + 1)
            self._last_ts[item.device_id] = ts
            seq = self._seq.get(item.device_id, 0)
            self._seq[item.device_id] = seq + 1
            payload = orjson.dumps({"ts": ts, "seq": seq, **item.fields})
            if self.record:
                self.sent.append((item.device_id, ts))
        elif item.raw is not None:
            payload = item.raw
        else:
            payload = self._previous  # a duplicate of the reading just before
        self._previous = payload
        return payload


def cycle(items: Sequence[Item], count: int) -> Iterator[Item]:
    """`count` items, going round `items` as often as needed (seq and ts stay fresh)."""
    for i in range(count):
        yield items[i % len(items)]


#: QoS 1 messages a publisher has in flight (a window of 2,000 made paho 3x slower).
INFLIGHT = 200


class Publisher:
    """A QoS 1 MQTT v5 publisher (its own network thread); `send` paces or floods."""

    def __init__(self, host: str, port: int, client_id: str = "bench-publisher") -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        # paho walks its whole queue of unsent messages on every PUBACK: a short window
        # and never more than it in flight (see `send`) keeps that cheap.
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.max_queued_messages_set(0)
        self._acked = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=60)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self._acked += 1

    @property
    def acked(self) -> int:
        return self._acked

    def send(
        self, items: Iterable[Item], encoder: Encoder, *, rate: float | None = None,
        progress: Callable[[int], None] | None = None, stop: threading.Event | None = None,
        deadline: float | None = None,
    ) -> int:
        """Publish every item (at `rate` per second, or as fast as the broker takes them)."""
        start, sent = time.monotonic(), 0
        publish, clock = self.client.publish, time.time
        for item in items:
            if rate is not None:
                due = start + sent / rate
                delay = due - time.monotonic()
                if delay > 0.002:
                    time.sleep(delay)
            while sent - self._acked >= INFLIGHT:  # let the broker keep up
                time.sleep(0.0005)
            publish(item.topic, encoder.encode(item, int(clock() * 1000)), qos=1)
            sent += 1
            if progress is not None and sent % 500 == 0:
                progress(sent)
            if sent % 500 == 0 and (
                (stop is not None and stop.is_set())
                or (deadline is not None and time.monotonic() > deadline)
            ):
                break
        if progress is not None:
            progress(sent)
        return sent

    def wait_acked(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._acked < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class BacklogNotQueued(RuntimeError):
    """The broker did not acknowledge every reading of a backlog in time."""


def publish_backlog(host: str, port: int, items: Iterable[Item], *,
                    progress: Callable[[int], None] | None = None) -> int:
    """Publish every item once, as fast as the broker takes them (at most 300 s), and wait
    up to 60 s for all its PUBACKs: the backlog then waits, queued, for each consumer's
    session. Returns how many were sent; `BacklogNotQueued` if some were not acknowledged."""
    publisher = Publisher(host, port)
    try:
        sent = publisher.send(items, Encoder(), progress=progress,
                              deadline=time.monotonic() + 300)
        if not publisher.wait_acked(sent, 60):
            raise BacklogNotQueued(f"the broker acknowledged {publisher.acked} of {sent} "
                                   "readings")
    finally:
        publisher.close()
    return sent
