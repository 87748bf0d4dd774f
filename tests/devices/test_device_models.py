"""The per-type reading models (SPEC section 3): every key, its type and its accepted range.

Payloads go through `model_validate_json`, as the pipeline does: JSON typing is strict
("5" is not a number, true is not a number, 5.0 is not an int), ranges are inclusive,
unknown keys are ignored.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from devices.common import INT64_MAX, Reading, timestamp_ms
from devices.odor import OdorReading
from devices.people_counter import PeopleCounterReading
from devices.registry import DEVICE_TYPES, model_for
from devices.sprayer import SprayerReading
from devices.station_terminal import StationTerminalReading
from devices.status import StatusMessage
from devices.toilet_terminal import ToiletTerminalReading

#: The smallest valid payload of each type: its required key at a valid value.
MINIMAL: dict[type[Reading], dict[str, Any]] = {
    PeopleCounterReading: {"entries": 3},
    OdorReading: {"nh3_ppm": 1.5},
    StationTerminalReading: {"fill_pct": 40.0},
    SprayerReading: {"liquid_pct": 80.0},
    ToiletTerminalReading: {"stalls_free": 0},
}

#: (model, key, kind, lowest accepted, highest accepted) for every bounded key of SPEC 3.
RANGES: list[tuple[type[Reading], str, str, float, float]] = [
    (PeopleCounterReading, "entries", "int", 0, 10_000),
    (PeopleCounterReading, "exits", "int", 0, 10_000),
    (PeopleCounterReading, "occupancy", "int", 0, 1_000),
    (OdorReading, "nh3_ppm", "number", 0, 100),
    (OdorReading, "h2s_ppm", "number", 0, 100),
    (OdorReading, "temp_c", "number", -40, 85),
    (OdorReading, "rh_pct", "number", 0, 100),
    (StationTerminalReading, "fill_pct", "number", 0, 100),
    (StationTerminalReading, "weight_kg", "number", 0, 100_000),
    (SprayerReading, "liquid_pct", "number", 0, 100),
    (SprayerReading, "sprays", "int", 0, 100_000),
    (ToiletTerminalReading, "stalls_free", "int", 0, 500),
    (ToiletTerminalReading, "stalls_total", "int", 1, 500),
    (ToiletTerminalReading, "water_m3", "number", 0, 10_000_000),
    (ToiletTerminalReading, "power_kwh", "number", 0, 100_000_000),
    (ToiletTerminalReading, "paper_pct", "number", 0, 100),
    (ToiletTerminalReading, "soap_pct", "number", 0, 100),
    (ToiletTerminalReading, "rating_good", "int", 0, 10_000),
    (ToiletTerminalReading, "rating_ok", "int", 0, 10_000),
    (ToiletTerminalReading, "rating_bad", "int", 0, 10_000),
    # Common keys, checked on every type.
    *[(model, "battery_pct", "number", 0, 100) for model in MINIMAL],
    *[(model, "rssi_dbm", "number", -150, 0) for model in MINIMAL],
    *[(model, "seq", "int", 0, INT64_MAX) for model in MINIMAL],
]

ENUMS: list[tuple[type[Reading], str, tuple[str, ...]]] = [
    (StationTerminalReading, "compactor", ("idle", "running", "fault")),
    (SprayerReading, "state", ("ok", "low", "empty", "fault")),
]

REQUIRED = {model: next(iter(payload)) for model, payload in MINIMAL.items()}


def _id(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)


def parse(model: type[BaseModel], payload: dict[str, Any]) -> Any:
    return model.model_validate_json(json.dumps(payload))


def failures(model: type[BaseModel], payload: dict[str, Any] | bytes) -> list[tuple[str, str]]:
    """(first loc element, error type) of each error; fails the test if it validates."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(raw)
    return [(str(e["loc"][0]) if e["loc"] else "", e["type"]) for e in info.value.errors()]


def with_key(model: type[Reading], key: str, value: Any) -> dict[str, Any]:
    return {**MINIMAL[model], key: value}


# --- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "key", "kind", "low", "high"), RANGES, ids=_id)
def test_both_range_edges_are_accepted(
    model: type[Reading], key: str, kind: str, low: float, high: float
) -> None:
    for edge in (low, high):
        value = int(edge) if kind == "int" else float(edge)
        reading = parse(model, with_key(model, key, value))
        assert getattr(reading, key) == edge
        assert type(getattr(reading, key)) is (int if kind == "int" else float)


