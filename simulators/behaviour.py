"""What every device behaviour shares: the site conditions it sees and the events it causes.

A site is advanced in fixed steps (`STEP_S` simulated seconds). In each step every unit
(a people counter's flow, a station's container, a sprayer) reads the `Conditions` at the
start of the step and adds what it did to `StepEvents`; the site's air then reacts to those
events. A device's report reads its unit's state; nothing here does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from random import Random
from typing import Any, Protocol

STEP_S = 60.0

#: A JSON payload's type-specific keys.
Fields = dict[str, Any]


@dataclass(slots=True)
class Conditions:
    """The site as every unit sees it at the start of a step."""

    t_ms: int
    #: Local hour of day, 0 <= hour < 24.
    hour: float
    temp_c: float
    rh_pct: float
    nh3_ppm: float
    #: How busy the site is; 1 is an average toilet.
    popularity: float
    kind: str


@dataclass(slots=True)
class StepEvents:
    """What happened at the site during one step."""

    entries: int = 0
    sprays: int = 0
    deliveries: int = 0
    #: Highest container fill at the site, percent (transfer stations).
    fill_pct: float = 0.0
    cleaned: bool = False


class Unit(Protocol):
    """The physical thing a device measures."""

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None: ...

    def report(self, rng: Random) -> Fields: ...


def daily(profile: tuple[float, ...], hour: float) -> float:
    """Linear interpolation in a 24-value hourly profile (value i at hour i)."""
    low = int(hour) % 24
    frac = hour - math.floor(hour)
    return profile[low] * (1 - frac) + profile[(low + 1) % 24] * frac


def poisson(rng: Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def binomial(rng: Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if n > 50:
        mean = n * p
        return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))
    return sum(1 for _ in range(n) if rng.random() < p)
