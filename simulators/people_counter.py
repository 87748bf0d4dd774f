"""People counter at a toilet entrance: visitors on a daily profile, who stay a few minutes.

Entries and exits add up: a report's occupancy is the previous one plus entries minus
exits, and it never goes negative.
"""

from __future__ import annotations

import math
from random import Random

from simulators.behaviour import Conditions, Fields, StepEvents, binomial, daily, poisson

#: Visitors per hour at an average toilet, by local hour: quiet nights, peaks at the
#: morning commute, lunch and the evening.
VISITORS_PER_HOUR = (
    2, 1, 1, 1, 1, 4, 16, 40, 50, 36, 30, 38,
    52, 44, 30, 28, 32, 44, 52, 42, 30, 20, 10, 5,
)  # fmt: skip
#: Mean stay, seconds.
MEAN_STAY_S = 180.0
#: A tour group or a train unloading: chance per minute at an average toilet in daytime.
GROUP_P_PER_MIN = 0.001
GROUP_SIZE = (8, 25)
#: Words in a site's name that mean crowds nearby.
BUSY_WORDS = ("park", "station", "square", "market", "terminal", "old street")


def popularity(name: str, rng: Random) -> float:
    """How busy a toilet is: 1 on average, 1.5-3 near parks, stations and squares."""
    lowered = name.lower()
    base = 2.0 if any(word in lowered for word in BUSY_WORDS) else 0.8
    return base * rng.uniform(0.75, 1.5)


class PeopleFlow:
    """The people going in and out of one entrance."""

    def __init__(self) -> None:
        self.occupancy = 0
        self.entries_total = 0
        self.exits_total = 0
        self._reported_entries = 0
        self._reported_exits = 0

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None:
        rate_per_s = daily(VISITORS_PER_HOUR, cond.hour) * cond.popularity / 3600
        leave_p = 1 - math.exp(-dt_s / MEAN_STAY_S)
        exits = binomial(rng, self.occupancy, leave_p)
        entries = poisson(rng, rate_per_s * dt_s)
        daytime = 8 <= cond.hour < 20
        if daytime and rng.random() < GROUP_P_PER_MIN * cond.popularity**2 * dt_s / 60:
            entries += rng.randint(*GROUP_SIZE)
        self.occupancy += entries - exits
        self.entries_total += entries
        self.exits_total += exits
        events.entries += entries

    def report(self, rng: Random) -> Fields:
        entries = self.entries_total - self._reported_entries
        exits = self.exits_total - self._reported_exits
        self._reported_entries, self._reported_exits = self.entries_total, self.exits_total
        return {
            "entries": min(entries, 10_000),
            "exits": min(exits, 10_000),
            "occupancy": min(self.occupancy, 1_000),
        }
