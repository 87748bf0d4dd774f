"""A device's compiled watch list: the rules that apply to its type, with the overrides of
its site kind, its site and itself applied once, at start (SPEC sections 4 and 6)."""

from __future__ import annotations

from devices.sites import Device, Registry
from ingest.alerts.events import Incident
from ingest.alerts.rules import (
    OFFLINE,
    AlertRulesError,
    OfflineRule,
    RuleSet,
    apply_offline_overrides,
    apply_overrides,
)
from ingest.alerts.watch import Watch

NEVER = -(2**63)


class DevicePlan:
    """Everything watched on one device, compiled once from the rules and its overrides."""

    __slots__ = ("device", "heard_ms", "newest_ms", "offline", "offline_rule", "watches")

    def __init__(self, device: Device, watches: list[Watch], offline_rule: OfflineRule) -> None:
        self.device = device
        self.watches = tuple(watches)
        self.offline_rule = offline_rule
        self.offline: Incident | None = None
        #: Newest reading time seen: older readings change nothing.
        self.newest_ms = NEVER
        #: Wall clock of the last message; None until the first sweep after start.
        self.heard_ms: int | None = None


def compile_plan(rules: RuleSet, device: Device) -> DevicePlan:
    where = f"registry device {device.id!r} (site {device.site.id!r}) alerts"
    names = set(rules.names()) if device.alerts else set()  # most devices have no overrides
    for name in device.alerts:
        if name not in names:
            raise AlertRulesError(f"{where}: unknown rule {name!r}; one of "
                                  f"{', '.join(sorted(names))}")
    for site_rule in rules.site_rules:
        if site_rule.name in device.alerts and site_rule.device_type != device.type:
            raise AlertRulesError(f"{where}.{site_rule.name}: rule applies to "
                                  f"{site_rule.device_type} devices, not {device.type}")
    watches = []
    for rule in rules.rules:
        if not rule.applies_to(device.type):
            if rule.name in device.alerts:
                raise AlertRulesError(f"{where}.{rule.name}: rule does not apply to "
                                      f"{device.type} devices (field {rule.field!r})")
            continue
        rule = rule.for_site_kind(device.site.kind)
        if rule.name in device.site.alerts:
            rule = apply_overrides(rule, device.site.alerts[rule.name],
                                   f"registry site {device.site.id!r} alerts.{rule.name}")
        if rule.name in device.alerts:
            rule = apply_overrides(rule, device.alerts[rule.name], f"{where}.{rule.name}")
        if rule.enabled:
            watches.append(Watch(rule))
    offline = rules.offline
    if OFFLINE in device.site.alerts:
        offline = apply_offline_overrides(offline, device.site.alerts[OFFLINE],
                                          f"registry site {device.site.id!r} alerts.{OFFLINE}")
    if OFFLINE in device.alerts:
        offline = apply_offline_overrides(offline, device.alerts[OFFLINE], f"{where}.{OFFLINE}")
    return DevicePlan(device, watches, offline)


def check_site_overrides(rules: RuleSet, registry: Registry) -> None:
    """Site overrides must name known rules with valid keys, even on a site without devices."""
    from ingest.alerts.site_rules import site_overrides

    by_name = {rule.name: rule for rule in rules.rules}
    site_rules = {rule.name: rule for rule in rules.site_rules}
    for site in registry.sites.values():
        for name, spec in site.alerts.items():
            where = f"registry site {site.id!r} alerts.{name}"
            if name == OFFLINE:
                apply_offline_overrides(rules.offline, spec, where)
            elif name in site_rules:
                site_overrides(site_rules[name], spec, where)
            elif name in by_name:
                apply_overrides(by_name[name].for_site_kind(site.kind), spec, where)
            else:
                raise AlertRulesError(f"registry site {site.id!r} alerts: unknown rule {name!r}; "
                                      f"one of {', '.join(sorted(rules.names()))}")
