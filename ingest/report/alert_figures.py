"""Alerts raised, acknowledged and resolved, and the median times to acknowledge and to
resolve, per district and rule, from the rows of the `alerts` measurement. Pure.

An incident (one `alert_id`) writes a row per change of state. A change of severity writes
two rows at one time: `resolved` on the severity it left and the incident's state on the
new one; so an incident is *raised* at the time its rows are only `firing` (and no earlier
row of it is in the period), *acknowledged* at its first `acknowledged` row, and *resolved*
at the time its rows are only `resolved`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertRow:
    alert_id: str
    time_ms: int
    state: str
    rule: str
    site_id: str


@dataclass(frozen=True, slots=True)
class Incident:
    alert_id: str
    rule: str
    site_id: str
    raised_ms: int
    acknowledged_ms: int | None
    resolved_ms: int | None


def incidents(rows: Iterable[AlertRow]) -> list[Incident]:
    """The incidents raised in the period the rows cover (rows of earlier ones are left out)."""
    by_id: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    first: dict[str, AlertRow] = {}
    for row in rows:
        by_id[row.alert_id][row.time_ms].add(row.state)
        if row.alert_id not in first or row.time_ms < first[row.alert_id].time_ms:
            first[row.alert_id] = row
    found = []
    for alert_id, times in by_id.items():
        start = min(times)
        if times[start] != {"firing"}:
            continue  # raised before the period: its first row here is a later change
        acked = min((t for t, states in times.items() if "acknowledged" in states), default=None)
        resolved = min((t for t, states in times.items() if states == {"resolved"}),
                       default=None)
        head = first[alert_id]
        found.append(Incident(alert_id, head.rule, head.site_id, start, acked, resolved))
    return found


@dataclass(frozen=True, slots=True)
class AlertGroup:
    district: str
    rule: str
    raised: int
    acknowledged: int
    resolved: int
    #: Minutes, over the incidents acknowledged (resolved) in the period; None when none were.
    median_ack_min: float | None
    median_resolve_min: float | None


def by_district_and_rule(found: Iterable[Incident], district_of: Callable[[str], str]
                         ) -> list[AlertGroup]:
    groups: dict[tuple[str, str], list[Incident]] = defaultdict(list)
    for incident in found:
        groups[(district_of(incident.site_id), incident.rule)].append(incident)
    return [_group(district, rule, members)
            for (district, rule), members in sorted(groups.items())]


def _group(district: str, rule: str, members: list[Incident]) -> AlertGroup:
    acks = [(i.acknowledged_ms - i.raised_ms) / 60_000 for i in members
            if i.acknowledged_ms is not None]
    fixes = [(i.resolved_ms - i.raised_ms) / 60_000 for i in members if i.resolved_ms is not None]
    return AlertGroup(district, rule, len(members), len(acks), len(fixes), _median(acks),
                      _median(fixes))


def by_district(found: Iterable[Incident], district_of: Callable[[str], str]
                ) -> list[AlertGroup]:
    """All rules together, per district (rule `*`): how fast each district's crews were."""
    groups: dict[str, list[Incident]] = defaultdict(list)
    for incident in found:
        groups[district_of(incident.site_id)].append(incident)
    return [_group(district, "*", members) for district, members in sorted(groups.items())]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
