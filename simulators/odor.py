"""Odor sensor: the site's air, NH3 and H2S, temperature and humidity.

NH3 and H2S rise with use (visitors at a toilet; deliveries and the fill level at a
transfer station) and faster in the heat; ventilation brings them back to a baseline,
each spray knocks them down, and cleaning takes most of them away. Temperature follows
the season and a daily cycle (warmest mid-afternoon); humidity runs the other way.
"""

from __future__ import annotations

import math
from random import Random

from simulators.behaviour import Conditions, Fields, StepEvents

DAY_MS = 86_400_000
#: Chengdu: about 6 C in January, 26 C in July (daily means).
SEASON_MEAN_C, SEASON_AMPLITUDE_C = 16.0, 10.0
DAILY_AMPLITUDE_C = 4.5


def outdoor_temp_c(t_ms: int, hour: float, drift_c: float) -> float:
    day_of_year = (t_ms / DAY_MS) % 365.25
    season = SEASON_MEAN_C + SEASON_AMPLITUDE_C * math.sin(
        2 * math.pi * (day_of_year - 105) / 365.25
    )
    return season + DAILY_AMPLITUDE_C * math.cos(2 * math.pi * (hour - 15) / 24) + drift_c


def relative_humidity(temp_c: float, hour: float) -> float:
    rh = 72 - 1.8 * (temp_c - 16) + 8 * math.cos(2 * math.pi * (hour - 5) / 24)
    return min(98.0, max(25.0, rh))


class Air:
    """The air of one site; the site's odor sensors all read it."""

    #: Ventilation time constant, seconds.
    TAU_S = 40 * 60.0
    #: Fraction of the excess over baseline one spray leaves.
    SPRAY_KEEP = 0.75
    CLEAN_KEEP = 0.15

    def __init__(self, kind: str, rng: Random) -> None:
        self.kind = kind
        station = kind == "transfer_station"
        self.nh3_base = rng.uniform(0.3, 0.6) if station else rng.uniform(0.05, 0.2)
        self.h2s_base = rng.uniform(0.02, 0.05) if station else rng.uniform(0.002, 0.01)
        #: ppm added per visitor (toilet) or per delivery (station), before heat.
        self.per_use = rng.uniform(0.02, 0.04) if not station else rng.uniform(0.25, 0.5)
        #: H2S added per ppm of NH3 added: toilets mostly urine (NH3), garbage both.
        self.h2s_ratio = 0.06 if station else 0.012
        self.nh3 = self.nh3_base
        self.h2s = self.h2s_base
        self.temp_c = 15.0
        self.rh_pct = 70.0

    def step(self, cond: Conditions, dt_s: float, events: StepEvents) -> None:
        heat = max(0.3, 1 + 0.05 * (cond.temp_c - 20))
        uses = events.entries if self.kind == "toilet" else events.deliveries
        added = self.per_use * uses * heat
        if self.kind == "transfer_station":
            # Rotting garbage: the fuller the container, the more it smells.
            added += 0.0006 * events.fill_pct * heat * dt_s / 60
        keep = math.exp(-dt_s / self.TAU_S) * self.SPRAY_KEEP ** min(events.sprays, 4)
        if events.cleaned:
            keep *= self.CLEAN_KEEP
        self.nh3 = self.nh3_base + (self.nh3 - self.nh3_base) * keep + added
        self.h2s = self.h2s_base + (self.h2s - self.h2s_base) * keep + added * self.h2s_ratio
        indoor = 0.85 if self.kind == "toilet" else 1.0
        self.temp_c = cond.temp_c * indoor + (1 - indoor) * 20
        self.rh_pct = cond.rh_pct


class OdorProbe:
    """An odor sensor: the site's air, with sensor noise."""

    def __init__(self, air: Air, rng: Random) -> None:
        self.air = air
        self.offset = rng.gauss(0, 0.02)

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None:
        """The air is stepped by the site; a probe has no state of its own."""

    def report(self, rng: Random) -> Fields:
        air = self.air
        nh3 = air.nh3 * rng.uniform(0.95, 1.05) + self.offset
        return {
            "nh3_ppm": round(min(100.0, max(0.0, nh3)), 3),
            "h2s_ppm": round(min(100.0, max(0.0, air.h2s * rng.uniform(0.9, 1.1))), 4),
            "temp_c": round(min(85.0, max(-40.0, air.temp_c + rng.gauss(0, 0.15))), 2),
            "rh_pct": round(min(100.0, max(0.0, air.rh_pct + rng.gauss(0, 0.8))), 1),
        }