@pytest.mark.parametrize(("model", "key", "kind", "low", "high"), RANGES, ids=_id)
def test_just_outside_the_range_is_rejected_on_that_key(
    model: type[Reading], key: str, kind: str, low: float, high: float
) -> None:
    if kind == "int":
        outside: list[float] = [int(low) - 1, int(high) + 1]
    else:
        outside = [math.nextafter(low, -math.inf), math.nextafter(high, math.inf),
                   low - 0.5, high + 0.5]
    for value in outside:
        errors = failures(model, with_key(model, key, value))
        assert errors and all(loc == key for loc, _ in errors), (value, errors)
        assert {kind for _, kind in errors} <= {"greater_than_equal", "less_than_equal"}


@pytest.mark.parametrize(("model", "key", "kind", "low", "high"), RANGES, ids=_id)
def test_numbers_are_strictly_typed(
    model: type[Reading], key: str, kind: str, low: float, high: float
) -> None:
    wrong: list[Any] = [str(int(low)), True, False, [int(low)], {"v": int(low)}]
    if kind == "int":
        wrong.append(float(low))  # 5.0 is not an int
    for value in wrong:
        errors = failures(model, with_key(model, key, value))
        assert [loc for loc, _ in errors] == [key], (value, errors)
        assert not {t for _, t in errors} & {"greater_than_equal", "less_than_equal"}


@pytest.mark.parametrize(("model", "key", "kind", "low", "high"), RANGES, ids=_id)
def test_a_number_key_given_an_integer_holds_a_float(
    model: type[Reading], key: str, kind: str, low: float, high: float
) -> None:
    reading = parse(model, with_key(model, key, int(high)))
    assert type(getattr(reading, key)) is (int if kind == "int" else float)


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"], ids=lambda v: v.decode()
)
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    errors = failures(OdorReading, b'{"nh3_ppm": ' + literal + b"}")
    assert errors[0][0] == "nh3_ppm"


@pytest.mark.parametrize(("model", "key", "allowed"), ENUMS, ids=_id)
def test_enumerations_accept_exactly_their_values(
    model: type[Reading], key: str, allowed: tuple[str, ...]
) -> None:
    for value in allowed:
        assert getattr(parse(model, with_key(model, key, value)), key) == value
    wrong: list[Any] = [allowed[0].upper(), allowed[0] + " ", "", "unknown", 1, True]
    for bad in wrong:
        errors = failures(model, with_key(model, key, bad))
        assert [loc for loc, _ in errors] == [key], bad


def test_door_open_is_a_strict_bool() -> None:
    assert parse(StationTerminalReading, with_key(StationTerminalReading, "door_open", True))\
        .door_open is True
    assert parse(StationTerminalReading, with_key(StationTerminalReading, "door_open", False))\
        .door_open is False
    for value in (1, 0, "true", "false", "yes", [True]):
        errors = failures(StationTerminalReading,
                          with_key(StationTerminalReading, "door_open", value))
        assert [loc for loc, _ in errors] == ["door_open"], value


def test_fault_code_is_a_string_of_at_most_32_characters() -> None:
    st = StationTerminalReading
    assert parse(st, with_key(st, "fault_code", "")).fault_code == ""
    assert parse(st, with_key(st, "fault_code", "E" * 32)).fault_code == "E" * 32
    assert parse(st, with_key(st, "fault_code", 'a "quoted", = \\ code')).fault_code \
        == 'a "quoted", = \\ code'
    assert failures(st, with_key(st, "fault_code", "E" * 33)) == [
        ("fault_code", "string_too_long")
    ]
    for value in (5, True, ["E1"]):
        assert [loc for loc, _ in failures(st, with_key(st, "fault_code", value))] == [
            "fault_code"
        ]


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x1b", "\x7f"], ids=repr)
def test_fault_code_refuses_control_characters(char: str) -> None:
    st = StationTerminalReading
    errors = failures(st, with_key(st, "fault_code", f"E1{char}"))
    assert [loc for loc, _ in errors] == ["fault_code"]


