"""Site rules watched on a site's devices: pure, fed readings in reading-time order.

A `SiteWatch` is one site rule on one device (the incident's owner, the toilet terminal).
It is fed the readings of the devices it `reads` (its own, and for a join the site's
other devices) and the engine's clock (`tick`, in device time), and answers with a
`Verdict` when its incident should fire or resolve. The engine turns verdicts into
incidents like any other (one per rule and device, stored, restored after a restart).

Following rules fit the same shape; e.g. "odor high right after a cleaning" would read
the terminal's `cleaned_by` and the site's odor sensors' `nh3_ppm`, and fire when NH3
stays above a bound for 30 minutes after a check-in: one more class and one `KINDS`
entry in `site_rules`.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from datetime import tzinfo
from itertools import pairwise
from typing import Protocol

from devices.common import Reading
from devices.open_hours import OpenHours
from devices.sites import Device, Registry
from ingest.alerts import wording
from ingest.alerts.events import Incident, Value
from ingest.alerts.site_rules import SiteRule, site_overrides

HOUR_MS = 3_600_000
#: "Never" for a due time: later than any reading.
FOREVER = 2**62


@dataclass(frozen=True, slots=True)
class Verdict:
    """The incident should be firing (or not) as of `ts_ms`, with this value and text."""

    firing: bool
    ts_ms: int
    value: Value
    threshold: float | None
    message: str


class SiteWatch(Protocol):
    rule: SiteRule
    owner: Device
    #: Device ids whose readings this watch is fed (the owner's included).
    reads: tuple[str, ...]
    incident: Incident | None
    #: Whether `mark` may ever give a time (the engine only asks those that may).
    keeps_marks: bool

    def feed(self, device: Device, reading: Reading, ts_ms: int) -> Verdict | None: ...

    def tick(self, device_now_ms: int) -> Verdict | None: ...

    def mark(self) -> int | None:
        """A time to keep across restarts (e.g. the last check-in), or None."""
        ...

    def restore_mark(self, ts_ms: int) -> None: ...


class CleaningOverdue:
    """`toilet_cleaning_overdue`: no `cleaned_by` for `cleaning_every_h` hours of opening
    time. Only opening time counts, so a toilet cleaned at 22:00 and open again at 06:00 is
    due at 09:00 (every 4 h), not at 06:00; it fires only while open; a check-in resolves."""

    def __init__(self, rule: SiteRule, owner: Device, zone: tzinfo) -> None:
        self.rule, self.owner, self.zone = rule, owner, zone
        self.reads: tuple[str, ...] = (owner.id,)
        self.incident: Incident | None = None
        self.hours: OpenHours = owner.site.hours
        self.every_ms = int(rule.param("cleaning_every_h") * HOUR_MS)
        #: The last check-in (or, before any, the first reading heard), and when it is due.
        self.since_ms: int | None = None
        self.due_ms = FOREVER
        self.keeps_marks = True

    def feed(self, device: Device, reading: Reading, ts_ms: int) -> Verdict | None:
        by: str | None = getattr(reading, "cleaned_by", None)
        if by is not None:
            self._start(ts_ms)
            if self.incident is not None:
                return Verdict(False, ts_ms, 0.0, self.every_ms / HOUR_MS,
                               wording.cleaned(by, self.owner.site.name, self.owner.id))
            return None
        if self.since_ms is None:
            self._start(ts_ms)  # count from the first reading after a start
        return self.tick(ts_ms)

    def tick(self, device_now_ms: int) -> Verdict | None:
        if self.incident is not None or device_now_ms < self.due_ms:
            return None
        every_h = self.every_ms / HOUR_MS
        return Verdict(True, self.due_ms, every_h, every_h, wording.cleaning_overdue(
            every_h, self.owner.site.open_hours, self.owner.site.name, self.owner.id))

    def _start(self, ts_ms: int) -> None:
        self.since_ms = ts_ms
        self.due_ms = self.hours.open_after(ts_ms, self.every_ms, self.zone)

    def mark(self) -> int | None:
        return self.since_ms

    def restore_mark(self, ts_ms: int) -> None:
        self._start(ts_ms)


class WaterLeak:
    """`toilet_water_leak`: the terminal's water meter rises at every reading for `for`
    (by at least `min_rise_m3`) while every people counter of the site reports nobody
    (entries 0, occupancy 0) over the same time. Resolves once the meter stands still
    between two readings (visitors cannot tell a leak from use, so they do not resolve it).
    The people counters' readings are kept in time order whatever order they come in."""

    def __init__(self, rule: SiteRule, owner: Device, counters: list[Device]) -> None:
        self.rule, self.owner = rule, owner
        self.counters = {c.id: c for c in counters}
        self.reads: tuple[str, ...] = (owner.id, *self.counters)
        self.incident: Incident | None = None
        self.for_ms = int(rule.param("for"))
        self.min_rise = rule.param("min_rise_m3")
        self.water: deque[tuple[int, float]] = deque()
        #: Per counter: (ts, anybody counted) in time order.
        self.people: dict[str, list[tuple[int, bool]]] = {c: [] for c in self.counters}
        self.keeps_marks = False

    def feed(self, device: Device, reading: Reading, ts_ms: int) -> Verdict | None:
        values = reading.__dict__  # a model's fields: `getattr` costs 5x (callgrind)
        if device.id in self.counters:
            entries = values.get("entries", 0) or 0
            occupancy = values.get("occupancy", 0) or 0
            seen = self.people[device.id]
            bisect.insort(seen, (ts_ms, entries > 0 or occupancy > 0))
            while len(seen) > 1 and seen[1][0] <= ts_ms - 2 * self.for_ms:
                seen.pop(0)
            return None
        water: float | None = values.get("water_m3")
        if water is None:
            return None
        previous = self.water[-1][1] if self.water else None
        self.water.append((ts_ms, water))
        while len(self.water) > 1 and self.water[1][0] <= ts_ms - self.for_ms:
            self.water.popleft()  # keep one reading at or before the window's start
        if self.incident is not None:
            if previous is not None and water <= previous:
                return Verdict(False, ts_ms, water, self.min_rise, wording.leak_stopped(
                    water, self.owner.site.name, self.owner.id))
            return None
        rise = self._steady_rise(ts_ms)
        if rise is None or not self._nobody(ts_ms - self.for_ms, ts_ms):
            return None
        return Verdict(True, ts_ms, round(rise, 6), self.min_rise, wording.water_leak(
            rise, self.for_ms, self.owner.site.name, self.owner.id))

    def _steady_rise(self, now_ms: int) -> float | None:
        """The rise over the window when the meter rose at every reading, covering it all."""
        first_ts, first = self.water[0]
        if first_ts > now_ms - self.for_ms:
            return None  # not an hour of readings yet
        values = [value for _, value in self.water]
        if any(b <= a for a, b in pairwise(values)):
            return None
        rise = values[-1] - first
        return rise if rise >= self.min_rise else None

    def _nobody(self, from_ms: int, to_ms: int) -> bool:
        """Every counter reported over the whole window, and never anybody."""
        if not self.counters:
            return False
        for counter_id, seen in self.people.items():
            slack = 2 * int(self.counters[counter_id].interval_s * 1000)
            inside = [anybody for ts, anybody in seen if from_ms < ts <= to_ms]
            times = [ts for ts, _ in seen if from_ms < ts <= to_ms]
            if not inside or any(inside):
                return False
            if times[0] > from_ms + slack or times[-1] < to_ms - slack:
                return False  # the counter was silent for part of the hour: nobody known
        return True

    def tick(self, device_now_ms: int) -> Verdict | None:
        return None

    def mark(self) -> int | None:
        return None

    def restore_mark(self, ts_ms: int) -> None:
        """Nothing to restore: the window fills again within `for`."""


