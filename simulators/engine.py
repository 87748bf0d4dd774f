"""The simulated city as a stream of MQTT messages, on the simulated clock; no I/O.

`Simulator` keeps every device's schedule (its registry `interval_s`, phased at random
so the city does not report all at once), builds each reading from its site's state,
injects faults at their rates, and counts everything in its `Tally`. The same seed,
start and registry give the same messages byte for byte.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

import orjson

from devices.sites import Device, Registry, SiteEntry
from simulators import faults as spoil
from simulators.behaviour import Fields
from simulators.faults import REJECT_REASON, FaultKind, FaultRates
from simulators.site import SiteSim
from simulators.tally import Tally

TOPIC_ROOT = "sanitation/v1"
ONLINE = orjson.dumps({"online": True})
OFFLINE = orjson.dumps({"online": False})
#: `Message.expect` for anything that is not a reject reason.
STORED, DUPLICATE, STATUS = "stored", "duplicate", "status"


def telemetry_topic(site_id: str, device_type: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{site_id}/{device_type}/{device_id}/telemetry"


def status_topic(device: Device) -> str:
    return f"{TOPIC_ROOT}/{device.site.id}/{device.type}/{device.id}/status"


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    device_id: str
    device_type: str
    retain: bool = False
    #: What the pipeline should do with it: `stored`, `duplicate` (a repeat of the message
    #: before), `status`, or the reject reason.
    expect: str = STORED
    fault: FaultKind | None = None


@dataclass(slots=True)
class DeviceSim:
    device: Device
    battery_pct: float
    drain_pct: float
    rssi_base: float
    seq: int = 0
    stuck_left: int = 0
    stuck_fields: Fields | None = None
    silent_left: int = 0


class Simulator:
    def __init__(
        self,
        registry: Registry,
        *,
        seed: int = 0,
        start_ms: int,
        faults: FaultRates | None = None,
        utc_offset_h: float = 8.0,
        phased: bool = True,
        wall_clock: Callable[[], int] | None = None,
    ) -> None:
        """`phased=False` makes every device's first reading fall at `start_ms` (for --once);
        `wall_clock` (epoch ms) puts clock-skew faults ahead of the wall as well."""
        self.registry = registry
        self.seed = seed
        self.start_ms = start_ms
        self.faults = faults or FaultRates()
        self.utc_offset_h = utc_offset_h
        self.tally = Tally()
        self._wall = wall_clock
        #: Scheduled readings taken so far (silenced ones included).
        self.readings_done = 0
        self._fault_rng = Random(f"{seed}/faults")
        self._sites: dict[str, SiteSim] = {}
        self._ghosts = 0
        self._other_site = _next_site_ids(registry)
        setup = Random(f"{seed}/devices")
        self.devices: list[DeviceSim] = []
        self._queue: list[tuple[int, int]] = []
        for index, device in enumerate(registry.devices.values()):
            self.devices.append(
                DeviceSim(
                    device,
                    battery_pct=setup.uniform(35, 100),
                    drain_pct=setup.uniform(0.0005, 0.003),
                    rssi_base=setup.uniform(-105, -50),
                )
            )
            phase = int(setup.random() * device.interval_s * 1000) if phased else 0
            self._queue.append((start_ms + phase, index))
        heapq.heapify(self._queue)

    def next_due_ms(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def due(self, until_ms: int, limit: int | None = None) -> list[Message]:
        """The messages of every reading scheduled up to `until_ms` (at most `limit` readings)."""
        out: list[Message] = []
        count = 0
        while self._queue and self._queue[0][0] <= until_ms and (limit is None or count < limit):
            out.extend(self._next())
            count += 1
        return out

    def take(self, readings: int) -> list[Message]:
        """The messages of the next `readings` scheduled readings, whatever their time."""
        out: list[Message] = []
        for _ in range(readings):
            out.extend(self._next())
        return out

    def status(self, online: bool) -> list[Message]:
        """Every device's retained status: on start (online) or on a clean stop (offline)."""
        return [self._status(d.device, online) for d in self.devices]

    def _next(self) -> list[Message]:
        t_ms, index = heapq.heappop(self._queue)
        self.readings_done += 1
        dev = self.devices[index]
        heapq.heappush(self._queue, (t_ms + int(dev.device.interval_s * 1000), index))
        return self._emit(dev, t_ms)

    def _site(self, site: SiteEntry) -> SiteSim:
        sim = self._sites.get(site.id)
        if sim is None:
            sim = self._sites[site.id] = SiteSim(site, self.seed, self.start_ms, self.utc_offset_h)
        return sim

    def reading(self, dev: DeviceSim, t_ms: int) -> dict[str, Any]:
        """`dev`'s next good reading at `t_ms` as a payload dict; advances its seq and battery."""
        site = self._site(dev.device.site)
        fields = site.report(dev.device.id, t_ms)
        if dev.stuck_left > 0 and dev.stuck_fields is not None:
            fields = dict(dev.stuck_fields)
            dev.stuck_left -= 1
            self.tally.stuck_readings += 1
        dev.battery_pct -= dev.drain_pct
        # The crew swaps a low battery within a day or so; a dead one at once.
        swap_p = dev.device.interval_s / 86_400
        if dev.battery_pct < 1 or (dev.battery_pct < 12 and site.rng.random() < swap_p):
            dev.battery_pct = 100.0
        rssi = min(-30.0, max(-130.0, dev.rssi_base + site.rng.gauss(0, 2.5)))
        payload = {"ts": t_ms, "seq": dev.seq, "device_id": dev.device.id, **fields}
        payload["battery_pct"] = round(dev.battery_pct, 2)
        payload["rssi_dbm"] = round(rssi, 1)
        dev.seq += 1
        return payload

    def _emit(self, dev: DeviceSim, t_ms: int) -> list[Message]:
        out: list[Message] = []
        if dev.silent_left > 0:
            dev.silent_left -= 1
            self.tally.silenced_readings += 1
            if dev.silent_left:
                return out
            out.append(self._status(dev.device, True))
            return out
        kind = self.faults.pick(self._fault_rng)
        payload = self.reading(dev, t_ms)
        if kind is None:
            out.append(self._good(dev.device, payload))
        elif kind in REJECT_REASON:
            out.append(self._broken(dev.device, payload, kind))
        else:
            out.extend(self._awkward(dev, payload, kind, t_ms))
        return out

    def _good(
        self, device: Device, payload: dict[str, Any], fault: FaultKind | None = None
    ) -> Message:
        self.tally.readings[device.type] += 1
        self.tally.messages += 1
        topic = telemetry_topic(device.site.id, device.type, device.id)
        return Message(topic, orjson.dumps(payload), device.id, device.type, fault=fault)

    def _broken(self, device: Device, payload: dict[str, Any], kind: FaultKind) -> Message:
        rng = self._fault_rng
        site_id, device_id = device.site.id, device.id
        body: bytes | None = None
        if kind is FaultKind.MALFORMED_JSON:
            body = spoil.malformed_json(orjson.dumps(payload), rng)
        elif kind is FaultKind.OUT_OF_RANGE:
            payload = spoil.out_of_range(payload, device.type, rng)
        elif kind is FaultKind.WRONG_TYPE:
            payload = spoil.wrong_type(payload, device.type, rng)
        elif kind is FaultKind.PAYLOAD_TOO_LARGE:
            body = spoil.too_large(payload)
        elif kind is FaultKind.CLOCK_SKEW:
            now = max(payload["ts"], self._wall() if self._wall else 0)
            payload = {**payload, "ts": now + int(rng.uniform(600, 2 * 86_400) * 1000)}
        elif kind is FaultKind.UNKNOWN_DEVICE:
            self._ghosts += 1
            device_id = f"GHOST-{self._ghosts:06d}"
            payload = {**payload, "device_id": device_id}
        elif kind is FaultKind.DEVICE_MISMATCH:
            site_id = self._other_site[site_id]
        reason = REJECT_REASON[kind]
        self.tally.faults[kind] += 1
        self.tally.rejected[reason] += 1
        self.tally.messages += 1
        topic = telemetry_topic(site_id, device.type, device_id)
        body = orjson.dumps(payload) if body is None else body
        return Message(topic, body, device_id, device.type, expect=reason, fault=kind)

    def _awkward(
        self, dev: DeviceSim, payload: dict[str, Any], kind: FaultKind, t_ms: int
    ) -> list[Message]:
        """Faults that send valid readings in awkward ways (or none at all)."""
        rng, device = self._fault_rng, dev.device
        if kind is FaultKind.LEAK:
            # Water starts running at a toilet terminal; other devices carry on as normal.
            if not self._site(device.site).start_leak(device.id, rng):
                return [self._good(device, payload)]
            self.tally.faults[kind] += 1
            return [self._good(device, payload, kind)]
        self.tally.faults[kind] += 1
        if kind is FaultKind.SILENCE:
            # Offline for longer than the 3 intervals that raise the offline alert.
            dev.silent_left = rng.randint(4, 8)
            self.tally.silenced_readings += 1
            return [self._status(device, False)]
        first = self._good(device, payload, kind)
        if kind is FaultKind.DUPLICATE:
            self.tally.duplicates += 1
            self.tally.messages += 1
            return [
                first,
                Message(
                    first.topic,
                    first.payload,
                    first.device_id,
                    first.device_type,
                    expect=DUPLICATE,
                    fault=kind,
                ),
            ]
        if kind is FaultKind.STUCK:
            dev.stuck_left = rng.randint(5, 20)
            dev.stuck_fields = {k: v for k, v in payload.items() if k not in _COMMON_KEYS}
            return [first]
        # A burst: the device sends the next few readings a second apart.
        extra = min(rng.randint(5, 20), int(device.interval_s) - 1)
        self.tally.burst_readings += max(0, extra)
        burst = [
            self._good(device, self.reading(dev, t_ms + j * 1000), kind)
            for j in range(1, extra + 1)
        ]
        return [first, *burst]

    def _status(self, device: Device, online: bool) -> Message:
        if online:
            self.tally.status_online += 1
        else:
            self.tally.status_offline += 1
        body = ONLINE if online else OFFLINE
        return Message(status_topic(device), body, device.id, device.type, True, STATUS)


_COMMON_KEYS = frozenset({"ts", "seq", "device_id", "battery_pct", "rssi_dbm"})


def _next_site_ids(registry: Registry) -> dict[str, str]:
    """For the device-mismatch fault: each site id -> another (registered if there is one)."""
    ids = list(registry.sites)
    if len(ids) == 1:
        return {ids[0]: f"{ids[0][:62]}-X"}
    return {site_id: ids[(i + 1) % len(ids)] for i, site_id in enumerate(ids)}
