"""Why a message was refused (SPEC section 3)."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    SCHEMA_INVALID = "schema_invalid"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_MISMATCH = "device_mismatch"
    TOPIC_INVALID = "topic_invalid"
    CLOCK_SKEW = "clock_skew"
    STORAGE_REJECTED = "storage_rejected"


class Rejected(Exception):
    """A message that will not be stored; `detail` tells an operator what was wrong."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
