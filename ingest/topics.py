"""The topic tree of SPEC section 2: parsing device topics, naming platform topics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from devices.registry import DEVICE_TYPES
from devices.sites import valid_id
from ingest.rejects import Rejected, RejectReason

ROOT = "sanitation/v1"
ACK_TOPIC = f"{ROOT}/_ack"
TELEMETRY_FILTER = f"{ROOT}/+/+/+/telemetry"
STATUS_FILTER = f"{ROOT}/+/+/+/status"

MessageKind = Literal["telemetry", "status"]


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    site_id: str
    device_type: str
    device_id: str
    kind: MessageKind


def parse_device_topic(topic: str) -> DeviceTopic:
    """`sanitation/v1/{site}/{type}/{device}/{telemetry|status}`, or `Rejected(topic_invalid)`."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise Rejected(
            RejectReason.TOPIC_INVALID,
            f"topic {topic!r} is not {ROOT}/{{site_id}}/{{device_type}}/{{device_id}}/"
            "telemetry|status",
        )
    _, _, site_id, device_type, device_id, kind = parts
    for name, value in (("site_id", site_id), ("device_id", device_id)):
        if not valid_id(value):
            raise Rejected(
                RejectReason.TOPIC_INVALID,
                f"topic {topic!r}: {name} {value!r} must match [A-Za-z0-9][A-Za-z0-9_-]{{0,63}}",
            )
    if device_type not in DEVICE_TYPES:
        raise Rejected(
            RejectReason.TOPIC_INVALID,
            f"topic {topic!r}: unknown device_type {device_type!r}; "
            f"one of {', '.join(DEVICE_TYPES)}",
        )
    if kind not in ("telemetry", "status"):
        raise Rejected(
            RejectReason.TOPIC_INVALID, f"topic {topic!r}: last segment must be telemetry or status"
        )
    return DeviceTopic(site_id, device_type, device_id, kind)  # type: ignore[arg-type]


def dlq_topic(reason: str) -> str:
    return f"{ROOT}/_dlq/{reason}"


def alert_topic(site_id: str, device_id: str, rule: str) -> str:
    return f"{ROOT}/_alerts/{site_id}/{device_id}/{rule}"


def device_topic(site_id: str, device_type: str, device_id: str, kind: MessageKind) -> str:
    return f"{ROOT}/{site_id}/{device_type}/{device_id}/{kind}"
