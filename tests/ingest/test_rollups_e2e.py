"""Hourly rollups through the real pipeline (SPEC section 9): a simulated week published
with `--start` in the past (every reading "late") gives rollups equal to the aggregates
computed in Python from the raw points, hour by hour, within 60 s of being stored; the
same readings delivered a second time change nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sanitel.local_servers import Influxd, Mosquitto

from ..conftest import ROOT, MqttTestClient
from .rollup_expect import differences, district_days, expected, same

HOUR = 3_600_000
MEASUREMENTS = ("people_flow", "odor", "station", "sprayer", "toilet")
TOILET_SITE: dict[str, Any] = {
    "id": "WC-0100", "kind": "toilet", "name": "Wenshu Lane", "district": "Qingyang",
    "lat": 30.67, "lon": 104.07,
    "devices": [
        {"id": "WC-0100-PC-1", "type": "people_counter", "interval_s": 60},
        {"id": "WC-0100-OD-1", "type": "odor", "interval_s": 120},
        {"id": "WC-0100-SP-1", "type": "sprayer", "interval_s": 300},
    ],
}
STATION_SITE: dict[str, Any] = {
    "id": "TS-0100", "kind": "transfer_station", "name": "Shahe", "district": "Chenghua",
    "lat": 30.68, "lon": 104.1,
    "devices": [{"id": "TS-0100-ST-1", "type": "station_terminal", "interval_s": 120}],
}
TERMINAL = {"id": "WC-0100-TT-1", "type": "toilet_terminal", "interval_s": 300}


def _registries(tmp_path: Path) -> tuple[Path, Path]:
    """The simulator's city, and the pipeline's: the same plus a toilet terminal that the
    test publishes itself."""
    simulated = tmp_path / "sim-registry.yaml"
    simulated.write_text(yaml.safe_dump({"sites": [TOILET_SITE, STATION_SITE]}))
    with_terminal = {**TOILET_SITE, "devices": [*TOILET_SITE["devices"], TERMINAL]}
    pipeline = tmp_path / "registry.yaml"
    pipeline.write_text(yaml.safe_dump({"sites": [with_terminal, STATION_SITE]}))
    return simulated, pipeline


def _terminal_week(start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    rng = random.Random(18)
    water, power, readings = 1520.0, 88_000.0, []
    for seq, ts in enumerate(range(start_ms, end_ms, 300_000)):
        water += rng.choice((0.0, 0.0, rng.uniform(0.01, 0.4)))
        power += rng.uniform(0.0, 0.6)
        reading: dict[str, Any] = {
            "ts": ts, "seq": seq, "stalls_total": 6, "stalls_free": rng.randint(0, 6),
            "water_m3": round(water, 3), "power_kwh": round(power, 3),
            "paper_pct": rng.uniform(0, 100), "soap_pct": rng.uniform(0, 100),
            "rating_good": rng.randint(0, 9), "rating_bad": rng.randint(0, 2),
        }
        if rng.random() < 0.3:
            reading["rating_ok"] = rng.randint(0, 4)
        if rng.random() < 0.08:
            reading["cleaned_by"] = rng.choice(("attendant-07", "attendant-12"))
        readings.append(reading)
    return readings


def _raw(influxd: Influxd, db: str, measurement: str) -> list[dict[str, Any]]:
    return influxd.rows(f'SELECT * FROM "raw"."{measurement}"', db)


def _rollup(influxd: Influxd, db: str, measurement: str) -> dict[tuple[str, int], dict[str, Any]]:
    rows = influxd.rows(f'SELECT * FROM "rollup"."{measurement}_1h"', db)
    return {(row["device_id"], row["time"]): row for row in rows}


def _stored(influxd: Influxd, db: str) -> int:
    total = 0
    for measurement in MEASUREMENTS:
        rows = influxd.rows(f'SELECT count("seq") AS n FROM "{measurement}"', db)
        total += rows[0]["n"] if rows else 0
    return total


def _wait_stored(influxd: Influxd, db: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (got := _stored(influxd, db)) < count and time.monotonic() < deadline:
        time.sleep(0.5)
    assert got == count, f"{got} readings stored, {count} published"


def _problems(influxd: Influxd, db: str) -> list[str]:
    problems = []
    for measurement in MEASUREMENTS:
        want = expected(measurement, _raw(influxd, db, measurement))
        assert want, f"no raw {measurement} readings"
        problems += [f"{measurement}: {p}" for p in
                     differences(want, _rollup(influxd, db, measurement))]
    return problems


def _wait_equal(influxd: Influxd, db: str, timeout: float) -> None:
    """SPEC: late readings are in the rollups within 60 s of being stored."""
    deadline = time.monotonic() + timeout
    while (problems := _problems(influxd, db)) and time.monotonic() < deadline:
        time.sleep(2)
    assert not problems, "\n".join(problems[:20])


def test_a_late_week_rolls_up_like_the_raw_points_and_duplicates_change_nothing(
    run_ingest: Any, mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    simulated, registry = _registries(tmp_path)
    ingest = run_ingest(registry=registry)
    db = ingest.database
    listener = MqttTestClient(mosquitto.host, mosquitto.port)
    listener.subscribe("sanitation/v1/+/+/+/telemetry")
    now = int(time.time() * 1000)
    start = now - 7 * 24 * HOUR + 2 * HOUR  # within late_days (7)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env |= {"SANITEL_MQTT__HOST": mosquitto.host, "SANITEL_MQTT__PORT": str(mosquitto.port)}
    begin = datetime.fromtimestamp(start / 1000, UTC).isoformat()
    simulate = subprocess.Popen(
        [sys.executable, "-m", "sanitel.cli", "simulate", "--registry", str(simulated),
         "--start", begin, "--speed", "25000", "--duration", "26", "--seed", "9", "-q"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    publisher = MqttTestClient(mosquitto.host, mosquitto.port)
    terminal_topic = "sanitation/v1/WC-0100/toilet_terminal/WC-0100-TT-1/telemetry"
    for reading in _terminal_week(start, now):
        publisher.publish(terminal_topic, reading)
    _out, err = simulate.communicate(timeout=120)
    assert simulate.returncode == 0, err
    time.sleep(1)
    published = [(t, p) for t, p, _ in listener.messages]
    assert len(published) > 20_000
    _wait_stored(influxd, db, len(published))
    _wait_equal(influxd, db, timeout=60)
    first = {m: _rollup(influxd, db, m) for m in MEASUREMENTS}
    assert len(first["people_flow"]) >= 7 * 24 - 2  # every hour of the week
    # The daily figures per district (what a year-long overview reads) agree with raw too.
    want = district_days(_raw(influxd, db, "people_flow"), _raw(influxd, db, "odor"))
    got = {(r["district"], r["site_kind"], r["time"]): r
           for r in influxd.rows('SELECT * FROM "rollup"."district_1d"', db)}
    assert set(got) == set(want) and len(want) >= 7  # the days of the week
    for key, fields in want.items():
        for name, value in fields.items():
            assert same(value, got[key][name]), (key, name, value, got[key][name])

    # Every reading once more, then a new one: when its hour is rolled up, so are theirs.
    for topic, payload in published:
        publisher.publish(topic, payload)
    sentinel = {"ts": int(time.time() * 1000), "nh3_ppm": 77.5, "seq": 1}
    publisher.publish("sanitation/v1/TS-0100/odor/TS-0100-OD-9/telemetry", sentinel)  # unknown
    publisher.publish("sanitation/v1/WC-0100/odor/WC-0100-OD-1/telemetry", sentinel)
    _wait_stored(influxd, db, len(published) + 1)
    deadline = time.monotonic() + 60
    hour = sentinel["ts"] - sentinel["ts"] % HOUR
    while time.monotonic() < deadline:
        row = _rollup(influxd, db, "odor").get(("WC-0100-OD-1", hour), {})
        if row.get("nh3_ppm_max") == 77.5:
            break
        time.sleep(1)
    else:
        raise AssertionError("the new reading's hour was not rolled up within 60 s")
    _wait_equal(influxd, db, timeout=5)
    again = {m: _rollup(influxd, db, m) for m in MEASUREMENTS}
    again["odor"].pop(("WC-0100-OD-1", hour))
    first["odor"].pop(("WC-0100-OD-1", hour), None)
    assert again == first
    publisher.close()
    listener.close()
    assert ingest.stop() == 0


def test_hours_written_before_a_kill_are_rolled_up_after_the_restart(
    run_ingest: Any, mosquitto: Mosquitto, influxd: Influxd, mqtt: MqttTestClient
) -> None:
    # Rollups every minute: none happens before the kill.
    ingest = run_ingest(retention__rollup_every_s=60, retention__catchup_every_s=36000)
    db = ingest.database
    now = int(time.time() * 1000)
    late = now - now % HOUR - 5 * HOUR  # older than the catch-up's two hours
    topic = "sanitation/v1/WC-0001/people_counter/WC-0001-PC-1/telemetry"
    for minute in range(10):
        mqtt.publish(topic, {"entries": minute, "seq": minute, "ts": late + minute * 60_000})
    deadline = time.monotonic() + 15
    while _stored(influxd, db) < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _stored(influxd, db) == 10
    ingest.kill()
    assert not influxd.rows('SELECT * FROM "rollup"."people_flow_1h"', db)
    ingest.env["SANITEL_RETENTION__ROLLUP_EVERY_S"] = "1"
    ingest.restart()
    deadline, rows = time.monotonic() + 30, []
    while not rows and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = influxd.rows('SELECT entries_sum FROM "rollup"."people_flow_1h"', db)
    assert [(row["time"], row["entries_sum"]) for row in rows] == [(late, sum(range(10)))]
    assert ingest.stop() == 0
