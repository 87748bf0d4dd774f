"""Random bytes and random JSON on random device topics, through the real `sanitel ingest`:
every message ends stored or rejected, exactly as SPEC sections 2 and 3 say (an oracle
written from the SPEC, `spec_oracle`, not the production validator), and the process
keeps running."""

from __future__ import annotations

import base64
import json
import time
from itertools import count
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest import spec_oracle

SITES = {
    "WC-0001": {"people_counter": ["WC-0001-PC-1"], "odor": ["WC-0001-OD-1"],
                "sprayer": ["WC-0001-SP-1"]},
    "TS-0001": {"station_terminal": ["TS-0001-ST-1"], "odor": ["TS-0001-OD-1"]},
}
KEYS = ["entries", "exits", "occupancy", "nh3_ppm", "h2s_ppm", "temp_c", "rh_pct", "fill_pct",
        "weight_kg", "compactor", "door_open", "fault_code", "liquid_pct", "sprays", "state",
        "seq", "battery_pct", "rssi_dbm", "device_id"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 200_000), st.floats(-200, 200_000),
    st.sampled_from(["idle", "running", "fault", "ok", "low", "empty", "E1", "x" * 40]),
    st.text(max_size=12),
)
segments = st.one_of(
    st.sampled_from(["WC-0001", "TS-0001", "WC-0001-OD-1", "TS-0001-ST-1", "WC-0001-PC-1",
                     "WC-0001-SP-1", "TS-0001-OD-1", "odor", "sprayer", "_x", "WC-9"]),
    st.text(alphabet="abcXYZ019_-", min_size=1, max_size=8),
)
topics = st.one_of(
    st.builds(
        lambda site, dtype, dev: f"sanitation/v1/{site}/{dtype}/{dev}/telemetry",
        st.sampled_from(list(SITES)),
        st.sampled_from(["people_counter", "odor", "station_terminal", "sprayer"]),
        st.sampled_from([d for types in SITES.values() for ds in types.values() for d in ds]),
    ),
    st.builds(lambda a, b, c: f"sanitation/v1/{a}/{b}/{c}/telemetry", segments, segments,
              segments),
)
payloads = st.one_of(
    st.binary(max_size=64),
    st.dictionaries(st.sampled_from(KEYS), scalars, max_size=8),
    st.dictionaries(st.text(max_size=6), scalars, max_size=4),
    st.lists(scalars, max_size=3),
)

REQUIRED = {"people_counter": ("entries", st.integers(0, 10_000)),
            "odor": ("nh3_ppm", st.floats(0, 100)),
            "station_terminal": ("fill_pct", st.floats(0, 100)),
            "sprayer": ("liquid_pct", st.floats(0, 100))}
DEVICES = [(site, dtype, dev) for site, types in SITES.items() for dtype, devs in types.items()
           for dev in devs]


@st.composite
def nearly_valid(draw: st.DrawFn) -> tuple[str, Any]:
    """A registered device's reading, with random extra (or wrong) keys now and then."""
    site, dtype, dev = draw(st.sampled_from(DEVICES))
    key, values = REQUIRED[dtype]
    payload = {key: draw(values), **draw(st.dictionaries(st.sampled_from(KEYS), scalars,
                                                        max_size=2))}
    return f"sanitation/v1/{site}/{dtype}/{dev}/telemetry", payload


_bases = count(1)
accepted_ratio: list[float] = []


def encode(payload: Any, ts: int) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, dict):
        payload = {**payload, "ts": ts}
    return json.dumps(payload).encode()


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(messages=st.lists(st.one_of(st.tuples(topics, payloads), nearly_valid()), min_size=20,
                         max_size=40))
def test_every_message_is_stored_or_rejected_as_validated(
    messages: list[tuple[str, Any]], ingest_for_hostile: Any, mqtt_dlq: Any, influxd: Any,
    registry_file: Any,
) -> None:
    ingest = ingest_for_hostile
    city = yaml.safe_load(registry_file.read_text())
    devices = {device["id"]: (site["id"], device["type"])
               for site in city["sites"] for device in site["devices"]}
    base = int(time.time() * 1000) - 3_600_000 - next(_bases) * 10_000
    expected_stored: dict[int, str] = {}
    expected_rejected: list[tuple[str, bytes, str]] = []
    mqtt_dlq.messages.clear()
    for i, (topic, payload) in enumerate(messages):
        body = encode(payload, base + i)
        mqtt_dlq.publish(topic, body)
        reason = spec_oracle.outcome(topic, body, devices, int(time.time() * 1000))
        if reason is None:
            expected_stored[base + i] = topic.split("/")[4]
        else:
            expected_rejected.append((topic, body, reason))
    got = mqtt_dlq.wait_for(lambda m: len(m) >= len(expected_rejected))
    records = [json.loads(payload) for _, payload, _ in got]
    assert sorted(
        (r["topic"], base64.b64decode(r["payload_b64"]), r["reason"]) for r in records
    ) == sorted(expected_rejected)
    if expected_stored:
        deadline = time.monotonic() + 15
        stored: dict[int, str] = {}
        while time.monotonic() < deadline and len(stored) < len(expected_stored):
            stored = {}
            for measurement in ("people_flow", "odor", "station", "sprayer"):
                for row in influxd.rows(
                    f'SELECT * FROM "{measurement}" WHERE time >= {base}ms '
                    f'AND time < {base + len(messages)}ms', ingest.database
                ):
                    stored[row["time"]] = row["device_id"]
            time.sleep(0.1)
        assert stored == expected_stored
    accepted_ratio.append(len(expected_stored) / len(messages))
    assert ingest.proc.poll() is None, ingest.log()[-3000:]


def test_the_hostile_mix_stored_some_and_rejected_some() -> None:
    """Guards the test above against drawing only rejects (or only good readings)."""
    assert accepted_ratio, "run together with test_every_message_is_stored_or_rejected"
    assert 0 < sum(accepted_ratio) / len(accepted_ratio) < 1
