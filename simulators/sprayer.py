"""Fragrance sprayer: sprays on a timer in opening hours and when the air is bad.

Each spray uses some liquid; a crew refills it some time after it runs low, so now and
then one runs empty (and stops spraying). Rarely it faults for a few hours.
"""

from __future__ import annotations

from random import Random

from simulators.behaviour import Conditions, Fields, StepEvents

OPEN_FROM_H, OPEN_UNTIL_H = 6.0, 23.0
#: NH3 (ppm) above which it sprays outside its timer, at most once per `MIN_GAP_S`.
TRIGGER_NH3_PPM = 1.5
MIN_GAP_S = 300.0
LOW_PCT, EMPTY_PCT = 20.0, 0.5
#: Chance per step, in working hours, that a crew refills a low sprayer (within a day or two).
REFILL_P = 1 / 400
FAULT_P = 1 / (60 * 24 * 30)


class SprayerUnit:
    def __init__(self, rng: Random) -> None:
        self.liquid_pct = rng.uniform(25, 100)
        self.per_spray_pct = rng.uniform(0.08, 0.15)
        self.period_s = rng.choice((600.0, 900.0, 1200.0))
        self.sprays_total = 0
        self._reported = 0
        self._since_spray_s = rng.uniform(0, self.period_s)
        self._fault_left_s = 0.0

    @property
    def state(self) -> str:
        if self._fault_left_s > 0:
            return "fault"
        if self.liquid_pct <= EMPTY_PCT:
            return "empty"
        return "low" if self.liquid_pct < LOW_PCT else "ok"

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None:
        self._since_spray_s += dt_s
        if self._fault_left_s > 0:
            self._fault_left_s = max(0.0, self._fault_left_s - dt_s)
        elif rng.random() < FAULT_P:
            self._fault_left_s = rng.uniform(2, 8) * 3600
        working_hours = 8 <= cond.hour < 17
        if self.liquid_pct < LOW_PCT and working_hours and rng.random() < REFILL_P:
            self.liquid_pct = 100.0
        if self.state in ("fault", "empty"):
            return
        open_now = OPEN_FROM_H <= cond.hour < OPEN_UNTIL_H
        timer = open_now and self._since_spray_s >= self.period_s
        triggered = cond.nh3_ppm > TRIGGER_NH3_PPM and self._since_spray_s >= MIN_GAP_S
        if timer or triggered:
            self._since_spray_s = 0.0
            self.sprays_total += 1
            self.liquid_pct = max(0.0, self.liquid_pct - self.per_spray_pct)
            events.sprays += 1

    def report(self, rng: Random) -> Fields:
        sprays = self.sprays_total - self._reported
        self._reported = self.sprays_total
        return {
            "liquid_pct": round(self.liquid_pct, 2),
            "sprays": min(sprays, 100_000),
            "state": self.state,
        }
