"""The validator against SPEC sections 2 and 3, as written independently in `spec_oracle`:
random topics and payloads (the hostile mix of test_ingest_hostile, many more of them,
without servers) end stored or rejected for the reason the SPEC gives."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.sites import Registry
from ingest.rejects import Rejected
from ingest.validation import Validator
from tests.conftest import SMALL_CITY
from tests.ingest import spec_oracle
from tests.ingest.test_ingest_hostile import nearly_valid, payloads, topics

DEVICES = {device["id"]: (site["id"], device["type"])
           for site in SMALL_CITY["sites"] for device in site["devices"]}
VALIDATOR = Validator(Registry.from_dict(SMALL_CITY))
ts_values = st.one_of(st.none(), st.integers(-5, 2**62), st.sampled_from(
    ["2026-11-24T08:00:00Z", "2026-11-24T08:00:00+08:00", "2026-11-24 08:00", "yesterday"]),
    st.floats(0, 1e12), st.booleans())


def encode(payload: Any, ts: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, dict) and ts is not None:
        payload = {**payload, "ts": ts}
    return json.dumps(payload).encode()


@settings(max_examples=1500, deadline=None)
@given(message=st.one_of(st.tuples(topics, payloads), nearly_valid()), ts=ts_values)
def test_the_validator_decides_as_the_spec_says(message: tuple[str, Any], ts: Any) -> None:
    topic, payload = message
    body = encode(payload, ts)
    now = int(time.time() * 1000)
    try:
        VALIDATOR.check(topic, body, now)
        got = None
    except Rejected as rejected:
        got = str(rejected.reason)
    assert got == spec_oracle.outcome(topic, body, DEVICES, now), (topic, body)


def test_the_oracle_knows_the_spec_examples() -> None:
    topic = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"
    now = 1_800_000_000_000
    cases = {
        b'{"nh3_ppm": 1.5}': None,
        b'{"nh3_ppm": 1}': None,  # a number may be written as an integer
        b'{"nh3_ppm": 101}': "out_of_range",
        b'{"nh3_ppm": "1"}': "schema_invalid",
        b'{"nh3_ppm": true}': "schema_invalid",
        b'{"h2s_ppm": 1}': "schema_invalid",  # the required key missing
        b'{"nh3_ppm": 1, "seq": -1}': "out_of_range",
        b'{"nh3_ppm": 1, "seq": 1.0}': "schema_invalid",
        b'{"nh3_ppm": 1, "firmware": [1]}': None,  # keys the SPEC does not name
        b'{"nh3_ppm": 1, "device_id": "WC-0001-OD-2"}': "device_mismatch",
        b'{"nh3_ppm": 1, "ts": 1800000400000}': "clock_skew",
        b'{"nh3_ppm": NaN}': "malformed_json",
        b"[1]": "schema_invalid",
        b"\xff": "malformed_json",
        b'{"nh3_ppm": 1, "x": "' + b"y" * 17_000 + b'"}': "payload_too_large",
    }
    cases[b"NaN"] = "malformed_json"  # not JSON, though Python's json module reads it
    for body, reason in cases.items():
        assert spec_oracle.outcome(topic, body, DEVICES, now) == reason, body
        try:
            VALIDATOR.check(topic, body, now)
            got = None
        except Rejected as rejected:
            got = str(rejected.reason)
        assert got == reason, body
    assert spec_oracle.outcome("sanitation/v1/WC-0001/odor/_x/telemetry", b"{}", DEVICES,
                               now) == "topic_invalid"
    assert spec_oracle.outcome("sanitation/v1/WC-0001/odor/WC-9/telemetry", b"{}", DEVICES,
                               now) == "unknown_device"
    assert spec_oracle.outcome("sanitation/v1/TS-0001/odor/WC-0001-OD-1/telemetry", b"{}",
                               DEVICES, now) == "device_mismatch"
