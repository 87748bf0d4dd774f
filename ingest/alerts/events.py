"""Alert incidents and the events they publish (SPEC section 6): JSON, topic, line protocol."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from devices.sites import escape_tag
from ingest.topics import alert_topic

ALERTS_MEASUREMENT = "alerts"
FIRING, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"

Value = float | str | bool | None
Threshold = float | str | None


def rfc3339(ms: int) -> str:
    """Epoch ms -> '2026-11-24T08:00:00Z' (ms shown only when not whole seconds)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


@dataclass(slots=True)
class Incident:
    """One incident of one rule on one device, from firing to resolved."""

    alert_id: str
    rule: str
    severity: str
    state: str
    site_id: str
    site_name: str
    device_id: str
    device_type: str
    field: str | None
    value: Value
    threshold: Threshold
    started_ms: int
    updated_ms: int
    message: str
    acknowledged_by: str | None = None
    resolved_ms: int | None = None
    #: Events this incident has given so far: its next event is `{alert_id}-{events + 1}`.
    events: int = 0

    def event(self, ts_ms: int, previous_severity: str | None = None) -> AlertEvent:
        """The incident's next event, as it stands now (counted: each has its own id)."""
        self.events += 1
        return AlertEvent(
            self.alert_id, self.rule, self.severity, self.state, self.site_id, self.device_id,
            self.device_type, self.field, self.value, self.threshold, rfc3339(self.started_ms),
            None if self.resolved_ms is None else rfc3339(self.resolved_ms), self.message,
            self.acknowledged_by, ts_ms, f"{self.alert_id}-{self.events}", previous_severity,
        )


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One change of state of an incident, as published, stored and POSTed."""

    alert_id: str
    rule: str
    severity: str
    state: str  # firing | acknowledged | resolved
    site_id: str
    device_id: str
    device_type: str
    field: str | None
    value: Value
    threshold: Threshold
    started_at: str
    resolved_at: str | None
    message: str
    acknowledged_by: str | None
    ts_ms: int
    #: Unique per event, `{alert_id}-{n}` with n rising per incident: consumers drop repeats
    #: (an event is published again after a restart until the pipeline confirmed it).
    event_id: str
    #: On a change of severity: the severity the incident left. `line()` closes that series.
    previous_severity: str | None = None

    def topic(self) -> str:
        return alert_topic(self.site_id, self.device_id, self.rule)

    def payload(self) -> bytes:
        return orjson.dumps({
            "alert_id": self.alert_id, "rule": self.rule, "severity": self.severity,
            "state": self.state, "site_id": self.site_id, "device_id": self.device_id,
            "device_type": self.device_type, "field": self.field, "value": self.value,
            "threshold": self.threshold, "started_at": self.started_at,
            "resolved_at": self.resolved_at, "message": self.message,
            "acknowledged_by": self.acknowledged_by, "event_id": self.event_id,
        })

    def line(self) -> str:
        """Line protocol for `alerts`, ms precision.

        Severity is a tag, so a change of severity moves the incident to another series;
        then this is two lines: `resolved` for the series it left, then the new state.
        """
        lines = _line(self, self.severity, self.state)
        if self.previous_severity and self.previous_severity != self.severity:
            return _line(self, self.previous_severity, RESOLVED) + "\n" + lines
        return lines


def _line(event: AlertEvent, severity: str, state: str) -> str:
    tags = (f"device_id={escape_tag(event.device_id)},rule={escape_tag(event.rule)},"
            f"severity={escape_tag(severity)},site_id={escape_tag(event.site_id)}")
    fields = [f'state="{state}"']
    _add(fields, "value", event.value)
    _add(fields, "threshold", event.threshold)
    fields.append(f'alert_id="{_quote(event.alert_id)}"')
    fields.append(f'message="{_quote(event.message)}"')
    if event.acknowledged_by is not None:  # SPEC 5 (v1.1): the crew that acknowledged
        fields.append(f'acknowledged_by="{_quote(event.acknowledged_by)}"')
    return f"{ALERTS_MEASUREMENT},{tags} {','.join(fields)} {event.ts_ms}"


def _add(fields: list[str], key: str, value: Value) -> None:
    # A field keeps one type per measurement: numbers go to `value` (float), anything else
    # to `value_text`, so a string never lands in a float field and gets the write refused.
    if value is None:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            fields.append(f"{key}={float(value)!r}")
        return
    text = ("true" if value else "false") if isinstance(value, bool) else value
    fields.append(f'{key}_text="{_quote(text)}"')


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def parse_ack(payload: bytes) -> tuple[str, str] | None:
    """`{"alert_id": "...", "by": "..."}` from `sanitation/v1/_ack` -> (alert_id, by), or None."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    alert_id, by = data.get("alert_id"), data.get("by", "unknown")
    if not isinstance(alert_id, str) or not 0 < len(alert_id) <= 64:
        return None
    if not isinstance(by, str) or not by.strip():
        by = "unknown"
    return alert_id, by.strip()[:64]
