"""`Validator.check` (SPEC sections 2-4): every reject reason, with a detail naming the
field, and a property test: any bytes on any topic end Accepted or Rejected."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.odor import OdorReading
from devices.people_counter import PeopleCounterReading
from devices.registry import DEVICE_TYPES
from devices.sites import Registry
from devices.sprayer import SprayerReading
from devices.station_terminal import StationTerminalReading
from devices.status import StatusMessage
from devices.toilet_terminal import ToiletTerminalReading
from ingest.rejects import Rejected, RejectReason
from ingest.validation import MAX_PAYLOAD_BYTES, Accepted, Validator

NOW = 1_795_507_200_000  # 2026-11-24T08:00:00Z
CITY = {
    "sites": [
        {"id": "WC-0001", "kind": "toilet", "name": "Park North", "district": "Jinjiang",
         "lat": 30.6, "lon": 104.0,
         "devices": [{"id": "WC-0001-PC-1", "type": "people_counter"},
                     {"id": "WC-0001-OD-1", "type": "odor"},
                     {"id": "WC-0001-SP-1", "type": "sprayer"},
                     {"id": "WC-0001-TT-1", "type": "toilet_terminal"}]},
        {"id": "TS-0001", "kind": "transfer_station", "name": "West", "district": "Wuhou",
         "lat": 30.6, "lon": 104.0,
         "devices": [{"id": "TS-0001-ST-1", "type": "station_terminal"},
                     {"id": "TS-0001-OD-1", "type": "odor"}]},
    ]
}
REGISTRY = Registry.from_dict(CITY)
DEVICES = [(d.site.id, d.type, d.id) for d in REGISTRY.devices.values()]
MINIMAL: dict[str, dict[str, Any]] = {"people_counter": {"entries": 1}, "odor": {"nh3_ppm": 1.0},
           "station_terminal": {"fill_pct": 1.0}, "sprayer": {"liquid_pct": 1.0},
           "toilet_terminal": {"stalls_free": 1}}
ODOR = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"
STATION = "sanitation/v1/TS-0001/station_terminal/TS-0001-ST-1/telemetry"


def topic(site: str, device_type: str, device: str, kind: str = "telemetry") -> str:
    return f"sanitation/v1/{site}/{device_type}/{device}/{kind}"


def check(t: str, payload: bytes | dict[str, Any], received_ms: int = NOW) -> Accepted:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Validator(REGISTRY).check(t, raw, received_ms)


def reject(t: str, payload: bytes | dict[str, Any], received_ms: int = NOW,
           max_future_ms: int = 300_000) -> Rejected:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(Rejected) as info:
        Validator(REGISTRY, max_future_ms).check(t, raw, received_ms)
    assert isinstance(info.value.detail, str) and info.value.detail
    assert str(info.value) == f"{info.value.reason}: {info.value.detail}"
    return info.value


# --- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize(("site", "device_type", "device"), DEVICES)
def test_a_minimal_reading_of_each_device_is_accepted(
    site: str, device_type: str, device: str
) -> None:
    accepted = check(topic(site, device_type, device), MINIMAL[device_type])
    assert accepted.device is REGISTRY.devices[device]
    assert accepted.kind == "telemetry"
    assert type(accepted.message) is DEVICE_TYPES[device_type]
    assert accepted.ts_ms == NOW  # no ts: the time of receipt


def test_a_full_reading_is_accepted_with_its_values() -> None:
    payload = {"fill_pct": 100, "weight_kg": 100_000, "compactor": "fault", "door_open": True,
               "fault_code": "E" * 32, "seq": 0, "battery_pct": 0, "rssi_dbm": -150,
               "device_id": "TS-0001-ST-1", "ts": NOW - 86_400_000, "firmware": "2.1"}
    accepted = check(STATION, payload)
    message = accepted.message
    assert isinstance(message, StationTerminalReading)
    assert (message.fill_pct, message.weight_kg, message.compactor, message.door_open) == (
        100.0, 100_000.0, "fault", True)
    assert (message.seq, message.battery_pct, message.rssi_dbm) == (0, 0.0, -150.0)
    assert accepted.ts_ms == NOW - 86_400_000


@pytest.mark.parametrize(("site", "device_type", "device"), DEVICES)
def test_status_messages_are_accepted(site: str, device_type: str, device: str) -> None:
    for online in (True, False):
        accepted = check(topic(site, device_type, device, "status"), {"online": online})
        assert accepted.kind == "status"
        assert isinstance(accepted.message, StatusMessage)
        assert accepted.message.online is online
        assert accepted.device.id == device


def test_the_same_validator_gives_the_same_answer_twice() -> None:
    validator = Validator(REGISTRY)
    first = validator.check(ODOR, b'{"nh3_ppm": 2}', NOW)
    second = validator.check(ODOR, b'{"nh3_ppm": 3}', NOW + 1)
    assert first.device is second.device
    assert (first.message.nh3_ppm, second.message.nh3_ppm) == (2.0, 3.0)  # type: ignore[union-attr]
    for _ in range(2):
        with pytest.raises(Rejected) as info:
            validator.check("sanitation/v1/WC-0001/odor/NOPE/telemetry", b"{}", NOW)
        assert info.value.reason is RejectReason.UNKNOWN_DEVICE


# --- topic, registry, device --------------------------------------------------------------


@pytest.mark.parametrize(
    "t",
    [
        "sanitation/v1/WC-0001/odor/WC-0001-OD-1/cmd",
        "sanitation/v1/_alerts/odor/WC-0001-OD-1/telemetry",
        "sanitation/v1/WC-0001/toaster/WC-0001-OD-1/telemetry",
        "sanitation/v1/WC-0001/odor/WC-0001-OD-1",
        "sanitation/v1/WC-0001/odor/_x/telemetry",
    ],
)
def test_bad_topics_are_topic_invalid(t: str) -> None:
    error = reject(t, MINIMAL["odor"])
    assert error.reason is RejectReason.TOPIC_INVALID
    assert repr(t) in error.detail


def test_an_unregistered_device_is_unknown_device() -> None:
    error = reject(topic("WC-0001", "odor", "WC-0001-OD-9"), MINIMAL["odor"])
    assert error.reason is RejectReason.UNKNOWN_DEVICE
    assert "'WC-0001-OD-9'" in error.detail


@pytest.mark.parametrize(
    ("t", "words"),
    [
        (topic("TS-0001", "odor", "WC-0001-OD-1"), ["'WC-0001-OD-1'", "'WC-0001'", "'TS-0001'"]),
        (topic("WC-0001", "sprayer", "WC-0001-OD-1"), ["'WC-0001-OD-1'", "odor", "sprayer"]),
        (topic("WC-0001", "odor", "WC-0001-OD-1", "status").replace("WC-0001/", "WC-0002/"),
         ["'WC-0002'"]),
    ],
)
def test_a_device_on_the_wrong_site_or_type_is_device_mismatch(t: str, words: list[str]) -> None:
    error = reject(t, {"nh3_ppm": 1, "liquid_pct": 1, "online": True})
    assert error.reason is RejectReason.DEVICE_MISMATCH
    for word in words:
        assert word in error.detail


@pytest.mark.parametrize("kind", ["telemetry", "status"])
def test_a_payload_naming_another_device_is_device_mismatch(kind: str) -> None:
    t = topic("WC-0001", "odor", "WC-0001-OD-1", kind)
    payload = {"nh3_ppm": 1, "online": True, "device_id": "WC-0001-PC-1"}
    error = reject(t, payload)
    assert error.reason is RejectReason.DEVICE_MISMATCH
    assert "device_id 'WC-0001-PC-1'" in error.detail and "'WC-0001-OD-1'" in error.detail
    assert check(t, {**payload, "device_id": "WC-0001-OD-1"}).device.id == "WC-0001-OD-1"


def test_a_device_id_differing_only_in_case_is_device_mismatch() -> None:
    error = reject(ODOR, {"nh3_ppm": 1, "device_id": "wc-0001-od-1"})
    assert error.reason is RejectReason.DEVICE_MISMATCH


def test_a_very_long_claimed_device_id_is_cut_in_the_detail() -> None:
    error = reject(ODOR, {"nh3_ppm": 1, "device_id": "X" * 10_000})
    assert error.reason is RejectReason.DEVICE_MISMATCH
    assert len(error.detail) < 300


# --- size ----------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    head, tail = b'{"nh3_ppm": 1, "pad": "', b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


def test_a_payload_of_exactly_16_kib_is_accepted() -> None:
    assert MAX_PAYLOAD_BYTES == 16_384
    assert check(ODOR, padded(16_384)).message.nh3_ppm == 1.0  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [16_385, 16_386, 1_000_000])
def test_a_payload_over_16_kib_is_payload_too_large(size: int) -> None:
    error = reject(ODOR, padded(size))
    assert error.reason is RejectReason.PAYLOAD_TOO_LARGE
    assert str(size) in error.detail and "16384" in error.detail


def test_the_size_counts_bytes_not_characters() -> None:
    head, tail = b'{"nh3_ppm": 1, "pad": "', b'"}'
    pairs, odd = divmod(16_385 - len(head) - len(tail), 2)
    body = head + "é".encode() * pairs + b"x" * odd + tail
    assert len(body) == 16_385 and len(body.decode()) < 16_384
    assert reject(ODOR, body).reason is RejectReason.PAYLOAD_TOO_LARGE


def test_an_oversized_payload_is_not_parsed() -> None:
    assert reject(ODOR, b"{" * 20_000).reason is RejectReason.PAYLOAD_TOO_LARGE


# --- JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [b"", b" ", b"{", b"}", b'{"nh3_ppm": 1,}', b"{'nh3_ppm': 1}", b'{"nh3_ppm": 1}{}',
     b'{"nh3_ppm": 01}', b"\xff\xfe", b'{"nh3_ppm": 1, "x": "\xff"}', b"nh3_ppm=1",
     b'{"nh3_ppm": 1, "x": "\\ud800"}', b"\x00"],
    ids=repr,
)
def test_bad_json_is_malformed_json(payload: bytes) -> None:
    error = reject(ODOR, payload)
    assert error.reason is RejectReason.MALFORMED_JSON
    assert "JSON" in error.detail


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_number_literals_are_malformed_json(literal: bytes) -> None:
    error = reject(ODOR, b'{"nh3_ppm": 1, "x": ' + literal + b"}")
    assert error.reason is RejectReason.MALFORMED_JSON


# --- schema_invalid and out_of_range --------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "payload", "key"),
    [
        (ODOR, {}, "nh3_ppm"),
        (ODOR, {"h2s_ppm": 1}, "nh3_ppm"),
        (ODOR, {"nh3_ppm": "5"}, "nh3_ppm"),
        (ODOR, {"nh3_ppm": True}, "nh3_ppm"),
        (ODOR, {"nh3_ppm": None}, "nh3_ppm"),
        (ODOR, {"nh3_ppm": [1]}, "nh3_ppm"),
        (ODOR, {"nh3_ppm": 1, "temp_c": "20"}, "temp_c"),
        (ODOR, {"nh3_ppm": 1, "seq": 5.0}, "seq"),
        (ODOR, {"nh3_ppm": 1, "seq": "5"}, "seq"),
        (ODOR, {"nh3_ppm": 1, "battery_pct": False}, "battery_pct"),
        (ODOR, {"nh3_ppm": 1, "device_id": 5}, "device_id"),
        (ODOR, {"nh3_ppm": 1, "ts": "2026-11-24T08:00:00"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": 1.7955072e12}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "soon"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "1795507200000"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "2026-11-24"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "2026-13-01T00:00:00Z"}, "ts"),
        (topic("WC-0001", "people_counter", "WC-0001-PC-1"), {"entries": 1.0}, "entries"),
        (topic("WC-0001", "people_counter", "WC-0001-PC-1"), {"entries": 1, "exits": "2"},
         "exits"),
        (topic("WC-0001", "sprayer", "WC-0001-SP-1"), {"liquid_pct": 1, "sprays": 2.5},
         "sprays"),
        (STATION, {"fill_pct": 1, "door_open": 1}, "door_open"),
        (STATION, {"fill_pct": 1, "door_open": "true"}, "door_open"),
        (STATION, {"fill_pct": 1, "fault_code": 7}, "fault_code"),
        (STATION, {"fill_pct": 1, "fault_code": "E\n1"}, "fault_code"),
        (topic("WC-0001", "odor", "WC-0001-OD-1", "status"), {}, "online"),
        (topic("WC-0001", "odor", "WC-0001-OD-1", "status"), {"online": "false"}, "online"),
        (topic("WC-0001", "odor", "WC-0001-OD-1", "status"), {"online": 0}, "online"),
    ],
    ids=repr,
)
def test_wrong_types_and_missing_keys_are_schema_invalid(
    t: str, payload: dict[str, Any], key: str
) -> None:
    error = reject(t, payload)
    assert error.reason is RejectReason.SCHEMA_INVALID
    assert error.detail.startswith(f"{key}:"), error.detail


@pytest.mark.parametrize("payload", [b"[]", b'[{"nh3_ppm": 1}]', b"null", b"1", b'"x"', b"true"])
def test_a_payload_that_is_not_an_object_is_schema_invalid(payload: bytes) -> None:
    error = reject(ODOR, payload)
    assert error.reason is RejectReason.SCHEMA_INVALID
    assert "JSON object" in error.detail


#: (device type, key, lowest, highest, integer?) of every bounded key.
RANGES = [
    ("people_counter", "entries", 0, 10_000, True),
    ("people_counter", "exits", 0, 10_000, True),
    ("people_counter", "occupancy", 0, 1_000, True),
    ("odor", "nh3_ppm", 0, 100, False),
    ("odor", "h2s_ppm", 0, 100, False),
    ("odor", "temp_c", -40, 85, False),
    ("odor", "rh_pct", 0, 100, False),
    ("station_terminal", "fill_pct", 0, 100, False),
    ("station_terminal", "weight_kg", 0, 100_000, False),
    ("sprayer", "liquid_pct", 0, 100, False),
    ("sprayer", "sprays", 0, 100_000, True),
    *[(t, "battery_pct", 0, 100, False) for t in MINIMAL],
    *[(t, "rssi_dbm", -150, 0, False) for t in MINIMAL],
    *[(t, "seq", 0, 2**63 - 1, True) for t in MINIMAL],
]
TOPIC_OF = {d.type: topic(d.site.id, d.type, d.id) for d in REGISTRY.devices.values()}


@pytest.mark.parametrize(("device_type", "key", "low", "high", "integer"), RANGES)
def test_range_edges_are_accepted_and_beyond_is_out_of_range(
    device_type: str, key: str, low: int, high: int, integer: bool
) -> None:
    t = TOPIC_OF[device_type]
    for edge in (low, high):
        accepted = check(t, {**MINIMAL[device_type], key: edge})
        assert getattr(accepted.message, key) == edge
    step = 1 if integer else 0.001
    for beyond in (low - step, high + step):
        error = reject(t, {**MINIMAL[device_type], key: beyond})
        assert error.reason is RejectReason.OUT_OF_RANGE, (beyond, error)
        assert error.detail.startswith(f"{key}:") and repr(beyond)[:8] in error.detail


@pytest.mark.parametrize(
    ("t", "payload", "key"),
    [
        (STATION, {"fill_pct": 1, "compactor": "exploded"}, "compactor"),
        (STATION, {"fill_pct": 1, "compactor": "IDLE"}, "compactor"),
        (STATION, {"fill_pct": 1, "fault_code": "E" * 33}, "fault_code"),
        (topic("WC-0001", "sprayer", "WC-0001-SP-1"), {"liquid_pct": 1, "state": "full"},
         "state"),
        (ODOR, b'{"nh3_ppm": 1e400}', "nh3_ppm"),
        (ODOR, {"nh3_ppm": 1, "ts": -1}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": 2**63 // 1_000_000 + 1}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "1969-12-31T23:59:59.999Z"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "0001-01-01T00:00:00Z"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "ts": "9999-12-31T23:59:59Z"}, "ts"),
        (ODOR, {"nh3_ppm": 1, "seq": -1}, "seq"),
        (ODOR, {"nh3_ppm": 1, "seq": 2**63}, "seq"),
        (ODOR, {"nh3_ppm": 10**30}, "nh3_ppm"),
    ],
    ids=repr,
)
def test_other_values_outside_their_set_are_out_of_range(
    t: str, payload: dict[str, Any] | bytes, key: str
) -> None:
    error = reject(t, payload)
    assert error.reason is RejectReason.OUT_OF_RANGE
    assert error.detail.startswith(f"{key}:")


def test_several_range_errors_name_every_field() -> None:
    error = reject(ODOR, {"nh3_ppm": 101, "temp_c": -41, "rh_pct": 100.5})
    assert error.reason is RejectReason.OUT_OF_RANGE
    for key in ("nh3_ppm", "temp_c", "rh_pct"):
        assert f"{key}:" in error.detail


def test_a_wrong_type_among_range_errors_makes_it_schema_invalid() -> None:
    error = reject(ODOR, {"nh3_ppm": 101, "temp_c": "warm"})
    assert error.reason is RejectReason.SCHEMA_INVALID
    assert "nh3_ppm:" in error.detail and "temp_c:" in error.detail


def test_the_detail_cuts_a_long_offending_value() -> None:
    error = reject(STATION, {"fill_pct": 1, "fault_code": "Z" * 5000})
    assert error.reason is RejectReason.OUT_OF_RANGE
    assert error.detail.startswith("fault_code:") and len(error.detail) < 300


@pytest.mark.parametrize(
    ("t", "payload"),
    [
        (STATION, {"fill_pct": 1, "compactor": 5}),
        (topic("WC-0001", "sprayer", "WC-0001-SP-1"), {"liquid_pct": 1, "state": True}),
    ],
)
def test_a_wrong_type_for_an_enumeration_is_schema_invalid(
    t: str, payload: dict[str, Any]
) -> None:
    assert reject(t, payload).reason is RejectReason.SCHEMA_INVALID


# --- clock ---------------------------------------------------------------------------------


def test_ts_exactly_five_minutes_ahead_is_accepted() -> None:
    assert check(ODOR, {"nh3_ppm": 1, "ts": NOW + 300_000}).ts_ms == NOW + 300_000
    accepted = check(ODOR, {"nh3_ppm": 1, "ts": "2026-11-24T08:05:00Z"})
    assert accepted.ts_ms == NOW + 300_000


@pytest.mark.parametrize(
    "ts", [NOW + 300_001, NOW + 86_400_000, "2026-11-24T08:05:00.001Z",
           "2026-11-24T16:05:01+08:00", "2262-04-11T00:00:00Z", 2**63 // 1_000_000],
    ids=repr,
)
def test_ts_beyond_five_minutes_ahead_is_clock_skew(ts: Any) -> None:
    error = reject(ODOR, {"nh3_ppm": 1, "ts": ts})
    assert error.reason is RejectReason.CLOCK_SKEW
    assert error.detail.startswith("ts ") and "300 s" in error.detail


def test_clock_skew_also_applies_to_status() -> None:
    status = topic("WC-0001", "odor", "WC-0001-OD-1", "status")
    error = reject(status, {"online": False, "ts": NOW + 300_001})
    assert error.reason is RejectReason.CLOCK_SKEW


def test_old_readings_are_accepted() -> None:
    for ts in (0, NOW - 365 * 86_400_000, "1999-01-01T00:00:00+02:00", "1970-01-01T00:00:00Z",
               "1970-01-01T01:00:00+01:00"):
        assert check(ODOR, {"nh3_ppm": 1, "ts": ts}).ts_ms < NOW


def test_an_rfc3339_fraction_beyond_microseconds_is_cut_to_the_millisecond() -> None:
    accepted = check(ODOR, {"nh3_ppm": 1, "ts": "2026-11-24T08:00:00.123456789Z"})
    assert accepted.ts_ms == NOW + 123


def test_the_future_allowance_is_configurable() -> None:
    validator = Validator(REGISTRY, max_future_ms=0)
    assert validator.check(ODOR, json.dumps({"nh3_ppm": 1, "ts": NOW}).encode(), NOW).ts_ms == NOW
    with pytest.raises(Rejected) as info:
        validator.check(ODOR, json.dumps({"nh3_ppm": 1, "ts": NOW + 1}).encode(), NOW)
    assert info.value.reason is RejectReason.CLOCK_SKEW


# --- order of the checks ------------------------------------------------------------------


def test_the_topic_is_checked_before_the_size_and_the_json() -> None:
    assert reject("a/b", padded(20_000)).reason is RejectReason.TOPIC_INVALID
    assert reject(topic("WC-0001", "odor", "NOPE"), b"{").reason is RejectReason.UNKNOWN_DEVICE
    assert reject(topic("TS-0001", "odor", "WC-0001-OD-1"), b"{").reason is (
        RejectReason.DEVICE_MISMATCH)


def test_storage_rejected_is_never_a_validation_outcome() -> None:
    assert str(RejectReason.STORAGE_REJECTED) == "storage_rejected"
    assert {str(r) for r in RejectReason} == {
        "malformed_json", "payload_too_large", "schema_invalid", "out_of_range",
        "unknown_device", "device_mismatch", "topic_invalid", "clock_skew", "storage_rejected"}


# --- property: anything ends Accepted or Rejected -----------------------------------------

KEYS = ["entries", "exits", "occupancy", "nh3_ppm", "h2s_ppm", "temp_c", "rh_pct", "fill_pct",
        "weight_kg", "compactor", "door_open", "fault_code", "liquid_pct", "sprays", "state",
        "seq", "battery_pct", "rssi_dbm", "device_id", "ts", "online", "stalls_free",
        "stalls_total", "water_m3", "power_kwh", "paper_pct", "soap_pct", "cleaned_by",
        "rating_good", "rating_ok", "rating_bad"]
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False,
                                                                        allow_infinity=False),
    st.sampled_from(["idle", "running", "fault", "ok", "low", "empty", "2026-11-24T08:00:00Z",
                     "WC-0001-OD-1", "1795507200000"]),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
segments = st.one_of(
    st.sampled_from(["WC-0001", "TS-0001", "WC-0001-OD-1", "TS-0001-ST-1", "WC-0001-PC-1",
                     "WC-0001-SP-1", "TS-0001-OD-1", "odor", "sprayer", "_dlq", "", "+"]),
    st.text(max_size=10),
)
topics = st.one_of(
    st.builds(lambda where, kind: topic(where[0], where[1], where[2], kind),
              st.sampled_from(DEVICES), st.sampled_from(["telemetry", "status"])),
    st.builds(topic, *(st.sampled_from(x) for x in zip(*DEVICES, strict=True)),
              st.sampled_from(["telemetry", "status"])),
    st.builds(lambda a, b, c, d: f"sanitation/v1/{a}/{b}/{c}/{d}", segments, segments,
              segments, st.sampled_from(["telemetry", "status", "cmd"])),
    st.text(max_size=60),
)
#: Every type's required key and `online`, so that some random payloads are accepted.
ANY_REQUIRED = {"entries": 1, "nh3_ppm": 1.0, "fill_pct": 1.0, "liquid_pct": 1.0, "online": True,
                "stalls_free": 1}
payloads = st.one_of(
    st.binary(max_size=200),
    st.dictionaries(st.sampled_from(KEYS), st.integers(-5, 120) | st.floats(-5, 120)
                    | json_values, max_size=4).map(
        lambda d: json.dumps({**ANY_REQUIRED, **d}).encode()),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10).map(
        lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(
        lambda d: json.dumps(d).encode()[: len(json.dumps(d)) // 2]),
)
VALIDATOR = Validator(REGISTRY)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=topics, payload=payloads, received_ms=st.integers(0, 2 * NOW))
def test_anything_ends_accepted_or_rejected(t: str, payload: bytes, received_ms: int) -> None:
    try:
        accepted = VALIDATOR.check(t, payload, received_ms)
    except Rejected as exc:
        assert exc.reason in set(RejectReason) - {RejectReason.STORAGE_REJECTED}
        assert isinstance(exc.detail, str) and exc.detail
    else:
        assert isinstance(accepted, Accepted)
        device = REGISTRY.devices[accepted.device.id]
        assert t == topic(device.site.id, device.type, device.id, accepted.kind)
        expected = DEVICE_TYPES[device.type] if accepted.kind == "telemetry" else StatusMessage
        assert type(accepted.message) is expected
        assert accepted.ts_ms - received_ms <= 300_000


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(DEVICES),
    extra=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    received_ms=st.integers(0, 2 * NOW),
)
def test_random_keys_on_registered_devices_end_accepted_or_rejected(
    where: tuple[str, str, str], extra: dict[str, Any], received_ms: int
) -> None:
    site, device_type, device = where
    payload = json.dumps({**MINIMAL[device_type], **extra}).encode()
    try:
        accepted = VALIDATOR.check(topic(site, device_type, device), payload, received_ms)
    except Rejected as exc:
        assert exc.reason in {RejectReason.SCHEMA_INVALID, RejectReason.OUT_OF_RANGE,
                              RejectReason.DEVICE_MISMATCH, RejectReason.CLOCK_SKEW}
    else:
        assert accepted.device.id == device
        assert isinstance(accepted.message,
                          (PeopleCounterReading, OdorReading, StationTerminalReading,
                           SprayerReading, ToiletTerminalReading))


TERMINAL = "sanitation/v1/WC-0001/toilet_terminal/WC-0001-TT-1/telemetry"


@settings(max_examples=300, deadline=None)
@given(free=st.integers(-2, 502), total=st.integers(-1, 502))
def test_free_stalls_against_total_follow_the_spec(free: int, total: int) -> None:
    """SPEC 3: stalls_free 0..500, stalls_total 1..500, stalls_free <= stalls_total;
    any value outside, or more free than total, is out_of_range."""
    payload = json.dumps({"stalls_free": free, "stalls_total": total}).encode()
    valid = 0 <= free <= 500 and 1 <= total <= 500 and free <= total
    try:
        accepted = VALIDATOR.check(TERMINAL, payload, NOW)
    except Rejected as exc:
        assert not valid and exc.reason is RejectReason.OUT_OF_RANGE, exc
    else:
        assert valid
        assert isinstance(accepted.message, ToiletTerminalReading)
        assert (accepted.message.stalls_free, accepted.message.stalls_total) == (free, total)
