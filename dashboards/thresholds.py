"""Alert thresholds to draw on panels, read from the alert rules file when it has them.

The rules file belongs to the alert engine; this module only peeks at the bounds of
a few rules (`levels.<severity>.above|below`) and falls back to the shipped defaults
when the file is absent or shaped otherwise, so a dashboard can always be built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Bound = Literal["above", "below"]


@dataclass(frozen=True, slots=True)
class RuleLevels:
    """The bounds of one threshold rule: warning and critical, crossed above or below."""

    bound: Bound
    warning: float | None
    critical: float | None


#: Used when `config/alerts.yaml` lacks a rule; the same values the shipped rules use.
DEFAULT_LEVELS: dict[str, RuleLevels] = {
    "odor_nh3_high": RuleLevels("above", warning=2.0, critical=5.0),
    "odor_h2s_high": RuleLevels("above", warning=0.1, critical=0.5),
    "station_fill_high": RuleLevels("above", warning=80.0, critical=95.0),
    "sprayer_liquid_low": RuleLevels("below", warning=20.0, critical=5.0),
    "toilet_crowded": RuleLevels("above", warning=20.0, critical=40.0),
    "battery_low": RuleLevels("below", warning=20.0, critical=10.0),
}


def load_levels(path: Path | None) -> dict[str, RuleLevels]:
    """The defaults, overridden by every rule of `path` whose bounds can be read."""
    levels = dict(DEFAULT_LEVELS)
    if path is None or not path.is_file():
        return levels
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return levels
    for name, rule in _rules(document).items():
        found = rule_levels(rule)
        if found is not None:
            levels[name] = found
    return levels


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
    """Bounds from `levels: {warning: {above: 2}, critical: {above: 5}}`, or a flat rule."""
    levels = rule.get("levels")
    if not isinstance(levels, Mapping):
        levels = {str(rule.get("severity", "warning")): rule}
    bounds: dict[str, tuple[Bound, float]] = {}
    for severity in ("warning", "critical"):
        level = levels.get(severity)
        found = _bound(level) if isinstance(level, Mapping) else None
        if found is not None:
            bounds[severity] = found
    if not bounds:
        return None
    bound = next(iter(bounds.values()))[0]
    warning, critical = (bounds.get(s, (bound, None))[1] for s in ("warning", "critical"))
    return RuleLevels(bound, warning=warning, critical=critical)


def _bound(level: Mapping[str, Any]) -> tuple[Bound, float] | None:
    for key in ("above", "below"):
        value = level.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ("above" if key == "above" else "below"), float(value)
    return None
