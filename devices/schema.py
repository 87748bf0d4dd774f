"""The payloads of SPEC section 3 as JSON Schema (2020-12), generated from the device models.

What a device vendor builds firmware against: `sanitel devices schema [TYPE]` prints these,
`docs/schemas/` and `docs/asyncapi.yaml` hold them, and a test keeps the committed copies
equal to what the models generate. Cross-field rules that JSON Schema cannot say (a
`ts` at most 5 minutes ahead, `device_id` equal to the topic's) are in the description.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

from devices.registry import DEVICE_TYPES
from devices.status import StatusMessage

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://sanitel.example/schemas/v1"
#: SPEC section 3: a payload larger than this is `payload_too_large`.
MAX_PAYLOAD_BYTES = 16 * 1024

_COMMON = (
    "UTF-8 JSON object of at most 16 KiB. Keys not listed here are ignored (firmware may add "
    "keys). `ts` is epoch milliseconds or RFC 3339 with its offset, at most 5 minutes in the "
    "future; when absent the time of receipt is used. `device_id`, when present, must equal "
    "the topic's device_id. Numbers are JSON numbers (never strings); integer fields take "
    "integers only."
)


class UnknownDeviceType(KeyError):
    """A device type that the registry does not know."""

    def __init__(self, device_type: str) -> None:
        super().__init__(device_type)
        self.device_type = device_type

    def __str__(self) -> str:
        return f"unknown device type {self.device_type!r}; one of {', '.join(DEVICE_TYPES)}"


def _schema(model: type[BaseModel], schema_id: str, title: str, description: str) -> dict[str, Any]:
    body = model.model_json_schema(mode="validation")
    head: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"{ID_BASE}/{schema_id}.json",
        "title": title,
        "description": description,
    }
    body.pop("title", None)
    body["additionalProperties"] = True
    return head | body


def telemetry_schema(device_type: str) -> dict[str, Any]:
    """The JSON Schema of a `telemetry` payload of `device_type`."""
    model = DEVICE_TYPES.get(device_type)
    if model is None:
        raise UnknownDeviceType(device_type)
    module_doc = sys.modules[model.__module__].__doc__ or device_type
    doc = module_doc.strip().splitlines()[0]
    description = f"{doc} Telemetry of a `{device_type}`, stored in `{model.measurement}`. "
    return _schema(model, f"{device_type}.telemetry", device_type, description + _COMMON)


def status_schema() -> dict[str, Any]:
    """The `status` payload (retained; `{"online": false}` is the device's last will)."""
    return _schema(
        StatusMessage, "status", "status",
        "Device status, published retained; `{\"online\": false}` is the device's MQTT "
        "last will.",
    )


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every payload schema by file stem: `<device_type>.telemetry` and `status`."""
    schemas = {f"{name}.telemetry": telemetry_schema(name) for name in DEVICE_TYPES}
    schemas["status"] = status_schema()
    return schemas
