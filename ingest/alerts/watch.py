"""Rule evaluation, pure: one rule watched on one device, fed values in reading-time order.

A `Watch` knows the incident's level (0 none, 1.. the rule's levels, least severe first),
applies hysteresis and `for`, and says which level the incident should be at now.
"""

from __future__ import annotations

from ingest.alerts.events import Incident
from ingest.alerts.rules import AlertRule, Level

ABOVE, BELOW, EQUALS = 0, 1, 2
_KINDS = {"above": ABOVE, "below": BELOW, "equals": EQUALS}


class Watch:
    __slots__ = ("arm", "field", "idle", "incident", "kind", "level", "levels", "rule", "since",
                 "values")

    def __init__(self, rule: AlertRule) -> None:
        self.rule = rule
        self.field = rule.field
        self.kind = _KINDS[rule.kind]
        self.levels: tuple[Level, ...] = rule.levels
        #: The least severe bound: while idle, a value not past it costs one comparison.
        self.arm = rule.levels[0].bound
        self.values = rule.equals
        self.level = 0
        #: Per level: reading time since which the value has been at or beyond it.
        self.since: list[int | None] = [None] * len(rule.levels)
        self.idle = True
        self.incident: Incident | None = None

    def triggers(self, value: object) -> bool:
        """Would this value start something from idle? The hot path inlines this test."""
        if self.kind == ABOVE:
            return value > self.arm  # type: ignore[operator]
        if self.kind == BELOW:
            return value < self.arm  # type: ignore[operator]
        return value in self.values

    def restore(self, incident: Incident) -> None:
        """After a restart: the incident is open at its severity, its `for` long satisfied."""
        severities = [lv.severity for lv in self.levels]
        level = severities.index(incident.severity) + 1 if incident.severity in severities else 1
        self.incident = incident
        self.level = level
        self.since = [-(2**62) if i < level else None for i in range(len(self.levels))]
        self.idle = False

    def target(self, value: object) -> int:
        """The level this value asks for, with hysteresis relative to the current level."""
        current = self.level
        if self.kind == EQUALS:
            return 1 if value in self.values else 0
        for i in range(len(self.levels), 0, -1):
            lv = self.levels[i - 1]
            if self.kind == ABOVE:
                if value > lv.bound or (current >= i and value > lv.recover):  # type: ignore[operator]
                    return i
            elif value < lv.bound or (current >= i and value < lv.recover):  # type: ignore[operator]
                return i
        return 0

    def step(self, value: object, ts_ms: int) -> int:
        """Feed one in-order value; return the new level (== self.level when nothing changes).

        The caller applies the change and then sets `self.level`.
        """
        target = self.target(value)
        since = self.since
        for i in range(len(since)):
            if i < target:
                if since[i] is None:
                    since[i] = ts_ms
            else:
                since[i] = None
        self.idle = target == 0
        current = self.level
        for i in range(target, 0, -1):
            began = since[i - 1]
            if i <= current or (began is not None and ts_ms - began >= self.levels[i - 1].for_ms):
                return i
        return 0

    def threshold(self, old: int, new: int) -> float | str | None:
        """The bound crossed going from level `old` to level `new`."""
        if self.kind == EQUALS:
            values = sorted(str(v) for v in self.values)
            return values[0] if len(values) == 1 else "|".join(values)
        if new > old:
            return self.levels[new - 1].bound
        return self.levels[old - 1].recover