def build_watches(rules: tuple[SiteRule, ...], registry: Registry, zone: tzinfo
                  ) -> list[SiteWatch]:
    """Every site rule on every device of its type, with the site's and device's overrides."""
    counters = people_counters_by_site(registry)
    watches: list[SiteWatch] = []
    for device in registry.devices.values():
        site = device.site
        for base in rules:
            if device.type != base.device_type:
                continue
            rule = base
            if rule.name in site.alerts:
                rule = site_overrides(rule, site.alerts[rule.name],
                                      f"registry site {site.id!r} alerts.{rule.name}")
            if rule.name in device.alerts:
                rule = site_overrides(rule, device.alerts[rule.name],
                                      f"registry device {device.id!r} (site {site.id!r}) "
                                      f"alerts.{rule.name}")
            if rule.enabled:
                watches.append(_watch(rule, device, counters.get(site.id, []), zone))
    return watches


def people_counters_by_site(registry: Registry) -> dict[str, list[Device]]:
    """Each site's people counters in registry order, found in one pass over the devices
    (a scan of the whole registry per terminal made start-up quadratic in city size)."""
    by_site: dict[str, list[Device]] = {}
    for device in registry.devices.values():
        if device.type == "people_counter":
            by_site.setdefault(device.site.id, []).append(device)
    return by_site


def _watch(rule: SiteRule, owner: Device, counters: list[Device], zone: tzinfo) -> SiteWatch:
    """`counters`: the people counters of the owner's site."""
    if rule.kind == "cleaning_overdue":
        return CleaningOverdue(rule, owner, zone)
    return WaterLeak(rule, owner, counters)
