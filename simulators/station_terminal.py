"""Management terminal of a garbage transfer station: the container and its compactor.

Collection trucks deliver through the day (peaks early morning and early evening); each
delivery opens the door, raises fill and weight, and runs the compactor for a few
minutes, which packs the garbage (fill drops a little, weight stays). When the container
is nearly full, or at the night run, a hauler takes it away: fill and weight drop.
Rarely the compactor faults, with a code, for an hour or a few.
"""

from __future__ import annotations

from random import Random

from simulators.behaviour import Conditions, Fields, StepEvents, daily, poisson

#: Deliveries per hour, by local hour.
DELIVERIES_PER_HOUR = (
    0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 2.5, 2.5, 2.0, 1.2, 0.8, 0.6,
    0.5, 0.5, 0.6, 0.8, 1.2, 1.8, 2.0, 1.5, 0.8, 0.4, 0.2, 0.1,
)  # fmt: skip
FAULT_CODES = ("E01-HYDRAULIC", "E02-MOTOR-OVERLOAD", "E03-JAM", "E04-DOOR-SENSOR", "E05-OIL-TEMP")
FAULT_P = 1 / (60 * 24 * 10)
#: How long the compactor runs after a delivery, seconds.
COMPACT_S = (120.0, 300.0)
NIGHT_RUN_H = 22


class Container:
    def __init__(self, rng: Random) -> None:
        self.capacity_kg = rng.choice((8_000.0, 12_000.0, 16_000.0, 20_000.0))
        self.fill_pct = rng.uniform(5, 60)
        self.weight_kg = self.capacity_kg * self.fill_pct / 100 * rng.uniform(0.9, 1.1)
        self.full_at_pct = rng.uniform(82, 92)
        self.compactor_left_s = 0.0
        self.door_left_s = 0.0
        self.fault_code: str | None = None
        self.fault_left_s = 0.0
        self.collections = 0
        self._hauler_due_s: float | None = None
        self._night_run_done_day = -1

    @property
    def compactor(self) -> str:
        if self.fault_code:
            return "fault"
        return "running" if self.compactor_left_s > 0 else "idle"

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None:
        self._tick_fault(dt_s, rng)
        self.door_left_s = max(0.0, self.door_left_s - dt_s)
        if self.compactor_left_s > 0:
            self.compactor_left_s = max(0.0, self.compactor_left_s - dt_s)
            # Packing: the same garbage takes less room.
            self.fill_pct = max(0.0, self.fill_pct - 0.15 * dt_s / 60)
        deliveries = poisson(rng, daily(DELIVERIES_PER_HOUR, cond.hour) * dt_s / 3600)
        for _ in range(deliveries):
            self._deliver(rng)
        events.deliveries += deliveries
        self._collect_if_due(cond, dt_s, rng)
        events.fill_pct = max(events.fill_pct, self.fill_pct)

    def _deliver(self, rng: Random) -> None:
        added = rng.uniform(2.0, 6.0) if self.fill_pct < 100 else 0.0
        self.fill_pct = min(100.0, self.fill_pct + added)
        self.weight_kg += self.capacity_kg * added / 100 * rng.uniform(0.9, 1.3)
        self.door_left_s = rng.uniform(180, 480)
        if not self.fault_code:
            self.compactor_left_s = rng.uniform(*COMPACT_S)

    def _collect_if_due(self, cond: Conditions, dt_s: float, rng: Random) -> None:
        day = cond.t_ms // 86_400_000
        night_run = int(cond.hour) == NIGHT_RUN_H and self._night_run_done_day != day
        if night_run:
            self._night_run_done_day = day
        if self._hauler_due_s is None and (
            self.fill_pct >= self.full_at_pct or (night_run and self.fill_pct > 50)
        ):
            self._hauler_due_s = rng.uniform(10, 90) * 60
        if self._hauler_due_s is not None:
            self._hauler_due_s -= dt_s
            if self._hauler_due_s <= 0:
                self._hauler_due_s = None
                left = rng.uniform(0.0, 0.05)
                self.fill_pct *= left
                self.weight_kg *= left
                self.collections += 1

    def _tick_fault(self, dt_s: float, rng: Random) -> None:
        if self.fault_code:
            self.fault_left_s -= dt_s
            if self.fault_left_s <= 0:
                self.fault_code = None
        elif rng.random() < FAULT_P:
            self.fault_code = rng.choice(FAULT_CODES)
            self.fault_left_s = rng.uniform(1, 6) * 3600
            self.compactor_left_s = 0.0

    def report(self, rng: Random) -> Fields:
        fields: Fields = {
            "fill_pct": round(min(100.0, self.fill_pct), 2),
            "weight_kg": round(min(100_000.0, self.weight_kg), 1),
            "compactor": self.compactor,
            "door_open": self.door_left_s > 0,
        }
        if self.fault_code:
            fields["fault_code"] = self.fault_code
        return fields
