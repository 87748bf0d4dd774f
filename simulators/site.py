"""One site in simulation: its weather, air, and the units its devices measure.

The site advances in fixed steps of `STEP_S` simulated seconds whoever asks, so a reading
depends only on the seed and the simulated time, never on the order devices report in.
Crews clean toilets three times a day and wash stations once.
"""

from __future__ import annotations

from random import Random

from devices.sites import SiteEntry
from simulators.behaviour import STEP_S, Conditions, Fields, StepEvents, Unit
from simulators.odor import Air, OdorProbe, outdoor_temp_c, relative_humidity
from simulators.people_counter import PeopleFlow, popularity
from simulators.sprayer import SprayerUnit
from simulators.station_terminal import Container
from simulators.toilet_terminal import ToiletTerminal

HOUR_MS = 3_600_000
#: Coarse steps that bring a new site's air and containers to a plausible state.
SETTLE_STEP_S = 600.0
CLEANING_HOURS = {"toilet": (7.0, 13.0, 19.0), "transfer_station": (21.0,)}


def make_unit(device_type: str, air: Air, rng: Random, site: SiteEntry | None = None,
              busy: float = 1.0) -> Unit:
    if device_type == "people_counter":
        return PeopleFlow()
    if device_type == "odor":
        return OdorProbe(air, rng)
    if device_type == "sprayer":
        return SprayerUnit(rng)
    if device_type == "station_terminal":
        return Container(rng)
    if device_type == "toilet_terminal" and site is not None:
        return ToiletTerminal(rng, site.hours, busy)
    raise ValueError(f"no simulator for device type {device_type!r}")


class SiteSim:
    def __init__(self, site: SiteEntry, seed: int, start_ms: int, utc_offset_h: float) -> None:
        self.site = site
        self.rng = Random(f"{seed}/site/{site.id}")
        self.utc_offset_ms = int(utc_offset_h * HOUR_MS)
        self.popularity = popularity(site.name, self.rng)
        self.air = Air(site.kind, self.rng)
        self.units: dict[str, Unit] = {
            d.id: make_unit(d.type, self.air, self.rng, site, self.popularity)
            for d in site.devices
        }
        self._link_terminals()
        self._cleaning = [h + self.rng.uniform(-0.5, 0.5) for h in CLEANING_HOURS[site.kind]]
        self._drift_c = self.rng.gauss(0, 1.0)
        self.t_ms = start_ms
        # Settle into the start time: the air and containers take a few hours to look real.
        self._settle(start_ms)

    def _link_terminals(self) -> None:
        """A toilet terminal's stalls follow the site's (first) people counter."""
        flow = next((u for u in self.units.values() if isinstance(u, PeopleFlow)), None)
        for unit in self.units.values():
            if isinstance(unit, ToiletTerminal) and flow is not None:
                unit.follow(flow)

    def start_leak(self, device_id: str, rng: Random) -> bool:
        """The `leak` fault: water starts running at this terminal. False if not a terminal."""
        unit = self.units.get(device_id)
        if not isinstance(unit, ToiletTerminal):
            return False
        unit.start_leak(rng)
        return True

    def _settle(self, start_ms: int) -> None:
        settle_ms = int(SETTLE_STEP_S * 1000)
        self.t_ms = start_ms - 6 * HOUR_MS
        while self.t_ms + settle_ms <= start_ms:
            self._step(self.t_ms + settle_ms, SETTLE_STEP_S)
        for unit in self.units.values():
            if isinstance(unit, PeopleFlow):
                unit.occupancy = unit.entries_total = unit.exits_total = 0
                unit.report(self.rng)
            elif isinstance(unit, SprayerUnit):
                unit.report(self.rng)
        for unit in self.units.values():
            if isinstance(unit, ToiletTerminal):
                unit.settled(self.rng)

    def local_hour(self, t_ms: int) -> float:
        return ((t_ms + self.utc_offset_ms) % (24 * HOUR_MS)) / HOUR_MS

    def advance_to(self, t_ms: int) -> None:
        step_ms = int(STEP_S * 1000)
        while self.t_ms + step_ms <= t_ms:
            self._step(self.t_ms + step_ms, STEP_S)

    def _step(self, t_ms: int, dt_s: float) -> None:
        hour = self.local_hour(t_ms)
        temp = outdoor_temp_c(t_ms, hour, self._drift_c)
        cond = Conditions(
            t_ms=t_ms,
            hour=hour,
            temp_c=temp,
            rh_pct=relative_humidity(temp, hour),
            nh3_ppm=self.air.nh3,
            popularity=self.popularity,
            kind=self.site.kind,
        )
        events = StepEvents()
        previous_hour = self.local_hour(t_ms - int(dt_s * 1000))
        events.cleaned = any(previous_hour < h <= hour for h in self._cleaning)
        for unit in self.units.values():
            unit.step(cond, dt_s, self.rng, events)
        self.air.step(cond, dt_s, events)
        self.t_ms = t_ms

    def report(self, device_id: str, t_ms: int) -> Fields:
        """The type-specific keys of `device_id`'s reading at `t_ms`."""
        self.advance_to(t_ms)
        return self.units[device_id].report(self.rng)
