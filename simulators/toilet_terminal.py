"""Management terminal of a smart public toilet: stalls, meters, consumables, attendants,
the visitors' rating buttons.

- Free stalls follow the site's people counter: the people inside (its occupancy) take
  stalls, never more than there are, so `stalls_free` is never negative.
- The water and power meters only grow: a flush and a hand wash per visit, lights and
  fans all day (more while open); a `leak` (fault) adds a steady flow, night and day.
- Paper and soap run down with each visit and are refilled when an attendant checks in.
- Attendants check in on a schedule (every 3 h through the opening hours, from half an
  hour after opening); now and then one skips a round. A check-in is also a cleaning: the
  air clears like after the site's own cleaning.
- A fraction of visitors press a button; more press "bad" when NH3 is high or the paper
  is out.
"""

from __future__ import annotations

from random import Random

from devices.open_hours import DAY_MIN, OpenHours
from simulators.behaviour import Conditions, Fields, StepEvents, binomial
from simulators.people_counter import PeopleFlow

ATTENDANTS = ("Li Mei", "Wang Fang", "Zhang Wei", "Liu Yang", "Chen Jing", "Yang Li",
              "Zhao Lei", "Huang Min", "Zhou Jie", "Wu Xia")
CHECK_IN_EVERY_MIN = 180
#: Chance an attendant skips a scheduled round.
SKIP_P = 0.08
#: Share of visitors who press a rating button.
RATE_P = 0.3
#: (good, ok, bad) shares: normally, with a smell (NH3 above `SMELL_PPM`), with no paper.
RATINGS_FINE, RATINGS_SMELL, RATINGS_NO_PAPER = (0.78, 0.16, 0.06), (0.35, 0.3, 0.35), \
    (0.2, 0.3, 0.5)
SMELL_PPM = 2.0
#: A leak's flow, m3 per hour (a running cistern: 20-80 L/h), and how long it runs.
LEAK_M3_H, LEAK_HOURS = (0.02, 0.08), (4.0, 12.0)


def check_in_minutes(hours: OpenHours) -> tuple[int, ...]:
    """Local minutes of the day of the scheduled rounds: from half an hour after opening,
    every 3 h while open."""
    length = (hours.end_min - hours.start_min) % DAY_MIN or DAY_MIN
    return tuple((hours.start_min + m) % DAY_MIN
                 for m in range(30, length, CHECK_IN_EVERY_MIN))


class ToiletTerminal:
    def __init__(self, rng: Random, hours: OpenHours, popularity: float) -> None:
        self.hours = hours
        self.stalls_total = max(2, round(3 * popularity + rng.uniform(1, 4)))
        self.water_m3 = rng.uniform(200, 8000)
        self.power_kwh = rng.uniform(5_000, 150_000)
        self.paper_pct = rng.uniform(50, 100)
        self.soap_pct = rng.uniform(50, 100)
        self.water_per_visit = rng.uniform(0.006, 0.010)
        self.kwh_per_visit = rng.uniform(0.005, 0.02)
        self.base_kw = (rng.uniform(0.6, 1.5), rng.uniform(0.1, 0.3))  # open, closed
        self.paper_per_visit = rng.uniform(0.08, 0.2)
        self.soap_per_visit = rng.uniform(0.05, 0.12)
        self.attendants = rng.sample(ATTENDANTS, 2)
        self.rounds = check_in_minutes(hours)
        #: The people counter it follows; the site links it (its own, if it has none).
        self.flow = PeopleFlow()
        self.own_flow = True
        self.leak_m3_h = 0.0
        self.leak_left_s = 0.0
        self.check_ins = 0
        self._seen_entries = 0
        self._cleaned_by: str | None = None
        self._ratings = [0, 0, 0]

    def follow(self, flow: PeopleFlow) -> None:
        self.flow, self.own_flow = flow, False
        self._seen_entries = flow.entries_total

    def settled(self, rng: Random) -> None:
        """The site's warm-up is over (its people counter starts from zero): count anew."""
        self.report(rng)
        self._seen_entries = self.flow.entries_total

    @property
    def stalls_free(self) -> int:
        return self.stalls_total - min(self.stalls_total, max(0, self.flow.occupancy))

    def start_leak(self, rng: Random) -> None:
        self.leak_m3_h = rng.uniform(*LEAK_M3_H)
        self.leak_left_s = rng.uniform(*LEAK_HOURS) * 3600

    def step(self, cond: Conditions, dt_s: float, rng: Random, events: StepEvents) -> None:
        if self.own_flow:
            self.flow.step(cond, dt_s, rng, StepEvents())
        visits = max(0, self.flow.entries_total - self._seen_entries)
        self._seen_entries = self.flow.entries_total
        minute = int(cond.hour * 60)
        open_now = self.hours.is_open_at(minute)
        self.water_m3 += visits * self.water_per_visit + self._leak(dt_s)
        self.power_kwh += self.base_kw[0 if open_now else 1] * dt_s / 3600 \
            + visits * self.kwh_per_visit
        self.paper_pct = max(0.0, self.paper_pct - visits * self.paper_per_visit)
        self.soap_pct = max(0.0, self.soap_pct - visits * self.soap_per_visit)
        self._rate(binomial(rng, visits, RATE_P), cond, rng)
        previous = minute - int(dt_s // 60)
        if any(previous < m <= minute or previous < m - DAY_MIN <= minute
               for m in self.rounds) and rng.random() >= SKIP_P:
            self._check_in(rng, events)

    def _leak(self, dt_s: float) -> float:
        if self.leak_left_s <= 0:
            return 0.0
        self.leak_left_s -= dt_s
        return self.leak_m3_h * dt_s / 3600

    def _rate(self, presses: int, cond: Conditions, rng: Random) -> None:
        shares = RATINGS_NO_PAPER if self.paper_pct < 1 else \
            RATINGS_SMELL if cond.nh3_ppm > SMELL_PPM else RATINGS_FINE
        for _ in range(presses):
            draw = rng.random()
            self._ratings[0 if draw < shares[0] else 1 if draw < shares[0] + shares[1] else 2] += 1

    def _check_in(self, rng: Random, events: StepEvents) -> None:
        self._cleaned_by = rng.choice(self.attendants)
        self.paper_pct = self.soap_pct = 100.0
        self.check_ins += 1
        events.cleaned = True

    def report(self, rng: Random) -> Fields:
        fields: Fields = {
            "stalls_free": self.stalls_free,
            "stalls_total": self.stalls_total,
            "water_m3": round(min(self.water_m3, 10_000_000.0), 4),
            "power_kwh": round(min(self.power_kwh, 100_000_000.0), 2),
            "paper_pct": round(self.paper_pct, 1),
            "soap_pct": round(self.soap_pct, 1),
            "rating_good": min(self._ratings[0], 10_000),
            "rating_ok": min(self._ratings[1], 10_000),
            "rating_bad": min(self._ratings[2], 10_000),
        }
        if self._cleaned_by is not None:
            fields["cleaned_by"] = self._cleaned_by
        self._cleaned_by, self._ratings = None, [0, 0, 0]
        return fields
