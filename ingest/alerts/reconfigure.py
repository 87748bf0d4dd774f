"""Reloaded rules and registry put into a running engine (SIGHUP, SPEC section 10).

`prepare` compiles the new configuration (pure: safe off the event loop; raises
`AlertRulesError` before anything changes); `carry_over` and `carry_over_sites` move the
running state into it: open incidents, when each device was last heard, its newest reading,
and the `for` timers and histories of the rules that did not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from devices.sites import Registry
from ingest.alerts.events import Incident
from ingest.alerts.plan import DevicePlan, check_site_overrides, compile_plan
from ingest.alerts.rules import RuleSet
from ingest.alerts.site_watch import SiteWatch, build_watches
from ingest.alerts.watch import Watch


@dataclass(frozen=True, slots=True)
class Reconfiguration:
    rules: RuleSet
    plans: dict[str, DevicePlan]
    site_watches: list[SiteWatch]


def prepare(rules: RuleSet, registry: Registry, zone: tzinfo) -> Reconfiguration:
    """Every device's plan and site rule; raises `AlertRulesError` for an override that
    does not fit."""
    check_site_overrides(rules, registry)
    plans = {device.id: compile_plan(rules, device) for device in registry.devices.values()}
    return Reconfiguration(rules, plans, build_watches(rules.site_rules, registry, zone))


def incidents_of(plan: DevicePlan) -> list[tuple[Watch | None, Incident]]:
    """The open incidents of a device's plan, with the watch of each (None: offline)."""
    found: list[tuple[Watch | None, Incident]] = []
    if plan.offline is not None:
        found.append((None, plan.offline))
    found.extend((watch, watch.incident) for watch in plan.watches if watch.incident is not None)
    return found


def carry_over(old: DevicePlan, new: DevicePlan) -> list[Incident]:
    """Move the running state of a device's plan into its reloaded plan. Returns the
    incidents whose rule is gone or disabled for it."""
    new.heard_ms, new.newest_ms = old.heard_ms, old.newest_ms
    orphans: list[Incident] = []
    if old.offline is not None:
        if new.offline_rule.enabled:
            new.offline = old.offline
        else:
            orphans.append(old.offline)
    fresh = {watch.rule.name: watch for watch in new.watches}
    kept: dict[str, Watch] = {}
    for watch in old.watches:
        replacement = fresh.get(watch.rule.name)
        if replacement is None:
            if watch.incident is not None:
                orphans.append(watch.incident)
        elif replacement.rule == watch.rule:
            kept[watch.rule.name] = watch  # unchanged: its `for` timers go on
        elif watch.incident is not None:
            replacement.restore(watch.incident)
    new.watches = tuple(kept.get(watch.rule.name, watch) for watch in new.watches)
    return orphans


def carry_over_sites(old: list[SiteWatch], new: list[SiteWatch]
                     ) -> tuple[list[SiteWatch], list[Incident]]:
    """Site rules after a reload: a watch whose rule and devices did not change goes on as
    it was; a changed one takes the incident and the mark of the one it replaces. Returns
    the watches in force and the incidents that no watch holds any more."""
    before = {(watch.owner.id, watch.rule.name): watch for watch in old}
    in_force: list[SiteWatch] = []
    for watch in new:
        previous = before.pop((watch.owner.id, watch.rule.name), None)
        if previous is None:
            in_force.append(watch)
        elif (previous.rule, previous.owner, previous.reads) == (watch.rule, watch.owner,
                                                                   watch.reads):
            in_force.append(previous)
        else:
            watch.incident = previous.incident
            mark = previous.mark()
            if mark is not None:
                watch.restore_mark(mark)
            in_force.append(watch)
    return in_force, [w.incident for w in before.values() if w.incident is not None]