def test_stalls_free_may_not_exceed_stalls_total_and_that_is_out_of_range() -> None:
    tt = ToiletTerminalReading
    assert parse(tt, {"stalls_free": 5, "stalls_total": 5}).stalls_free == 5
    assert parse(tt, {"stalls_free": 0, "stalls_total": 1}).stalls_total == 1
    assert parse(tt, {"stalls_free": 500}).stalls_total is None  # no total: nothing to compare
    assert failures(tt, {"stalls_free": 6, "stalls_total": 5}) == [("stalls_total", "out_of_range")]
    assert failures(tt, {"stalls_free": 500, "stalls_total": 1}) == [
        ("stalls_total", "out_of_range")
    ]
    # A total outside its own range is that range's error, not the comparison's.
    assert failures(tt, {"stalls_free": 3, "stalls_total": 0}) == [
        ("stalls_total", "greater_than_equal")
    ]


def test_cleaned_by_is_a_string_of_at_most_32_printable_characters() -> None:
    tt = ToiletTerminalReading
    assert parse(tt, with_key(tt, "cleaned_by", "")).cleaned_by == ""
    assert parse(tt, with_key(tt, "cleaned_by", "王" * 32)).cleaned_by == "王" * 32
    assert parse(tt, with_key(tt, "cleaned_by", 'Li "Mei", = \\ 2')).cleaned_by \
        == 'Li "Mei", = \\ 2'
    assert failures(tt, with_key(tt, "cleaned_by", "x" * 33)) == [
        ("cleaned_by", "string_too_long")
    ]
    for value in (5, True, ["Li"], {"name": "Li"}):
        assert [loc for loc, _ in failures(tt, with_key(tt, "cleaned_by", value))] == [
            "cleaned_by"
        ]
    for char in ("\n", "\r", "\t", "\x00", "\x1b", "\x7f"):
        errors = failures(tt, with_key(tt, "cleaned_by", f"Li{char}"))
        assert [loc for loc, _ in errors] == ["cleaned_by"], repr(char)


def test_device_id_is_a_string() -> None:
    for model in MINIMAL:
        assert parse(model, with_key(model, "device_id", "WC-1-X")).device_id == "WC-1-X"
        assert [loc for loc, _ in failures(model, with_key(model, "device_id", 7))] == [
            "device_id"
        ]


# --- required, optional, unknown keys ---------------------------------------------------


@pytest.mark.parametrize("model", list(MINIMAL), ids=_id)
def test_the_required_key_must_be_present_and_not_null(model: type[Reading]) -> None:
    key = REQUIRED[model]
    assert failures(model, {}) == [(key, "missing")]
    assert failures(model, {"seq": 1, "battery_pct": 50}) == [(key, "missing")]
    assert [loc for loc, _ in failures(model, {key: None})] == [key]


@pytest.mark.parametrize("model", list(MINIMAL), ids=_id)
def test_every_other_key_is_optional_and_null_means_absent(model: type[Reading]) -> None:
    reading = parse(model, MINIMAL[model])
    optional = [name for name in model.model_fields if name != REQUIRED[model]]
    assert optional
    assert all(getattr(reading, name) is None for name in optional)
    nulls = parse(model, {**MINIMAL[model], **dict.fromkeys(optional)})
    assert all(getattr(nulls, name) is None for name in optional)


@pytest.mark.parametrize("model", list(MINIMAL), ids=_id)
def test_unknown_keys_are_ignored(model: type[Reading]) -> None:
    payload = {
        **MINIMAL[model], "fw": "1.2.3", "uptime_s": 99, "extra": {"nested": [1, "x"]},
        "NH3_PPM": "not the key", "entries ": -1,
    }
    reading = parse(model, payload)
    assert reading == parse(model, MINIMAL[model])
    assert "fw" not in reading.model_dump()


@pytest.mark.parametrize(
    "payload", [b"[]", b"null", b"3", b'"text"', b"true"], ids=lambda v: v.decode()
)
def test_a_payload_must_be_an_object(payload: bytes) -> None:
    errors = failures(OdorReading, payload)
    assert errors == [("", "model_type")]


def test_readings_are_frozen() -> None:
    reading = parse(OdorReading, {"nh3_ppm": 1.0})
    with pytest.raises(ValidationError):
        reading.nh3_ppm = 2.0


