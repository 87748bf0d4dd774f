"""Alert rules (SPEC section 6): the YAML file and the registry's overrides, parsed and checked.

Pure: plain data in, frozen dataclasses out. Every problem raises `AlertRulesError`
naming the file (or registry entry), the rule, the key and what would be accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from devices.registry import DEVICE_TYPES

if TYPE_CHECKING:
    from ingest.alerts.site_rules import SiteRule

SEVERITIES = ("info", "warning", "critical")
OFFLINE = "offline"
Kind = Literal["above", "below", "equals"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, None: 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}
_RULE_KEYS = {"device_type", "field", "above", "below", "recover", "for", "severity", "levels",
              "equals", "label", "unit", "enabled", "description", "site_kind"}
SITE_KINDS = ("toilet", "transfer_station")
_OFFLINE_KEYS = {"severity", "missed_intervals", "enabled", "description"}


class AlertRulesError(ValueError):
    """The rule file or an override cannot be used; the message names file, rule and key."""


@dataclass(frozen=True, slots=True)
class Level:
    """One severity step of a rule: fires past `bound`, clears past `recover`."""

    severity: str
    bound: float
    recover: float
    for_ms: int


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    kind: Kind
    #: None: every device type that has the field.
    device_types: frozenset[str] | None
    field: str
    #: Least severe first; an `equals` rule has one level (bounds unused).
    levels: tuple[Level, ...]
    equals: frozenset[str | bool | float] = frozenset()
    label: str = ""
    unit: str = ""
    enabled: bool = True
    #: The rule as overridden for a kind of site (`site_kind:` in the rule file).
    by_site_kind: tuple[tuple[str, AlertRule], ...] = ()

    def for_site_kind(self, kind: str) -> AlertRule:
        for site_kind, rule in self.by_site_kind:  # a loop: called per device and rule at start
            if site_kind == kind:
                return rule
        return self

    def applies_to(self, device_type: str) -> bool:
        if self.device_types is not None and device_type not in self.device_types:
            return False
        model = DEVICE_TYPES.get(device_type)
        return model is not None and self.field in model.model_fields


@dataclass(frozen=True, slots=True)
class OfflineRule:
    severity: str = "warning"
    missed_intervals: float = 3.0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[AlertRule, ...]
    offline: OfflineRule
    source: str = "<rules>"
    #: Rules of a built-in `kind` over a site's devices (`ingest.alerts.site_rules`).
    site_rules: tuple[SiteRule, ...] = ()

    def names(self) -> list[str]:
        return [*(rule.name for rule in self.rules), *(r.name for r in self.site_rules), OFFLINE]


def load_rules(path: Path) -> RuleSet:
    source = f"alert rules file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertRulesError(f"{source}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise AlertRulesError(f"{source}: not valid YAML ({exc})") from None
    return parse_rules(data, source)


def parse_rules(data: Any, source: str = "<rules>") -> RuleSet:
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict):
        raise AlertRulesError(f"{source}: expected a mapping with a 'rules' mapping at the top "
                              "(rule name -> rule)")
    from ingest.alerts.site_rules import parse_site_rule  # it builds on this module

    rules: list[AlertRule] = []
    site_rules: list[SiteRule] = []
    offline = OfflineRule()
    for name, spec in data["rules"].items():
        where = f"{source}: rule {name!r}"
        if not isinstance(spec, dict):
            raise AlertRulesError(f"{where}: expected a mapping of keys, got {spec!r:.60}")
        if name == OFFLINE:
            offline = _parse_offline(spec, where)
        elif "kind" in spec:
            site_rules.append(parse_site_rule(str(name), spec, where))
        else:
            rules.append(_parse_rule(str(name), spec, where))
    return RuleSet(tuple(rules), offline, source, tuple(site_rules))


def _parse_offline(spec: dict[str, Any], where: str, base: OfflineRule | None = None
                   ) -> OfflineRule:
    _check_keys(spec, _OFFLINE_KEYS, where)
    base = base or OfflineRule()
    missed = spec.get("missed_intervals", base.missed_intervals)
    if not _is_number(missed) or missed <= 0:
        raise AlertRulesError(f"{where} key 'missed_intervals': expected a number > 0, "
                              f"got {missed!r:.40}")
    return OfflineRule(_severity(spec.get("severity", base.severity), where),
                       float(missed), _flag(spec.get("enabled", base.enabled), where))


def _parse_rule(name: str, spec: dict[str, Any], where: str) -> AlertRule:
    _check_keys(spec, _RULE_KEYS, where)
    types = _device_types(spec.get("device_type"), where)
    field = spec.get("field")
    if not isinstance(field, str) or not field:
        raise AlertRulesError(f"{where} key 'field': required, the reading field to watch "
                              "(e.g. nh3_ppm)")
    candidates = types if types is not None else frozenset(DEVICE_TYPES)
    if not any(field in DEVICE_TYPES[t].model_fields for t in candidates):
        known = sorted({f for t in candidates for f in DEVICE_TYPES[t].model_fields})
        raise AlertRulesError(f"{where} key 'field': {field!r} is not a field of "
                              f"{', '.join(sorted(candidates))}; one of {', '.join(known)}")
    rule = AlertRule(name, "above", types, field, (), label=str(spec.get("label", "")),
                     unit=str(spec.get("unit", "")))
    rule = _with_spec(rule, spec, where, fresh=True)
    kinds = spec.get("site_kind", {})
    if not isinstance(kinds, dict) or not set(kinds) <= set(SITE_KINDS):
        raise AlertRulesError(f"{where} key 'site_kind': expected a mapping of site kind "
                              f"({', '.join(SITE_KINDS)}) -> overrides, got {kinds!r:.60}")
    by_kind = tuple((kind, apply_overrides(rule, over, f"{where} key 'site_kind.{kind}'"))
                    for kind, over in kinds.items())
    return replace(rule, by_site_kind=by_kind)


def _with_spec(rule: AlertRule, spec: Mapping[str, Any], where: str, fresh: bool) -> AlertRule:
    """`rule` with the bounds of `spec` applied: the rule file itself, or an override."""
    enabled = _flag(spec.get("enabled", rule.enabled), where)
    if ("equals" in spec) if fresh else rule.kind == "equals":
        return _equality(rule, spec, where, fresh, enabled)
    kind = _fresh_kind(spec, where) if fresh else rule.kind
    if "levels" in spec:
        levels = _levels(rule, kind, spec["levels"], spec, where, fresh)
    else:
        base = rule.levels[0] if rule.levels else None
        severity = _severity(spec.get("severity", base.severity if base else "warning"), where)
        levels = (_level(kind, severity, spec, spec, base, where),)
    _check_order(levels, kind, where)
    return replace(rule, kind=kind, levels=levels, enabled=enabled)


def _fresh_kind(spec: Mapping[str, Any], where: str) -> Kind:
    if "levels" not in spec:
        kinds = [k for k in ("above", "below") if k in spec]
        if len(kinds) != 1:
            raise AlertRulesError(f"{where}: give exactly one of 'above', 'below', 'equals' "
                                  "or 'levels' (warning/critical)")
        return "below" if kinds[0] == "below" else "above"
    if {"above", "below", "recover", "severity"} & spec.keys():
        raise AlertRulesError(f"{where}: 'levels' replaces 'above'/'below'/'recover'/"
                              "'severity'; give them inside each level")
    levels = spec["levels"]
    found = {k for lv in levels.values() if isinstance(lv, dict) for k in ("above", "below")
             if k in lv} if isinstance(levels, dict) else set()
    if len(found) != 1:
        raise AlertRulesError(f"{where} key 'levels': every level needs the same one of "
                              "'above' or 'below'")
    return "below" if "below" in found else "above"


def _levels(rule: AlertRule, kind: Kind, data: Any, spec: Mapping[str, Any], where: str,
            fresh: bool) -> tuple[Level, ...]:
    if not isinstance(data, dict) or not data:
        raise AlertRulesError(f"{where} key 'levels': expected a mapping of severity "
                              f"({', '.join(SEVERITIES)}) -> {{above|below, recover, for}}")
    old = {lv.severity: lv for lv in rule.levels}
    merged: dict[str, Level] = {} if fresh else dict(old)
    for severity, level_spec in data.items():
        here = f"{where} key 'levels.{severity}'"
        _severity(severity, f"{where} key 'levels'")
        if not isinstance(level_spec, dict):
            raise AlertRulesError(f"{here}: expected a mapping {{above|below, recover, for}}")
        if not fresh and severity not in old:
            raise AlertRulesError(f"{here}: rule {rule.name!r} has no {severity} level; "
                                  f"one of {', '.join(old)}")
        _check_keys(level_spec, {kind, "recover", "for"}, here)
        merged[severity] = _level(kind, severity, level_spec, spec, old.get(severity), here)
    return tuple(sorted(merged.values(), key=lambda lv: SEVERITIES.index(lv.severity)))


def _level(key: Kind, severity: str, spec: Mapping[str, Any], outer: Mapping[str, Any],
           base: Level | None, where: str) -> Level:
    if key in spec:
        bound = _number(spec[key], where, key)
        recover = _number(spec["recover"], where, "recover") if "recover" in spec else bound
    elif base is not None:
        bound = base.bound
        recover = _number(spec["recover"], where, "recover") if "recover" in spec else base.recover
    else:
        raise AlertRulesError(f"{where}: needs {key!r} (a number)")
    if "for" in spec:
        for_ms = parse_duration(spec["for"], where)
    elif "for" in outer:
        for_ms = parse_duration(outer["for"], where)
    else:
        for_ms = base.for_ms if base else 0
    return Level(severity, bound, recover, for_ms)


def _check_order(levels: tuple[Level, ...], kind: Kind, where: str) -> None:
    sign = 1 if kind == "above" else -1
    for lv in levels:
        if sign * lv.recover > sign * lv.bound:
            side = "at or below" if kind == "above" else "at or above"
            raise AlertRulesError(f"{where} key 'recover' ({lv.severity}): {lv.recover:g} must be "
                                  f"{side} the '{kind}' bound {lv.bound:g} (hysteresis)")
    for low, high in pairwise(levels):
        if sign * high.bound < sign * low.bound:
            raise AlertRulesError(f"{where} key 'levels.{high.severity}': {kind} {high.bound:g} "
                                  f"must be beyond the {low.severity} bound {low.bound:g}")


def _equality(rule: AlertRule, spec: Mapping[str, Any], where: str, fresh: bool, enabled: bool
              ) -> AlertRule:
    if fresh and ({"above", "below", "recover", "levels"} & spec.keys()):
        raise AlertRulesError(f"{where}: 'equals' rules take 'equals', 'for' and 'severity', "
                              "not 'above'/'below'/'recover'/'levels'")
    raw = spec.get("equals", sorted(rule.equals, key=str))
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, (str, bool, int, float)) for v in values):
        raise AlertRulesError(f"{where} key 'equals': expected a value or a list of values "
                              f"(strings, numbers or booleans), got {raw!r:.60}")
    base = rule.levels[0] if rule.levels else None
    severity = _severity(spec.get("severity", base.severity if base else "warning"), where)
    for_ms = parse_duration(spec["for"], where) if "for" in spec else (base.for_ms if base else 0)
    level = Level(severity, math.nan, math.nan, for_ms)
    return replace(rule, kind="equals", levels=(level,), equals=frozenset(values),
                   enabled=enabled)


def apply_overrides(rule: AlertRule, spec: Any, where: str) -> AlertRule:
    """The rule with a site's or device's override applied (registry `alerts: {rule: {...}}`)."""
    if not isinstance(spec, dict):
        raise AlertRulesError(f"{where}: expected a mapping of keys, got {spec!r:.60}")
    if rule.kind == "equals":
        allowed = {"equals", "for", "severity", "enabled"}
    elif len(rule.levels) > 1:
        allowed = {"levels", "for", "enabled"}
    else:
        allowed = {rule.kind, "recover", "for", "severity", "enabled"}
    _check_keys(spec, allowed, where)
    return _with_spec(rule, spec, where, fresh=False)


def apply_offline_overrides(rule: OfflineRule, spec: Any, where: str) -> OfflineRule:
    if not isinstance(spec, dict):
        raise AlertRulesError(f"{where}: expected a mapping of keys, got {spec!r:.60}")
    return _parse_offline(spec, where, rule)


def parse_duration(value: Any, where: str) -> int:
    """'2m', '30s', '1h', '500ms' or a number of seconds -> milliseconds."""
    if _is_number(value) and value >= 0:
        return round(float(value) * 1000)
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise AlertRulesError(f"{where} key 'for': expected a duration like '30s', '2m', '1h', "
                              f"'500ms' or a number of seconds, got {value!r:.40}")
    return round(float(match[1]) * _UNIT_MS[match[2]])


def _device_types(value: Any, where: str) -> frozenset[str] | None:
    if value is None or value == "*":
        return None
    names = value if isinstance(value, list) else [value]
    for name in names:
        if name not in DEVICE_TYPES:
            raise AlertRulesError(f"{where} key 'device_type': unknown type {name!r}; one of "
                                  f"{', '.join(DEVICE_TYPES)}, a list of them, or '*'")
    return frozenset(names)


def _check_keys(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in spec.keys() - allowed)
    if unknown:
        raise AlertRulesError(f"{where}: unknown key {unknown[0]!r}; accepted keys: "
                              f"{', '.join(sorted(allowed))}")


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise AlertRulesError(f"{where} key 'severity': {value!r:.40} is not one of "
                              f"{', '.join(SEVERITIES)}")
    return str(value)


def _number(value: Any, where: str, key: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise AlertRulesError(f"{where} key {key!r}: expected a number, got {value!r:.40}")
    return float(value)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise AlertRulesError(f"{where} key 'enabled': expected true or false, got {value!r:.40}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
