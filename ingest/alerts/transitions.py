"""How an incident changes, pure: from a watch's new level, a device's status or a site
rule's verdict to the incident as it is now (opened, changed or resolved).

The engine keeps the books (which incidents are open) and makes each change durable;
these functions only say what the change is, with its words for the crews.
"""

from __future__ import annotations

import uuid

from ingest.alerts import wording
from ingest.alerts.events import FIRING, RESOLVED, Incident
from ingest.alerts.plan import DevicePlan
from ingest.alerts.rules import OFFLINE
from ingest.alerts.site_watch import SiteWatch, Verdict
from ingest.alerts.watch import Watch


def threshold_change(plan: DevicePlan, watch: Watch, level: int, value: object, ts_ms: int
                     ) -> Incident:
    """`watch` moves to `level` (0: resolved) on `value`: its incident, opened if new."""
    device, rule, old = plan.device, watch.rule, watch.level
    site = device.site
    value_out = value if isinstance(value, (bool, int, float, str)) else str(value)
    threshold = watch.threshold(old, level)
    watch.level = level
    incident = watch.incident
    if incident is None:
        lv = watch.levels[level - 1]
        incident = Incident(
            uuid.uuid4().hex, rule.name, lv.severity, FIRING, site.id, site.name, device.id,
            device.type, rule.field, value_out, threshold, ts_ms, ts_ms,
            wording.fired(rule, lv, value_out, site.name, device.id),
        )
        watch.incident = incident
        return incident
    incident.value, incident.threshold, incident.updated_ms = value_out, threshold, ts_ms
    if level == 0:
        incident.state, incident.resolved_ms = RESOLVED, ts_ms
        incident.message = wording.resolved(rule, watch.levels[old - 1], value_out, site.name,
                                            device.id)
        watch.incident = None
        return incident
    now = watch.levels[level - 1]
    incident.severity = now.severity
    incident.message = (
        wording.escalated(rule, now, value_out, site.name, device.id) if level > old
        else wording.deescalated(rule, watch.levels[old - 1], now, value_out, site.name,
                                 device.id)
    )
    return incident


def open_offline(plan: DevicePlan, field: str | None, value: float | bool,
                 threshold: float | None, ts_ms: int, message: str) -> Incident:
    device, site = plan.device, plan.device.site
    incident = Incident(
        uuid.uuid4().hex, OFFLINE, plan.offline_rule.severity, FIRING, site.id, site.name,
        device.id, device.type, field, value, threshold, ts_ms, ts_ms, message,
    )
    plan.offline = incident
    return incident


def close_offline(plan: DevicePlan, value: bool | None, ts_ms: int) -> Incident:
    incident = plan.offline
    assert incident is not None
    device = plan.device
    incident.state, incident.resolved_ms, incident.updated_ms = RESOLVED, ts_ms, ts_ms
    incident.value, incident.threshold = value, None
    incident.message = wording.back_online(device.type, device.site.name, device.id)
    plan.offline = None
    return incident


def site_change(watch: SiteWatch, verdict: Verdict) -> Incident | None:
    """A site rule's verdict: its incident opened or resolved, or None (no change)."""
    incident = watch.incident
    rule, owner, ts = watch.rule, watch.owner, verdict.ts_ms
    if verdict.firing and incident is None:
        incident = Incident(
            uuid.uuid4().hex, rule.name, rule.severity, FIRING, owner.site.id,
            owner.site.name, owner.id, owner.type, rule.field, verdict.value,
            verdict.threshold, ts, ts, verdict.message,
        )
        watch.incident = incident
        return incident
    if not verdict.firing and incident is not None:
        incident.state, incident.resolved_ms, incident.updated_ms = RESOLVED, ts, ts
        incident.value, incident.message = verdict.value, verdict.message
        watch.incident = None
        return incident
    return None