# --- ts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (0, 0),
        (1_795_507_200_000, 1_795_507_200_000),
        (INT64_MAX // 1_000_000, INT64_MAX // 1_000_000),
        ("2026-11-24T08:00:00Z", 1_795_507_200_000),
        ("2026-11-24T08:00:00.001Z", 1_795_507_200_001),
        ("2026-11-24T08:00:00.123+00:00", 1_795_507_200_123),
        ("2026-11-24T16:00:00+08:00", 1_795_507_200_000),
        ("2026-11-24T02:30:00-05:30", 1_795_507_200_000),
        ("2026-11-24t08:00:00z", 1_795_507_200_000),
    ],
    ids=repr,
)
def test_ts_is_epoch_ms_or_rfc3339_with_offset(ts: Any, expected_ms: int) -> None:
    reading = parse(OdorReading, {"nh3_ppm": 1, "ts": ts})
    assert reading.ts_ms(default_ms=42) == expected_ms


@pytest.mark.parametrize(
    "ts",
    [
        -1,  # before the epoch
        INT64_MAX // 1_000_000 + 1,  # beyond what InfluxDB can store
        1_795_507_200_000.0,  # a float is not epoch milliseconds
        1.7955072e12,
        True,
        "2026-11-24T08:00:00",  # RFC 3339 requires the offset
        "2026-11-24",
        "yesterday",
        "",
        [1_795_507_200_000],
    ],
    ids=repr,
)
def test_ts_refuses_other_shapes(ts: Any) -> None:
    errors = failures(OdorReading, {"nh3_ppm": 1, "ts": ts})
    assert {loc for loc, _ in errors} == {"ts"}


@pytest.mark.parametrize("ts", ["1795507200000", "1795507200"])
def test_ts_as_a_string_of_digits_is_refused(ts: str) -> None:
    errors = failures(OdorReading, {"nh3_ppm": 1, "ts": ts})
    assert {loc for loc, _ in errors} == {"ts"}


def test_ts_ms_falls_back_to_the_receipt_time() -> None:
    for model, payload in MINIMAL.items():
        assert parse(model, payload).ts_ms(default_ms=1234) == 1234
    assert timestamp_ms(None, 7) == 7
    assert timestamp_ms(5, 7) == 5
    moment = datetime(2026, 11, 24, 8, 0, 0, 999_000, tzinfo=timezone(timedelta(hours=3)))
    assert timestamp_ms(moment, 7) == int(
        (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000
    )


# --- status and the type registry ---------------------------------------------------------


def test_status_message() -> None:
    assert parse(StatusMessage, {"online": True}).online is True
    off = parse(StatusMessage, {"online": False, "ts": 1000, "device_id": "D-1", "fw": 2})
    assert (off.online, off.ts_ms(5), off.device_id) == (False, 1000, "D-1")
    assert parse(StatusMessage, {"online": True}).ts_ms(5) == 5
    assert failures(StatusMessage, {}) == [("online", "missing")]
    for value in ("true", 1, 0, None):
        assert [loc for loc, _ in failures(StatusMessage, {"online": value})] == ["online"]


def test_device_types_map_names_to_models_and_measurements() -> None:
    assert dict(DEVICE_TYPES) == {
        "people_counter": PeopleCounterReading,
        "odor": OdorReading,
        "station_terminal": StationTerminalReading,
        "sprayer": SprayerReading,
        "toilet_terminal": ToiletTerminalReading,
    }
    assert {name: model.measurement for name, model in DEVICE_TYPES.items()} == {
        "people_counter": "people_flow",
        "odor": "odor",
        "station_terminal": "station",
        "sprayer": "sprayer",
        "toilet_terminal": "toilet",
    }
    assert model_for("odor") is OdorReading
    assert model_for("toaster") is None
    assert model_for("_dlq") is None
    with pytest.raises(TypeError):
        DEVICE_TYPES["toaster"] = OdorReading  # type: ignore[index]


@pytest.mark.parametrize("model", list(MINIMAL), ids=_id)
def test_every_model_carries_the_common_keys(model: type[Reading]) -> None:
    assert issubclass(model, Reading)
    assert {"ts", "seq", "device_id", "battery_pct", "rssi_dbm"} <= set(model.model_fields)


def test_rfc3339_ts_has_the_same_lower_bound_as_epoch_ms() -> None:
    errors = failures(OdorReading, {"nh3_ppm": 1, "ts": "0001-01-01T00:00:00Z"})
    assert {loc for loc, _ in errors} == {"ts"}
