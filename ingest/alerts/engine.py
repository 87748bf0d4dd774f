"""The alert engine: readings and statuses in, incident changes (`AlertEvent`s) out.

Time is the readings' own time, except `offline` by silence, which is the wall clock.
Every change is committed to the store before its events are returned, and those events
with it, into the store's outbox: there they stay until the caller `confirm`s them
delivered, and `unconfirmed()` hands them out again after a crash. A reading that changes
nothing costs a few comparisons and no I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, tzinfo
from pathlib import Path

from devices.common import Reading
from devices.sites import Device, Registry
from ingest.alerts import wording
from ingest.alerts.durable import DurableChanges
from ingest.alerts.events import ACKNOWLEDGED, RESOLVED, AlertEvent, Incident
from ingest.alerts.incident_db import IncidentStore, store_path
from ingest.alerts.plan import NEVER, DevicePlan, check_site_overrides, compile_plan
from ingest.alerts.reconfigure import (
    Reconfiguration,
    carry_over,
    carry_over_sites,
    incidents_of,
    prepare,
)
from ingest.alerts.rules import OFFLINE, RuleSet, load_rules
from ingest.alerts.site_watch import SiteWatch, Verdict, build_watches
from ingest.alerts.transitions import close_offline, open_offline, site_change, threshold_change
from ingest.alerts.watch import ABOVE, BELOW, Watch

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(self, rules: RuleSet, registry: Registry, store: IncidentStore,
                 zone: tzinfo = UTC) -> None:
        self._rules = rules
        self._store = store
        self._zone = zone
        self._plans: dict[str, DevicePlan] = {}
        self._open: dict[str, tuple[DevicePlan | None, Watch | None, Incident]] = {}
        self._deferred: list[AlertEvent] = []
        self._durable = DurableChanges(store)
        check_site_overrides(rules, registry)
        for device in registry.devices.values():
            self._plans[device.id] = compile_plan(self._rules, device)
        #: Site rules (`site_watch`), by the device ids whose readings each one reads.
        self._feeds: dict[str, list[SiteWatch]] = {}
        self._marking: dict[str, list[SiteWatch]] = {}
        self._use_site_watches(build_watches(rules.site_rules, registry, zone))
        self._restore()

    @classmethod
    def open(cls, rules_path: Path, registry: Registry, state_dir: Path, zone: tzinfo = UTC
             ) -> AlertEngine:
        """Load and check the rules and overrides; reload open incidents from `state_dir`.
        `zone` is the city's time zone, in which sites' `open_hours` are read."""
        rules = load_rules(rules_path)
        return cls(rules, registry, IncidentStore(store_path(state_dir)), zone)

    @property
    def rules(self) -> list[str]:
        """The names of the rules in force (with the built-in `offline`)."""
        return self._rules.names()

    @property
    def rule_set(self) -> RuleSet:
        return self._rules

    def outbox_size(self) -> int:
        """Events handed out and not yet confirmed delivered."""
        return self._durable.outbox_size()

    def prepare(self, rules: RuleSet, registry: Registry) -> Reconfiguration:
        """Compile reloaded rules and registry for `reload` (pure: safe off the event loop);
        raises `AlertRulesError` for an override that does not fit."""
        return prepare(rules, registry, self._zone)

    def reload(self, new: Reconfiguration) -> int:
        """Put a prepared configuration in force keeping the running state; incidents of a
        removed device or rule are resolved with that reason, their events handed out with
        the next sweep. Returns how many were resolved."""
        orphans: list[tuple[Incident, str]] = []
        for device_id, old in self._plans.items():
            plan = new.plans.get(device_id)
            if plan is None:
                orphans.extend((incident, "device removed from the registry")
                               for _, incident in incidents_of(old))
            else:
                orphans.extend((incident, "rule removed or disabled for this device")
                               for incident in carry_over(old, plan))
        site_watches, gone = carry_over_sites(self._site_watches, new.site_watches)
        orphans.extend((incident, "device or site rule removed") for incident in gone
                       if incident.device_id in new.plans)
        orphans.extend((incident, "device removed from the registry") for incident in gone
                       if incident.device_id not in new.plans)
        self._rules, self._plans = new.rules, new.plans
        self._use_site_watches(site_watches)
        self._open = {incident.alert_id: (plan, watch, incident) for plan in new.plans.values()
                      for watch, incident in incidents_of(plan)}
        self._open.update((w.incident.alert_id, (new.plans.get(w.owner.id), None, w.incident))
                          for w in site_watches if w.incident is not None)
        self._resolve_orphans(orphans, durable=False)
        return len(orphans)

    def _use_site_watches(self, watches: list[SiteWatch]) -> None:
        """Site rules, indexed by the device ids whose readings each one reads, and those
        that keep a mark by the same ids (most readings fed to a site rule, the people
        counters' to a leak watch, can move no mark)."""
        self._site_watches = watches
        self._feeds = {}
        self._marking = {}
        for site_watch in watches:
            for device_id in site_watch.reads:
                self._feeds.setdefault(device_id, []).append(site_watch)
                if site_watch.keeps_marks:
                    self._marking.setdefault(device_id, []).append(site_watch)

    # -- inputs -----------------------------------------------------------------------------

    def on_reading(self, device: Device, reading: Reading, ts_ms: int, received_ms: int
                   ) -> list[AlertEvent]:
        plan = self._plans.get(device.id) or self._add(device)
        plan.heard_ms = received_ms
        if ts_ms < plan.newest_ms:
            return []
        plan.newest_ms = ts_ms
        changes: list[tuple[Watch, int, object]] | None = None
        # A watch's field is one of the model's (`compile_plan`), in the instance dict:
        # a lookup there costs a fifth of `getattr` on a pydantic model (callgrind).
        values = reading.__dict__
        for watch in plan.watches:
            value = values[watch.field]
            if value is None:
                continue
            if watch.idle:
                kind = watch.kind
                if kind == ABOVE:
                    if value <= watch.arm:
                        continue
                elif kind == BELOW:
                    if value >= watch.arm:
                        continue
                elif value not in watch.values:
                    continue
            level = watch.step(value, ts_ms)
            if level != watch.level:
                changes = changes or []
                changes.append((watch, level, value))
        events = [] if changes is None and plan.offline is None else \
            self._apply(plan, changes or [], ts_ms)
        feeds = self._feeds.get(device.id)
        if feeds is not None:
            verdicts: list[tuple[SiteWatch, Verdict]] | None = None
            for site_watch in feeds:
                verdict = site_watch.feed(device, reading, ts_ms)
                if verdict is not None:
                    verdicts = verdicts or []
                    verdicts.append((site_watch, verdict))
            marking = self._marking.get(device.id)
            if marking is not None:
                self._durable.keep_marks(marking)
            if verdicts:
                events.extend(self._apply_site(verdicts))
        return events

    def on_status(self, device: Device, online: bool, ts_ms: int, received_ms: int
                  ) -> list[AlertEvent]:
        plan = self._plans.get(device.id) or self._add(device)
        plan.heard_ms = received_ms
        if online:
            if plan.offline is None:
                return []
            incident = self._track(plan, None, close_offline(plan, True, ts_ms))
        elif plan.offline is not None or not plan.offline_rule.enabled:
            return []
        else:
            incident = self._track(plan, None, open_offline(
                plan, "online", False, None, ts_ms,
                wording.offline_lwt(device.type, device.site.name, device.id)))
        events = [incident.event(ts_ms)]
        self._save([incident], {}, events)
        return events

    def site_of(self, alert_id: str) -> str | None:
        """The site of an open incident (None when no such incident is open)."""
        entry = self._open.get(alert_id)
        return None if entry is None else entry[2].site_id

    def on_ack(self, alert_id: str, by: str, now_ms: int) -> list[AlertEvent]:
        entry = self._open.get(alert_id)
        if entry is None or entry[2].state == ACKNOWLEDGED:
            return []
        incident = entry[2]
        incident.state = ACKNOWLEDGED
        incident.acknowledged_by = by
        incident.updated_ms = now_ms
        incident.message = wording.acknowledged(incident.message, by)
        events = [incident.event(now_ms)]
        self._save([incident], {}, events)
        return events

    def sweep(self, now_ms: int) -> list[AlertEvent]:
        """Open `offline` for devices silent for `missed_intervals` x `interval_s` (wall clock)."""
        events, self._deferred = self._deferred, []
        self._durable.retry()
        fired: list[Incident] = []
        for plan in self._plans.values():
            heard = plan.heard_ms
            if heard is None:
                plan.heard_ms = now_ms  # after a start, count from the start
                continue
            rule = plan.offline_rule
            limit_ms = rule.missed_intervals * plan.device.interval_s * 1000
            if plan.offline is None and rule.enabled and now_ms - heard > limit_ms:
                device = plan.device
                message = wording.offline_silent(device.type, now_ms - heard, rule.missed_intervals,
                                                 device.interval_s, device.site.name, device.id)
                fired.append(self._track(plan, None, open_offline(
                    plan, None, (now_ms - heard) / 1000, limit_ms / 1000, now_ms, message)))
        if fired:
            new = [incident.event(now_ms) for incident in fired]
            self._save(fired, {}, new)
            events.extend(new)
        events.extend(self._tick_sites(now_ms))
        return events

    def unconfirmed(self) -> list[AlertEvent]:
        """The events handed out and not yet confirmed, oldest first: after a crash, those
        the last run returned but may not have delivered. Call it once at start, deliver
        them again, `confirm` them like the others. Events not handed out yet (the next
        `sweep`'s) are not among them."""
        return self._durable.unconfirmed({event.event_id for event in self._deferred})

    def confirm(self, event_ids: Iterable[str]) -> None:
        """These events are delivered (published, stored): drop them from the outbox, in one
        transaction. Unknown ids are ignored. A failing store is logged, not raised: the ids
        are tried again with the next call (until then they would be delivered again after
        a restart, which consumers de-duplicate by `event_id`)."""
        self._durable.confirm(event_ids)

    def active(self) -> list[Incident]:
        """The open incidents, oldest first (copies)."""
        incidents = sorted((entry[2] for entry in self._open.values()),
                           key=lambda i: i.started_ms)
        return [replace(incident) for incident in incidents]

    def close(self) -> None:
        self._durable.close()

    def bound_outbox(self, max_events: int, max_age_s: float, now_ms: int) -> int:
        """Keep the outbox within its bounds (`alert_outbox` settings); logs what it drops."""
        return self._durable.bound_outbox(max_events, max_age_s, now_ms)

    def _save(self, incidents: list[Incident], marks: dict[str, int],
              events: list[AlertEvent]) -> None:
        self._durable.save(incidents, marks, events)

    # -- changes ----------------------------------------------------------------------------

    def _apply(self, plan: DevicePlan, changes: list[tuple[Watch, int, object]], ts_ms: int
               ) -> list[AlertEvent]:
        touched: list[Incident] = []
        events: list[AlertEvent] = []
        if plan.offline is not None:
            incident = self._track(plan, None, close_offline(plan, None, ts_ms))
            touched.append(incident)
            events.append(incident.event(ts_ms))
        for watch, level, value in changes:
            previous = watch.incident.severity if watch.incident else None
            incident = self._track(plan, watch, threshold_change(plan, watch, level, value,
                                                                 ts_ms))
            touched.append(incident)
            moved = previous if watch.incident is not None and previous else None
            events.append(incident.event(ts_ms, moved))
        self._save(touched, {plan.device.id: ts_ms}, events)
        return events

    def _track(self, plan: DevicePlan | None, watch: Watch | None, incident: Incident
               ) -> Incident:
        """Keep the books of open incidents after a change."""
        if incident.state == RESOLVED:
            self._open.pop(incident.alert_id, None)
        else:
            self._open[incident.alert_id] = (plan, watch, incident)
        return incident

    # -- site rules -------------------------------------------------------------------------

    def _tick_sites(self, now_ms: int) -> list[AlertEvent]:
        """Rules on the clock, in device time: the owner's newest reading time plus the wall
        time since it was heard (so simulated time and late data keep their own clock)."""
        verdicts: list[tuple[SiteWatch, Verdict]] = []
        for watch in self._site_watches:
            plan = self._plans.get(watch.owner.id)
            if plan is None or plan.heard_ms is None or plan.newest_ms == NEVER:
                continue
            verdict = watch.tick(plan.newest_ms + max(0, now_ms - plan.heard_ms))
            if verdict is not None:
                verdicts.append((watch, verdict))
        return self._apply_site(verdicts) if verdicts else []

    def _apply_site(self, verdicts: list[tuple[SiteWatch, Verdict]]) -> list[AlertEvent]:
        touched: list[Incident] = []
        events: list[AlertEvent] = []
        marks: dict[str, int] = {}
        for watch, verdict in verdicts:
            changed = site_change(watch, verdict)
            if changed is None:
                continue
            incident = self._track(self._plans.get(watch.owner.id), None, changed)
            owner, ts = watch.owner, verdict.ts_ms
            touched.append(incident)
            events.append(incident.event(ts))
            marks[owner.id] = max(ts, marks.get(owner.id, ts))
        if touched:
            self._save(touched, marks, events)
        return events

    # -- set-up -----------------------------------------------------------------------------

    def _add(self, device: Device) -> DevicePlan:
        plan = self._plans[device.id] = compile_plan(self._rules, device)
        return plan

    def _restore(self) -> None:
        marks = self._store.marks()
        for each in self._plans.values():
            each.newest_ms = marks.get(each.device.id, NEVER)
        site_watches = {(w.owner.id, w.rule.name): w for w in self._site_watches}
        for key, mark in self._durable.rule_marks.items():
            if key in site_watches:
                site_watches[key].restore_mark(mark)
        orphans: list[tuple[Incident, str]] = []
        for incident in self._store.open_incidents():
            plan: DevicePlan | None = self._plans.get(incident.device_id)
            watch: Watch | None = None
            site_watch = site_watches.get((incident.device_id, incident.rule))
            if site_watch is not None:
                site_watch.incident = incident
            elif plan is not None and incident.rule == OFFLINE:
                plan.offline = incident
            elif plan is not None:
                watch = next((w for w in plan.watches if w.rule.name == incident.rule), None)
                if watch is None:
                    plan = None
                else:
                    watch.restore(incident)
            if plan is None:
                orphans.append((incident, "rule or device removed"))
                continue
            self._open[incident.alert_id] = (plan, watch, incident)
        self._resolve_orphans(orphans)

    def _resolve_orphans(self, orphans: list[tuple[Incident, str]], durable: bool = True
                         ) -> None:
        """Incidents whose device or rule is gone from the configuration: resolve them now,
        and hand their events out with the next sweep. `durable`: at start, a store that
        cannot take them stops the start; at a reload, they are retried like any change."""
        if not orphans:
            return
        now_ms = int(time.time() * 1000)
        for incident, reason in orphans:
            log.warning("alert %s (%s on %s): %s; resolving it", incident.alert_id,
                        incident.rule, incident.device_id, reason)
            incident.state, incident.resolved_ms, incident.updated_ms = RESOLVED, now_ms, now_ms
            incident.message = f"{incident.message} [resolved: {reason}]"
        events = [incident.event(now_ms) for incident, _ in orphans]
        self._deferred.extend(events)
        if durable:
            self._store.save([incident for incident, _ in orphans], {}, self._deferred)
        else:
            self._save([incident for incident, _ in orphans], {}, events)
