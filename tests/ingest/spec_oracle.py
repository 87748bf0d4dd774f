"""What SPEC sections 2 and 3 say should become of a message: stored, or rejected with
which reason. Written from the SPEC's tables, sharing no code with `ingest.validation` or
the device models, so that a test comparing the pipeline with it can catch a validator
that is wrong (an oracle built from the code under test would agree with any bug).

Where several things are wrong with one message the SPEC names no order; this takes the
order in which an operator reads a message: the topic, the device it names, the size,
the JSON, the keys (a wrong type or a missing key before a value out of range), the
payload's device_id, the clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_BYTES = 16 * 1024
MAX_FUTURE_MS = 5 * 60 * 1000
#: The SPEC names no latest `ts`; InfluxDB stores none after 2262-04-11T23:47:16.854Z
#: (int64 ns), so a later one is a value out of range rather than a clock running ahead.
MAX_TS_MS = (2**63 - 1) // 1_000_000
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: The SPEC says only "string <= 32 chars"; control characters cannot be written to
#: InfluxDB's line protocol as they are, and the device contract (docs/schemas/*.json)
#: refuses them as a wrong kind of string.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Key:
    kind: str  # int, number, bool, string, enum
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    max_len: int | None = None
    required: bool = False


def num(low: float, high: float, required: bool = False) -> Key:
    return Key("number", low, high, required=required)


def integer(low: float, high: float, required: bool = False) -> Key:
    return Key("int", low, high, required=required)


COMMON = {"seq": integer(0, float("inf")), "battery_pct": num(0, 100),
          "rssi_dbm": num(-150, 0)}
TYPES: dict[str, dict[str, Key]] = {
    "people_counter": {"entries": integer(0, 10_000, True), "exits": integer(0, 10_000),
                       "occupancy": integer(0, 1000)},
    "odor": {"nh3_ppm": num(0, 100, True), "h2s_ppm": num(0, 100), "temp_c": num(-40, 85),
             "rh_pct": num(0, 100)},
    "station_terminal": {"fill_pct": num(0, 100, True), "weight_kg": num(0, 100_000),
                         "compactor": Key("enum", choices=("idle", "running", "fault")),
                         "door_open": Key("bool"), "fault_code": Key("string", max_len=32)},
    "sprayer": {"liquid_pct": num(0, 100, True), "sprays": integer(0, 100_000),
                "state": Key("enum", choices=("ok", "low", "empty", "fault"))},
    "toilet_terminal": {"stalls_free": integer(0, 500, True), "stalls_total": integer(1, 500),
                        "water_m3": num(0, 10_000_000), "power_kwh": num(0, 100_000_000),
                        "paper_pct": num(0, 100), "soap_pct": num(0, 100),
                        "cleaned_by": Key("string", max_len=32),
                        "rating_good": integer(0, 10_000), "rating_ok": integer(0, 10_000),
                        "rating_bad": integer(0, 10_000)},
}
STATUS = {"online": Key("bool", required=True)}


def outcome(topic: str, payload: bytes, devices: dict[str, tuple[str, str]],
            received_ms: int) -> str | None:
    """None when the message is to be stored, else the reason it is rejected.
    `devices`: device_id -> (site_id, device_type), the registry."""
    parts = topic.split("/")
    if (len(parts) != 6 or parts[:2] != ["sanitation", "v1"] or not ID.fullmatch(parts[2])
            or not ID.fullmatch(parts[4]) or parts[3] not in TYPES
            or parts[5] not in ("telemetry", "status")):
        return "topic_invalid"
    site, dtype, device, kind = parts[2:]
    if device not in devices:
        return "unknown_device"
    if devices[device] != (site, dtype):
        return "device_mismatch"
    if len(payload) > MAX_BYTES:
        return "payload_too_large"
    try:
        body = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError):
        return "malformed_json"
    if not isinstance(body, dict):
        return "schema_invalid"
    keys = {**COMMON, **TYPES[dtype]} if kind == "telemetry" else STATUS
    verdicts = [_check(key, body.get(name)) for name, key in keys.items()]
    verdicts += [_check_ts(body.get("ts")), _check_device_id(body.get("device_id"))]
    if "schema_invalid" in verdicts:
        return "schema_invalid"
    if "out_of_range" in verdicts or _stalls_over(dtype, body):
        return "out_of_range"
    if body.get("device_id") is not None and body["device_id"] != device:
        return "device_mismatch"
    ts = _ts_ms(body.get("ts"), received_ms)
    return "clock_skew" if ts - received_ms > MAX_FUTURE_MS else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check(key: Key, value: Any) -> str | None:
    if value is None:
        return "schema_invalid" if key.required else None
    if key.kind in ("int", "number"):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if not is_int and (key.kind == "int" or not isinstance(value, float)):
            return "schema_invalid"
        assert key.low is not None and key.high is not None
        return None if key.low <= value <= key.high else "out_of_range"
    if key.kind == "bool":
        return None if isinstance(value, bool) else "schema_invalid"
    if not isinstance(value, str):
        return "schema_invalid"
    if key.kind == "enum":
        return None if value in key.choices else "out_of_range"
    if CONTROL.search(value):
        return "schema_invalid"
    return None if key.max_len is None or len(value) <= key.max_len else "out_of_range"


def _check_ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return None if 0 <= value <= MAX_TS_MS else "out_of_range"
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "schema_invalid"
        return None if moment.tzinfo is not None else "schema_invalid"
    return "schema_invalid"


def _check_device_id(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "schema_invalid"


def _stalls_over(dtype: str, body: dict[str, Any]) -> bool:
    free, total = body.get("stalls_free"), body.get("stalls_total")
    return dtype == "toilet_terminal" and isinstance(free, int) and isinstance(total, int) \
        and free > total


def _ts_ms(value: Any, received_ms: int) -> int:
    if value is None:
        return received_ms
    if isinstance(value, int):
        return value
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
