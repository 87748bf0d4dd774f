"""Checking a message: topic, size, registry, schema, ranges, clock (SPEC section 3).

Pure: takes the topic, the payload bytes and the receipt time, returns an `Accepted`
or raises `Rejected` with one of the reasons and a detail an operator can read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from devices.common import Reading
from devices.registry import DEVICE_TYPES
from devices.sites import Device, Registry
from devices.status import StatusMessage
from ingest.rejects import Rejected, RejectReason
from ingest.topics import MessageKind, parse_device_topic

MAX_PAYLOAD_BYTES = 16 * 1024

#: pydantic error types that mean "the right type, outside its accepted range".
_RANGE_ERRORS = frozenset(
    {
        "greater_than", "greater_than_equal", "less_than", "less_than_equal",
        "finite_number", "string_too_long", "literal_error", "enum", "out_of_range",
    }
)


#: A registered device's topic: its device, the message kind, the model's JSON validator.
Route = tuple[Device, MessageKind, Callable[[bytes], Any]]


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4 setattr calls
class Accepted:
    device: Device
    kind: MessageKind
    message: Reading | StatusMessage
    ts_ms: int


class Validator:
    """Turns (topic, payload, received_ms) into an `Accepted` or a `Rejected`."""

    def __init__(self, registry: Registry, max_future_ms: int = 300_000) -> None:
        self._registry = registry
        self._max_future_ms = max_future_ms
        # Topic -> (device, kind, the model's JSON validator), filled only for topics of
        # registered devices, so hostile random topics cannot grow it.
        self._routes: dict[str, Route] = {}

    def check(self, topic: str, payload: bytes, received_ms: int) -> Accepted:
        route = self._routes.get(topic) or self._route(topic)
        device, kind, validate_json = route
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Rejected(
                RejectReason.PAYLOAD_TOO_LARGE,
                f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES} are accepted",
            )
        try:
            # pydantic-core's validator itself: `model_validate_json` only wraps it, at a
            # tenth of the cost of a reading; bound once per topic (callgrind: the two
            # attribute lookups cost 1,000 instructions a message).
            message: Reading | StatusMessage = validate_json(payload)
        except ValidationError as exc:
            if _may_hold_non_json_numbers(payload):  # `NaN` alone is not JSON either
                _refuse_non_json_numbers(payload)
            raise _classify(exc) from None
        if _may_hold_non_json_numbers(payload):
            _refuse_non_json_numbers(payload)
        claimed = message.device_id
        if claimed is not None and claimed != device.id:
            raise Rejected(
                RejectReason.DEVICE_MISMATCH,
                f"payload names device_id {claimed!r:.80} but the topic is for {device.id!r}",
            )
        ts = message.ts
        ts_ms = ts if type(ts) is int else message.ts_ms(received_ms)
        if ts_ms - received_ms > self._max_future_ms:
            raise Rejected(
                RejectReason.CLOCK_SKEW,
                f"ts {ts_ms} is {(ts_ms - received_ms) / 1000:.0f} s ahead of the platform's "
                f"clock; at most {self._max_future_ms / 1000:.0f} s are accepted",
            )
        return Accepted(device, kind, message, ts_ms)

    def _route(self, topic: str) -> Route:
        parsed = parse_device_topic(topic)
        device = self._registry.devices.get(parsed.device_id)
        if device is None:
            raise Rejected(
                RejectReason.UNKNOWN_DEVICE,
                f"device {parsed.device_id!r} is not in the registry",
            )
        if device.site.id != parsed.site_id or device.type != parsed.device_type:
            raise Rejected(
                RejectReason.DEVICE_MISMATCH,
                f"device {device.id!r} is registered as a {device.type} at site "
                f"{device.site.id!r}, not a {parsed.device_type} at {parsed.site_id!r}",
            )
        model = DEVICE_TYPES[device.type] if parsed.kind == "telemetry" else StatusMessage
        route = (device, parsed.kind, model.__pydantic_validator__.validate_json)
        self._routes[topic] = route
        return route


def _may_hold_non_json_numbers(payload: bytes) -> bool:
    """`b"NaN" in payload`, without its cost: `bytes.__contains__` first tries the operand
    as an integer and raises and clears a TypeError (callgrind: 1,800 instructions a test,
    two tests per message); `find` searches at once."""
    return payload.find(b"NaN") != -1 or payload.find(b"Infinity") != -1


def _refuse_non_json_numbers(payload: bytes) -> None:
    """pydantic's parser takes NaN and Infinity, which JSON (RFC 8259) does not have."""
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Rejected(RejectReason.MALFORMED_JSON, f"not valid JSON: {exc}") from None


def _classify(exc: ValidationError) -> Rejected:
    errors = exc.errors(include_url=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return Rejected(
            RejectReason.MALFORMED_JSON, f"not valid UTF-8 JSON: {errors[0]['msg']}"
        )
    by_field: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        key = str(error["loc"][0]) if error["loc"] else "(payload)"
        by_field.setdefault(key, []).append(dict(error))
    details, all_range = [], True
    for key, field_errors in by_field.items():
        ranged = [e for e in field_errors if _is_range_error(e)]
        all_range &= bool(ranged)
        details.append(_describe(key, (ranged or field_errors)[0]))
    reason = RejectReason.OUT_OF_RANGE if all_range else RejectReason.SCHEMA_INVALID
    return Rejected(reason, "; ".join(details))


def _is_range_error(error: dict[str, Any]) -> bool:
    if error["type"] == "literal_error":  # a string outside its set; 5 or true is a wrong type
        return isinstance(error["input"], str)
    return error["type"] in _RANGE_ERRORS


def _describe(key: str, error: dict[str, Any]) -> str:
    if error["type"] in ("model_type", "dict_type"):
        return "payload must be a JSON object"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {error['msg']} (got {error['input']!r:.60})"
