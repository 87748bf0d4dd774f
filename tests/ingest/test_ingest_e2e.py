"""`sanitel ingest` end to end: real mosquitto, real influxd, the real process."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

T = "sanitation/v1"
ODOR = f"{T}/WC-0001/odor/WC-0001-OD-1/telemetry"

GOOD: dict[str, tuple[str, str, dict[str, Any], dict[str, str]]] = {
    # device_type: (topic, measurement, payload, expected field types)
    "people_counter": (
        f"{T}/WC-0001/people_counter/WC-0001-PC-1/telemetry", "people_flow",
        {"entries": 12, "exits": 10, "occupancy": 2, "battery_pct": 88, "rssi_dbm": -70,
         "seq": 41},
        {"entries": "integer", "exits": "integer", "occupancy": "integer",
         "battery_pct": "float", "rssi_dbm": "float", "seq": "integer"},
    ),
    "odor": (
        ODOR, "odor",
        {"nh3_ppm": 1, "h2s_ppm": 0.02, "temp_c": 21.5, "rh_pct": 60, "seq": 7},
        {"nh3_ppm": "float", "h2s_ppm": "float", "temp_c": "float", "rh_pct": "float",
         "seq": "integer"},
    ),
    "station_terminal": (
        f"{T}/TS-0001/station_terminal/TS-0001-ST-1/telemetry", "station",
        {"fill_pct": 62.5, "weight_kg": 8400, "compactor": "running", "door_open": False,
         "fault_code": "E-17", "seq": 3},
        {"fill_pct": "float", "weight_kg": "float", "compactor": "string",
         "door_open": "boolean", "fault_code": "string", "seq": "integer"},
    ),
    "sprayer": (
        f"{T}/WC-0001/sprayer/WC-0001-SP-1/telemetry", "sprayer",
        {"liquid_pct": 40, "sprays": 12, "state": "ok", "seq": 0},
        {"liquid_pct": "float", "sprays": "integer", "state": "string", "seq": "integer"},
    ),
}


def field_types(influxd: Any, measurement: str, db: str) -> dict[str, str]:
    return {r["fieldKey"]: r["fieldType"]
            for r in influxd.rows(f'SHOW FIELD KEYS FROM "{measurement}"', db)}


@pytest.mark.parametrize("device_type", list(GOOD))
def test_good_reading_lands_with_measurement_tags_types_and_time(
    device_type: str, run_ingest: Any, mqtt: Any, influxd: Any, rows_of: Any
) -> None:
    topic, measurement, payload, types = GOOD[device_type]
    ingest = run_ingest()
    ts = int(time.time() * 1000) - 5_000
    mqtt.publish(topic, {**payload, "ts": ts, "firmware": "2.1", "extra": {"x": [1]}})
    rows = rows_of(f'SELECT * FROM "{measurement}"', ingest.database)
    assert len(rows) == 1
    row = rows[0]
    assert row["time"] == ts
    site_id = topic.split("/")[2]
    assert row["site_id"] == site_id and row["device_id"] == topic.split("/")[4]
    assert row["district"] == ("Jinjiang" if site_id == "WC-0001" else "Chenghua")
    assert row["site_kind"] == ("toilet" if site_id == "WC-0001" else "transfer_station")
    for key, value in payload.items():
        assert row[key] == value, key
    assert "firmware" not in row and "extra" not in row
    assert field_types(influxd, measurement, ingest.database) == types


def test_rfc3339_ts_and_receipt_time(run_ingest: Any, mqtt: Any, rows_of: Any) -> None:
    ingest = run_ingest()
    mqtt.publish(ODOR, {"nh3_ppm": 1.5, "ts": "2026-11-24T08:00:00.250+08:00"})
    before = int(time.time() * 1000)
    mqtt.publish(ODOR, {"nh3_ppm": 2.5})
    rows = rows_of('SELECT nh3_ppm FROM odor', ingest.database, count=2)
    expected = datetime(2026, 11, 24, 0, 0, 0, 250_000, tzinfo=UTC).timestamp() * 1000
    assert rows[0]["time"] == int(expected) and rows[0]["nh3_ppm"] == 1.5
    assert before - 1000 <= rows[1]["time"] <= int(time.time() * 1000)


def test_status_written_to_device_status(run_ingest: Any, mqtt: Any, rows_of: Any) -> None:
    ingest = run_ingest()
    mqtt.publish(f"{T}/WC-0001/sprayer/WC-0001-SP-1/status", {"online": False}, retain=False)
    rows = rows_of("SELECT * FROM device_status", ingest.database)
    assert rows[0]["online"] is False
    assert rows[0]["device_type"] == "sprayer" and rows[0]["site_id"] == "WC-0001"


BAD: list[tuple[str, str, bytes]] = [
    ("malformed_json", ODOR, b'{"nh3_ppm": 1'),
    ("payload_too_large", ODOR, json.dumps({"nh3_ppm": 1, "pad": "x" * 17000}).encode()),
    ("schema_invalid", ODOR, b'{"nh3_ppm": "high"}'),
    ("out_of_range", ODOR, b'{"nh3_ppm": 101}'),
    ("unknown_device", f"{T}/WC-0001/odor/WC-0001-OD-9/telemetry", b'{"nh3_ppm": 1}'),
    ("device_mismatch", ODOR, b'{"nh3_ppm": 1, "device_id": "WC-0001-OD-2"}'),
    ("topic_invalid", f"{T}/WC-0001/toaster/WC-0001-OD-1/telemetry", b'{"nh3_ppm": 1}'),
    ("clock_skew", ODOR, json.dumps({"nh3_ppm": 1, "ts": int(time.time() * 1000) + 3_600_000})
     .encode()),
]


def test_each_reject_reason_reaches_its_dlq_topic_and_rejects(
    run_ingest: Any, mqtt: Any, rows_of: Any
) -> None:
    ingest = run_ingest()
    mqtt.subscribe(f"{T}/_dlq/#")
    base = int(time.time() * 1000) - 60_000
    for i, (_, topic, payload) in enumerate(BAD):
        # A good one around each bad one, each with its own time.
        mqtt.publish(ODOR, {"nh3_ppm": 1.0, "seq": i, "ts": base + i})
        mqtt.publish(topic, payload)
    mqtt.publish(ODOR, {"nh3_ppm": 1.0, "seq": len(BAD), "ts": base + len(BAD)})
    got = mqtt.wait_for(lambda msgs: len(msgs) >= len(BAD))
    by_reason = {m[0].rsplit("/", 1)[1]: json.loads(m[1]) for m in got}
    assert set(by_reason) == {reason for reason, _, _ in BAD}
    for reason, topic, payload in BAD:
        record = by_reason[reason]
        assert set(record) >= {"reason", "detail", "topic", "payload_b64", "received_at"}
        assert record["reason"] == reason and record["topic"] == topic
        assert base64.b64decode(record["payload_b64"]) == payload
        assert record["detail"]
    rejects = rows_of(
        'SELECT sum("count") AS n FROM rejects GROUP BY reason', ingest.database, count=len(BAD)
    )
    assert {r["reason"]: r["n"] for r in rejects} == {reason: 1 for reason, _, _ in BAD}
    good = rows_of("SELECT seq FROM odor", ingest.database, count=len(BAD) + 1)
    assert sorted(r["seq"] for r in good) == list(range(len(BAD) + 1))
    fields = ", ".join(f'sum("rejected_{reason}") AS "{reason}"' for reason, _, _ in BAD)
    query = f"SELECT {fields}, sum(rejected) AS total FROM pipeline"
    deadline = time.monotonic() + 10
    figures = rows_of(query, ingest.database)
    while figures[0]["total"] < len(BAD) and time.monotonic() < deadline:
        time.sleep(0.3)  # the pipeline point comes every stats interval (1 s here)
        figures = rows_of(query, ingest.database)
    assert figures[0]["total"] == len(BAD)
    assert all(figures[0][reason] == 1 for reason, _, _ in BAD), figures


def test_v2_write_api_stores_the_same_readings(
    run_ingest: Any, mqtt: Any, victoria: Any
) -> None:
    run_ingest(influx__api="v2", influx__url=victoria.url, influx__token="secret-token",
               influx__org="city")
    ts = int(time.time() * 1000) - 1000
    for topic, _, payload, _ in GOOD.values():
        mqtt.publish(topic, {**payload, "ts": ts})
    deadline = time.monotonic() + 20
    series: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        series = victoria.export('{__name__=~"(people_flow|odor|station|sprayer)_.*"}')
        if len(series) >= 19:
            break
        time.sleep(0.2)
    got = {s["metric"]["__name__"]: (s["values"][-1], s["timestamps"][-1], s["metric"])
           for s in series}
    for topic, measurement, payload, _ in GOOD.values():
        for key, value in payload.items():
            if isinstance(value, str):
                continue  # victoria-metrics drops string fields
            name = f"{measurement}_{key}"
            assert name in got, name
            stored, when, tags = got[name]
            assert stored == float(value) and when == ts
            assert tags["device_id"] == topic.split("/")[4]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    return subprocess.run([sys.executable, "-m", "sanitel.cli", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SANITEL_MQTT__PORT": "not-a-port"}, "mqtt.port"),
        ({"SANITEL_INFLUX__API": "v3"}, "influx.api"),
        ({"SANITEL_MQTT__HOTS": "x"}, "mqtt.hots"),
        ({"SANITEL_INFLUX__BATCH_SIZE": "0"}, "influx.batch_size"),
    ],
)
def test_bad_configuration_exits_2_naming_the_key(env: dict[str, str], named: str) -> None:
    result = run_cli("ingest", env={**env, "SANITEL_INFLUX__TOKEN": "s3cr3t-value"})
    assert result.returncode == 2
    assert named in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout


def test_bad_registry_exits_2_naming_site_device_and_key(tmp_path: Any) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text(
        "sites:\n  - {id: WC-9, kind: toilet, name: n, district: d, lat: 1, lon: 2,\n"
        "     devices: [{id: WC-9-X, type: toaster}]}\n"
    )
    result = run_cli("ingest", env={"SANITEL_REGISTRY": str(registry)})
    assert result.returncode == 2
    assert "site 'WC-9'" in result.stderr and "device 'WC-9-X'" in result.stderr
    assert "'type'" in result.stderr


def test_bad_config_file_key_is_named(tmp_path: Any) -> None:
    config = tmp_path / "sanitel.yaml"
    config.write_text("influx:\n  url: http://localhost:8086\n  batch_sise: 10\n")
    result = run_cli("ingest", "--config", str(config))
    assert result.returncode == 2 and "influx.batch_sise" in result.stderr


def test_sigterm_drains_and_exits_0(run_ingest: Any, mqtt: Any, influxd: Any) -> None:
    # A long flush interval: the readings are still in the batch when SIGTERM arrives.
    ingest = run_ingest(influx__flush_interval_ms=60_000, influx__batch_size=100_000)
    base = int(time.time() * 1000) - 60_000
    for seq in range(200):
        mqtt.publish(ODOR, {"nh3_ppm": 1.0, "seq": seq, "ts": base + seq}, qos=1)
    time.sleep(0.5)
    assert influxd.rows("SELECT count(nh3_ppm) FROM odor", ingest.database) == []
    assert ingest.stop() == 0
    rows = influxd.rows("SELECT count(nh3_ppm) AS n FROM odor", ingest.database)
    assert rows[0]["n"] == 200
    assert "sanitel ingest: stopped" in ingest.log()


def test_mosquitto_pub_reading_of_each_type_is_queryable_within_2s(
    run_ingest: Any, mosquitto: Any, influxd: Any
) -> None:
    """The operator's check: `mosquitto_pub` one reading per device type, then query."""
    ingest = run_ingest()
    ts = int(time.time() * 1000) - 1000
    for topic, _, payload, _ in GOOD.values():
        subprocess.run(
            ["mosquitto_pub", "-h", mosquitto.host, "-p", str(mosquitto.port), "-q", "1",
             "-t", topic, "-m", json.dumps({**payload, "ts": ts})], check=True, timeout=10,
        )
    published = time.monotonic()
    found: dict[str, int] = {}
    while time.monotonic() - published < 2 and len(found) < len(GOOD):
        for _, measurement, _, _ in GOOD.values():
            rows = influxd.rows(f'SELECT * FROM "{measurement}"', ingest.database) \
                if measurement not in found else []
            if rows:
                found[measurement] = rows[0]["time"]
        time.sleep(0.05)
    assert found == {measurement: ts for _, measurement, _, _ in GOOD.values()}
