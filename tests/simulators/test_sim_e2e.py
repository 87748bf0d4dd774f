"""The simulated city through the real `sanitel ingest` into InfluxDB: what was stored and
rejected equals the simulator's tally."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from devices.registry import DEVICE_TYPES
from sanitel.local_servers import Influxd, Mosquitto

from .conftest import ROOT_DIR, simulate_cmd, simulator_env, unique_city


def _counts(influxd: Influxd, db: str) -> tuple[dict[str, int], dict[str, int]]:
    stored = {}
    for model in DEVICE_TYPES.values():
        rows = influxd.rows(f'SELECT count("seq") AS n FROM "{model.measurement}"', db)
        stored[model.measurement] = rows[0]["n"] if rows else 0
    rejects = influxd.rows('SELECT sum("count") AS n FROM rejects GROUP BY reason', db)
    return stored, {r["reason"]: r["n"] for r in rejects}


def _wait_counts(
    influxd: Influxd, db: str, want: tuple[dict[str, int], dict[str, int]], timeout: float = 45
) -> tuple[dict[str, int], dict[str, int]]:
    deadline = time.monotonic() + timeout
    got = _counts(influxd, db)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.5)
        got = _counts(influxd, db)
    time.sleep(1.5)  # nothing more may arrive after the match
    return _counts(influxd, db)


def test_stored_and_rejected_equal_the_tally(
    run_ingest: Any, fresh_mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # A broker of our own: the session's holds other tests' retained statuses, which the
    # pipeline would (rightly) count as unknown devices.
    mosquitto = fresh_mosquitto
    city = unique_city(tmp_path, sites=10, seed=6)
    ingest = run_ingest(registry=city.path, mqtt__port=mosquitto.port)
    tally_file = tmp_path / "tally.json"
    cmd = simulate_cmd(
        mosquitto, city, "--speed", "10000", "--count", "3000", "--faults", "0.3",
        "--seed", "5", "--connections", "gateway", "--tally-file", str(tally_file),
    )  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, cwd=ROOT_DIR, env=simulator_env()
    )
    assert done.returncode == 0, done.stderr
    tally = json.loads(tally_file.read_text())
    assert tally["duplicates"] > 0 and len(tally["rejected"]) >= 6
    want = (
        {m.measurement: tally["stored_by_measurement"].get(m.measurement, 0)
         for m in DEVICE_TYPES.values()},
        tally["rejected"],
    )  # fmt: skip
    assert _wait_counts(influxd, ingest.database, want) == want
    online = influxd.rows("SELECT count(online) AS n FROM device_status GROUP BY device_id",
                          ingest.database)  # fmt: skip
    assert {r["device_id"] for r in online} == city.device_ids


def test_every_device_type_arrives_from_the_example_city(
    run_ingest: Any, fresh_mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path
) -> None:
    # A broker of our own: the session's holds other tests' retained statuses, which the
    # pipeline would (rightly) count as unknown devices.
    mosquitto = fresh_mosquitto
    city = unique_city(tmp_path, sites=3, seed=1)
    text = (ROOT_DIR / "config" / "registry.yaml").read_text()
    city.path.write_text(text)
    ingest = run_ingest(registry=city.path, mqtt__port=mosquitto.port)
    from devices.sites import Registry

    example = Registry.load(city.path)
    cmd = [*simulate_cmd(mosquitto, city, "--once", "--seed", "2")]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=ROOT_DIR, env=simulator_env()
    )
    assert done.returncode == 0, done.stderr
    per_type: dict[str, int] = {}
    for device in example.devices.values():
        per_type[device.type] = per_type.get(device.type, 0) + 1
    want: tuple[dict[str, int], dict[str, int]] = (
        {DEVICE_TYPES[t].measurement: n for t, n in per_type.items()},
        {},
    )
    assert _wait_counts(influxd, ingest.database, want) == want
