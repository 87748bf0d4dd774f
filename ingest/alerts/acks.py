"""Acknowledgements (SPEC sections 6 and 8): who acked, and whether they may.

- `sanitation/v1/_ack/{crew}` with `{"alert_id": "..."}`: the crew is the topic's last
  segment (the broker lets each crew write only its own), never the payload's `by`;
  a crew may ack only the alerts of the sites in its districts (the crews file).
- `sanitation/v1/_ack` with `{"alert_id", "by"}` (v1): only where access control is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from devices.crews import Crews
from devices.sites import Registry, valid_id
from ingest.rejects import Rejected, RejectReason
from ingest.topics import ACK_TOPIC

ACK_PREFIX = f"{ACK_TOPIC}/"
ACK_FILTER = f"{ACK_TOPIC}/+"


def is_ack_topic(topic: str) -> bool:
    return topic == ACK_TOPIC or topic.startswith(ACK_PREFIX)


def ack_filters(access_enabled: bool) -> list[str]:
    """What to subscribe to: the v1 topic only where access control is off."""
    return [ACK_FILTER] if access_enabled else [ACK_TOPIC, ACK_FILTER]


@dataclass(frozen=True, slots=True)
class Ack:
    alert_id: str
    by: str
    #: Whether `by` is a crew named by the topic (checked against the crews file).
    from_crew: bool


def parse_ack(topic: str, payload: bytes) -> Ack:
    """The ack on `topic`, or `Rejected` (malformed_json, schema_invalid, topic_invalid)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Rejected(RejectReason.MALFORMED_JSON, "an ack must be JSON") from None
    crew = topic[len(ACK_PREFIX):] if topic.startswith(ACK_PREFIX) else None
    if crew is not None and not valid_id(crew):
        raise Rejected(RejectReason.TOPIC_INVALID,
                       f"topic {topic!r}: the crew segment must match [A-Za-z0-9][A-Za-z0-9_-]*")
    alert_id = body.get("alert_id") if isinstance(body, dict) else None
    if not isinstance(alert_id, str) or not 0 < len(alert_id) <= 64:
        shape = '{"alert_id": "<string>"}' if crew else '{"alert_id": "<string>", "by": "<string>"}'
        raise Rejected(RejectReason.SCHEMA_INVALID, f"an ack on {topic} is {shape}")
    if crew is not None:
        return Ack(alert_id, crew, from_crew=True)
    by = body.get("by") or "unknown"
    if not isinstance(by, str):
        raise Rejected(RejectReason.SCHEMA_INVALID,
                       'an ack on sanitation/v1/_ack is {"alert_id": "<string>", "by": "<string>"}')
    return Ack(alert_id, by.strip()[:64] or "unknown", from_crew=False)


def refusal(ack: Ack, site_id: str | None, registry: Registry, crews: Crews | None) -> str | None:
    """Why a crew's ack is ignored (for the log), or None when it may be applied.

    `site_id` is the alert's site (None: no such open alert, which the engine ignores)."""
    if not ack.from_crew or site_id is None:
        return None
    if crews is None or crews.get(ack.by) is None:
        return (f"ack of alert {ack.alert_id} on {ACK_PREFIX}{ack.by} ignored: no crew "
                f"{ack.by!r} in the crews file (configuration key crews)")
    site = registry.sites.get(site_id)
    district = site.district if site is not None else None
    if district is None or not crews.covers(ack.by, district):
        return (f"ack of alert {ack.alert_id} on {ACK_PREFIX}{ack.by} ignored: its site "
                f"{site_id} is in district {district!r}, outside crew {ack.by!r}'s districts")
    return None
