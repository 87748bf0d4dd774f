"""What Sanitel sends to Prometheus Alertmanager (SPEC section 11), as plain values.

An incident is one Alertmanager alert whose labels stay the same while it lasts (the state
is not a label: an acknowledgement must not make it a new alert); only a change of
severity moves it to other labels, and then the alert it left is resolved. The silence of
an acknowledgement matches the incident's rule, site and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from devices.sites import Registry
from ingest.alerts.events import AlertEvent, Incident, rfc3339

#: The label of an incident's site that a registry no longer knows (a removed device).
UNKNOWN = "unknown"
#: The dashboard link shows from this long before the alert's start.
DASHBOARD_BEFORE_MS = 3_600_000
DASHBOARD_AFTER_MS = 1_800_000


@dataclass(frozen=True, slots=True)
class DashboardLinks:
    """Grafana's base URL and the dashboard uid per site kind (`grafana.*` settings)."""

    base_url: str | None
    site_dashboards: dict[str, str]

    def link(self, site_id: str, district: str, site_kind: str, started_ms: int,
             resolved_ms: int | None) -> str | None:
        uid = self.site_dashboards.get(site_kind)
        if not self.base_url or not uid:
            return None
        query = urlencode({
            "var-district": district, "var-site": site_id,
            "from": started_ms - DASHBOARD_BEFORE_MS,
            "to": "now" if resolved_ms is None else resolved_ms + DASHBOARD_AFTER_MS,
        })
        return f"{self.base_url.rstrip('/')}/d/{uid}?{query}"


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """An incident as Alertmanager sees it: from the engine's active list or an event."""

    alert_id: str
    rule: str
    severity: str
    site_id: str
    device_id: str
    device_type: str
    value: object
    threshold: object
    message: str
    started_ms: int
    resolved_ms: int | None
    acknowledged_by: str | None

    @classmethod
    def of_incident(cls, incident: Incident) -> AlertSnapshot:
        return cls(incident.alert_id, incident.rule, incident.severity, incident.site_id,
                   incident.device_id, incident.device_type, incident.value,
                   incident.threshold, incident.message, incident.started_ms,
                   incident.resolved_ms, incident.acknowledged_by)

    @classmethod
    def of_event(cls, event: AlertEvent, severity: str | None = None) -> AlertSnapshot:
        """The event's incident; with `severity`, under that severity (the one it left)."""
        resolved = event.ts_ms if event.state == "resolved" or severity else None
        return cls(event.alert_id, event.rule, severity or event.severity, event.site_id,
                   event.device_id, event.device_type, event.value, event.threshold,
                   event.message, ms_of(event.started_at), resolved, event.acknowledged_by)

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes it one Alertmanager alert (with the severity): rule, site, device."""
        return self.rule, self.site_id, self.device_id


def ms_of(text: str) -> int:
    """'2026-11-24T08:00:00Z' (RFC 3339, as events and Alertmanager write it) -> epoch ms."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def show(value: object) -> str:
    """An annotation value: numbers without a useless `.0`, booleans in lower case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def labels(alert: AlertSnapshot, registry: Registry) -> dict[str, str]:
    device = registry.devices.get(alert.device_id)
    site = device.site if device is not None else registry.sites.get(alert.site_id)
    return {
        "alertname": alert.rule, "severity": alert.severity, "site_id": alert.site_id,
        "device_id": alert.device_id, "device_type": alert.device_type,
        "district": site.district if site is not None else UNKNOWN,
        "site_kind": site.kind if site is not None else UNKNOWN,
    }


def postable(alert: AlertSnapshot, registry: Registry, links: DashboardLinks,
             now_ms: int, active_for_ms: int) -> dict[str, Any]:
    """One element of the POST /api/v2/alerts body. An active alert ends `active_for_ms`
    ahead unless sent again (so a Sanitel that is gone leaves nothing firing for ever);
    a resolved one ends when it resolved."""
    tags = labels(alert, registry)
    annotations = {
        "summary": alert.message, "value": show(alert.value),
        "threshold": show(alert.threshold), "alert_id": alert.alert_id,
    }
    body: dict[str, Any] = {"labels": tags, "annotations": annotations,
                            "startsAt": rfc3339(alert.started_ms)}
    link = links.link(alert.site_id, tags["district"], tags["site_kind"], alert.started_ms,
                      alert.resolved_ms)
    if link:
        annotations["dashboard"] = link
        body["generatorURL"] = link
    ends = alert.resolved_ms if alert.resolved_ms is not None else now_ms + active_for_ms
    body["endsAt"] = rfc3339(max(ends, alert.started_ms))
    return body


def silence(alert: AlertSnapshot, starts_ms: int, ends_ms: int,
            silence_id: str | None = None) -> dict[str, Any]:
    """The POST /api/v2/silences body for an acknowledged incident (with `silence_id`: an
    update of that silence)."""
    crew = alert.acknowledged_by or UNKNOWN
    body: dict[str, Any] = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in (("alertname", alert.rule), ("site_id", alert.site_id),
                                ("device_id", alert.device_id))
        ],
        "startsAt": rfc3339(starts_ms), "endsAt": rfc3339(ends_ms), "createdBy": crew,
        "comment": f"Sanitel alert {alert.alert_id} acknowledged by {crew}; ends when it "
                   "resolves",
    }
    if silence_id:
        body["id"] = silence_id
    return body
