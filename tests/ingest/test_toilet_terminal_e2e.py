"""The toilet management terminal (SPEC v1.1 sections 3 and 5) through the real pipeline:
real mosquitto, real influxd, the real `sanitel ingest`. Every key at both edges of its
SPEC range is stored with the SPEC field type; just outside it, `out_of_range` on the DLQ."""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

T = "sanitation/v1"
TOPIC = f"{T}/WC-0001/toilet_terminal/WC-0001-TT-1/telemetry"

#: SPEC section 3, `toilet_terminal`: key -> (kind, lowest, highest accepted).
RANGES: dict[str, tuple[str, float, float]] = {
    "stalls_free": ("int", 0, 500),
    "stalls_total": ("int", 1, 500),
    "water_m3": ("number", 0, 10_000_000),
    "power_kwh": ("number", 0, 100_000_000),
    "paper_pct": ("number", 0, 100),
    "soap_pct": ("number", 0, 100),
    "rating_good": ("int", 0, 10_000),
    "rating_ok": ("int", 0, 10_000),
    "rating_bad": ("int", 0, 10_000),
}
#: SPEC section 5, measurement `toilet`: integers as integers, numbers as floats.
FIELD_TYPES = {
    "stalls_free": "integer", "stalls_total": "integer", "water_m3": "float",
    "power_kwh": "float", "paper_pct": "float", "soap_pct": "float", "cleaned_by": "string",
    "rating_good": "integer", "rating_ok": "integer", "rating_bad": "integer",
    "battery_pct": "float", "rssi_dbm": "float", "seq": "integer",
}


@pytest.fixture
def terminal_registry(tmp_path: Path) -> Path:
    from tests.conftest import SMALL_CITY

    city = copy.deepcopy(SMALL_CITY)
    city["sites"][0]["devices"].append(
        {"id": "WC-0001-TT-1", "type": "toilet_terminal", "interval_s": 300})
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(city, sort_keys=False))
    return path


def _base(key: str) -> dict[str, Any]:
    """A valid reading around `key`: a total wide enough for any free count."""
    return {} if key == "stalls_free" else {"stalls_free": 0}


def _cases() -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    good: list[dict[str, Any]] = [{
        "stalls_free": 3, "stalls_total": 8, "water_m3": 1523.25, "power_kwh": 88012.5,
        "paper_pct": 64.5, "soap_pct": 71, "cleaned_by": 'Li "Mei", = 2',
        "rating_good": 12, "rating_ok": 3, "rating_bad": 1, "battery_pct": 99,
        "rssi_dbm": -71, "seq": 0,
    }]
    bad: list[tuple[dict[str, Any], str]] = []
    for key, (kind, low, high) in RANGES.items():
        cast = int if kind == "int" else float
        for edge in (low, high):
            good.append({**_base(key), key: cast(edge)})
        step = 1 if kind == "int" else 0.001
        for outside in (low - step, high + step):
            bad.append(({**_base(key), key: cast(outside)}, "out_of_range"))
    good.append({"stalls_free": 500, "stalls_total": 500})
    good.append({"stalls_free": 0, "cleaned_by": "x" * 32})
    bad += [
        ({"stalls_free": 6, "stalls_total": 5}, "out_of_range"),
        ({"stalls_free": 0, "cleaned_by": "x" * 33}, "out_of_range"),
        ({"stalls_free": 0, "cleaned_by": "Li\nMei"}, "schema_invalid"),
        ({"stalls_free": 0, "cleaned_by": 7}, "schema_invalid"),
        ({"stalls_free": 2.0}, "schema_invalid"),
        ({"stalls_free": "2"}, "schema_invalid"),
        ({"stalls_total": 4}, "schema_invalid"),  # the required key is missing
        ({"stalls_free": 1, "water_m3": "12"}, "schema_invalid"),
        ({"stalls_free": 1, "rating_good": 1.5}, "schema_invalid"),
    ]
    return good, bad


def test_every_key_and_range_through_the_pipeline(
    run_ingest: Any, mqtt: Any, influxd: Any, rows_of: Any, terminal_registry: Path
) -> None:
    ingest = run_ingest(registry=terminal_registry)
    mqtt.subscribe(f"{T}/_dlq/#")
    good, bad = _cases()
    base = int(time.time() * 1000) - 600_000
    for i, payload in enumerate(good):
        mqtt.publish(TOPIC, {**payload, "ts": base + i})
    for i, (payload, _) in enumerate(bad):
        mqtt.publish(TOPIC, {**payload, "ts": base + 10_000 + i, "seq": 1000 + i})

    got = mqtt.wait_for(lambda msgs: len(msgs) >= len(bad))
    reasons = {}
    for topic, body, _ in got:
        record = json.loads(body)
        sent = json.loads(base64.b64decode(record["payload_b64"]))
        reasons[sent["seq"]] = (topic.rsplit("/", 1)[1], record["detail"])
    for i, (payload, expected) in enumerate(bad):
        reason, detail = reasons[1000 + i]
        assert reason == expected, (payload, reason, detail)
        named = next(k for k in payload if k != "stalls_free") if len(payload) > 1 \
            else next(iter(payload))
        if expected == "out_of_range":
            assert named in detail, (payload, detail)

    rows = rows_of("SELECT * FROM toilet", ingest.database, count=len(good))
    assert len(rows) == len(good)
    by_time = {row["time"]: row for row in rows}
    for i, payload in enumerate(good):
        row = by_time[base + i]
        for key, value in payload.items():
            assert row[key] == value, (key, value, row[key])
        assert row["device_id"] == "WC-0001-TT-1" and row["site_kind"] == "toilet"
        assert row["district"] == "Jinjiang" and row["site_id"] == "WC-0001"
    types = {r["fieldKey"]: r["fieldType"]
             for r in influxd.rows('SHOW FIELD KEYS FROM "toilet"', ingest.database)}
    assert types == FIELD_TYPES
