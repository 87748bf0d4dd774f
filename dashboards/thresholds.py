"""Alert thresholds to draw on panels, read from the alert rules file when it has them.

The rules file belongs to the alert engine (`config/alerts.yaml`); this module only
peeks at the bounds of the threshold rules, `levels: {warning: {above: N}, ...}` or a
flat `above: N` + `severity`, with `site_kind:` overrides, and falls back to the
shipped defaults when the file is absent or shaped otherwise, so a dashboard can
always be built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Bound = Literal["above", "below"]
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True, slots=True)
class RuleLevels:
    """The bounds of one threshold rule, by severity, crossed above or below."""

    bound: Bound
    levels: tuple[tuple[str, float], ...]

    def value(self, severity: str) -> float | None:
        return dict(self.levels).get(severity)


@dataclass(frozen=True, slots=True)
class AlertLevels:
    """Every rule's bounds, and the bounds a kind of site overrides them with."""

    rules: dict[str, RuleLevels]
    by_kind: dict[tuple[str, str], RuleLevels] = field(default_factory=dict)
    #: `toilet_cleaning_overdue`'s hours between check-ins (the cleaning schedule).
    cleaning_every_h: float = 4.0

    def get(self, rule: str, site_kind: str | None = None) -> RuleLevels | None:
        if site_kind is not None and (rule, site_kind) in self.by_kind:
            return self.by_kind[(rule, site_kind)]
        return self.rules.get(rule)


def _levels(bound: Bound, **values: float) -> RuleLevels:
    return RuleLevels(bound, tuple(values.items()))


#: Used when the rules file lacks a rule; the values `config/alerts.yaml` ships with.
DEFAULT_LEVELS = AlertLevels(
    rules={
        "odor_nh3_high": _levels("above", warning=2.0, critical=4.3),
        "odor_h2s_high": _levels("above", warning=0.03, critical=0.23),
        "station_fill_high": _levels("above", warning=85.0, critical=95.0),
        "sprayer_liquid_low": _levels("below", warning=15.0),
        "toilet_crowded": _levels("above", info=20.0),
        "battery_low": _levels("below", warning=15.0),
        "toilet_paper_low": _levels("below", warning=15.0),
        "toilet_soap_low": _levels("below", warning=15.0),
    },
    by_kind={
        ("odor_nh3_high", "transfer_station"): _levels("above", warning=5.7, critical=28.7),
        ("odor_h2s_high", "transfer_station"): _levels("above", warning=0.23, critical=7.2),
    },
)


def load_levels(path: Path | None) -> AlertLevels:
    """The defaults, overridden by every rule of `path` whose bounds can be read."""
    if path is None or not path.is_file():
        return DEFAULT_LEVELS
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return DEFAULT_LEVELS
    rules, by_kind = dict(DEFAULT_LEVELS.rules), dict(DEFAULT_LEVELS.by_kind)
    for name, rule in _rules(document).items():
        found = rule_levels(rule)
        if found is not None:
            rules[name] = found
        kinds = rule.get("site_kind")
        for kind, override in (kinds.items() if isinstance(kinds, Mapping) else ()):
            found = rule_levels(override) if isinstance(override, Mapping) else None
            if found is not None:
                by_kind[(name, str(kind))] = found
    every = _rules(document).get("toilet_cleaning_overdue", {}).get("cleaning_every_h")
    if not isinstance(every, int | float) or isinstance(every, bool) or not every > 0:
        every = DEFAULT_LEVELS.cleaning_every_h
    return AlertLevels(rules, by_kind, float(every))


def _rules(document: Any) -> dict[str, Mapping[str, Any]]:
    """Rules by name, whether the file lists them or maps names to them."""
    rules = document.get("rules") if isinstance(document, Mapping) else None
    if isinstance(rules, Mapping):
        return {str(k): v for k, v in rules.items() if isinstance(v, Mapping)}
    if isinstance(rules, list):
        named = (r for r in rules if isinstance(r, Mapping))
        return {str(r.get("name", r.get("id"))): r for r in named}
    return {}


def rule_levels(rule: Mapping[str, Any]) -> RuleLevels | None:
    """Bounds from `levels: {warning: {above: 2}, ...}`, or a flat `above: 2` + `severity`."""
    levels = rule.get("levels")
    if not isinstance(levels, Mapping):
        levels = {str(rule.get("severity", "warning")): rule}
    found: list[tuple[str, tuple[Bound, float]]] = []
    for severity in SEVERITIES:
        level = levels.get(severity)
        bound = _bound(level) if isinstance(level, Mapping) else None
        if bound is not None:
            found.append((severity, bound))
    if not found:
        return None
    return RuleLevels(found[0][1][0], tuple((sev, value) for sev, (_, value) in found))


def _bound(level: Mapping[str, Any]) -> tuple[Bound, float] | None:
    for key in ("above", "below"):
        value = level.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ("above" if key == "above" else "below"), float(value)
    return None
