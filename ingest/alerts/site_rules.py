"""Site rules (SPEC v1.1 section 6): rules whose condition is code, not a bound on one field.

A threshold rule watches one field of one device. A site rule is a `kind` built into
Sanitel: it may read several devices of a site (`toilet_water_leak` joins a toilet's
terminal and its people counter) or run on the clock and the site's `open_hours`
(`toilet_cleaning_overdue`). Its incidents are still one per rule and device: the device
of `device_type` at the site (the toilet terminal). In the rules file:

    toilet_water_leak: {kind: water_leak, for: 1h, min_rise_m3: 0.01, severity: critical}

Sites and devices override a site rule's parameters, `severity` and `enabled` like any
rule's bounds. Adding a kind is one `SiteRuleKind` here and one watch class in
`site_watch`.

Pure: plain data in, frozen dataclasses out; every problem raises `AlertRulesError`
naming the file (or registry entry), the rule and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ingest.alerts.rules import (
    AlertRulesError,
    _check_keys,
    _flag,
    _number,
    _severity,
    parse_duration,
)

_COMMON_KEYS = {"kind", "severity", "enabled", "description"}


@dataclass(frozen=True, slots=True)
class Param:
    """A kind's parameter: its default and the least value it accepts (exclusive)."""

    default: float
    above: float
    #: A duration ('1h', '30m', seconds) kept in milliseconds, or a plain number.
    duration: bool = False
    what: str = ""


@dataclass(frozen=True, slots=True)
class SiteRuleKind:
    name: str
    #: The device type an incident is on, and the field it names.
    device_type: str
    field: str
    params: dict[str, Param]
    doc: str


KINDS: dict[str, SiteRuleKind] = {
    kind.name: kind for kind in (
        SiteRuleKind(
            "cleaning_overdue", "toilet_terminal", "cleaned_by",
            {"cleaning_every_h": Param(4.0, 0.0, what="hours of opening time between "
                                                      "check-ins")},
            "no `cleaned_by` check-in for `cleaning_every_h` hours of the site's open_hours",
        ),
        SiteRuleKind(
            "water_leak", "toilet_terminal", "water_m3",
            {"for": Param(3_600_000, 0.0, duration=True, what="how long the meter keeps "
                                                               "rising with nobody counted"),
             "min_rise_m3": Param(0.01, 0.0, what="least rise of the water meter over 'for'")},
            "the water meter rises at every reading for `for` while the site's people "
            "counters count nobody",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class SiteRule:
    name: str
    kind: str
    severity: str
    #: The kind's parameters by key (durations in milliseconds).
    params: tuple[tuple[str, float], ...]
    enabled: bool = True

    @property
    def device_type(self) -> str:
        return KINDS[self.kind].device_type

    @property
    def field(self) -> str:
        return KINDS[self.kind].field

    def param(self, key: str) -> float:
        return dict(self.params)[key]


def parse_site_rule(name: str, spec: Mapping[str, Any], where: str) -> SiteRule:
    kind = KINDS.get(spec.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        raise AlertRulesError(f"{where} key 'kind': {spec.get('kind')!r:.40} is not a site rule "
                              f"kind; one of {', '.join(KINDS)}")
    defaults = tuple((key, param.default) for key, param in kind.params.items())
    base = SiteRule(name, kind.name, "warning", defaults)
    return site_overrides(base, spec, where, extra=_COMMON_KEYS)


def site_overrides(rule: SiteRule, spec: Any, where: str,
                   extra: set[str] | frozenset[str] = frozenset()) -> SiteRule:
    """The rule with a site's or device's override applied (registry `alerts: {rule: {...}}`)."""
    if not isinstance(spec, Mapping):
        raise AlertRulesError(f"{where}: expected a mapping of keys, got {spec!r:.60}")
    kind = KINDS[rule.kind]
    _check_keys(spec, {"severity", "enabled", *kind.params, *extra}, where)
    params = dict(rule.params)
    for key, param in kind.params.items():
        if key in spec:
            params[key] = _param(spec[key], param, where, key)
    return replace(
        rule, params=tuple(params.items()),
        severity=_severity(spec.get("severity", rule.severity), where),
        enabled=_flag(spec.get("enabled", rule.enabled), where),
    )


def _param(value: Any, param: Param, where: str, key: str) -> float:
    number = float(parse_duration(value, where)) if param.duration \
        else _number(value, where, key)
    if number <= param.above:
        raise AlertRulesError(f"{where} key {key!r}: {value!r:.40} must be more than "
                              f"{param.above:g} ({param.what})")
    return number
