"""`sanitel influx setup` against real influxd (SPEC sections 8 and 9): retention
policies `raw` (default, raw_days) and `rollup` (rollup_days), idempotent; with
authentication on, a write-only and a read-only user that can do nothing else."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from sanitel.local_servers import Influxd

ROOT = Path(__file__).resolve().parents[2]


def _setup(url: str, database: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    environ |= {"SANITEL_INFLUX__URL": url, "SANITEL_INFLUX__DATABASE": database,
                "SANITEL_DATA_DIR": str(data_dir)}
    environ |= {f"SANITEL_{k.upper()}": v for k, v in env.items()}
    return subprocess.run([sys.executable, "-m", "sanitel.cli", "influx", "setup"], env=environ,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def _policies(url: str, database: str, auth: dict[str, str] | None = None) -> dict[str, Any]:
    data = {"q": f'SHOW RETENTION POLICIES ON "{database}"'}
    result = httpx.post(f"{url}/query", data=data, params=auth).json()["results"][0]
    columns = result["series"][0]["columns"]
    return {row[0]: dict(zip(columns, row, strict=True)) for row in result["series"][0]["values"]}


def test_setup_creates_raw_default_and_rollup_and_is_idempotent(
    influxd: Influxd, tmp_path: Path
) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    first = _setup(influxd.url, database, tmp_path)
    assert first.returncode == 0, first.stderr
    policies = _policies(influxd.url, database)
    assert policies["raw"]["duration"] == "2160h0m0s" and policies["raw"]["default"] is True
    assert policies["rollup"]["duration"] == "43800h0m0s" and policies["rollup"]["default"] is False
    again = _setup(influxd.url, database, tmp_path)
    assert again.returncode == 0, again.stderr
    assert _policies(influxd.url, database) == policies
    assert "created" not in again.stdout
    # Changed settings are applied to the existing policies, the default stays `raw`.
    changed = _setup(influxd.url, database, tmp_path, retention__raw_days="30",
                     retention__rollup_days="400")
    assert changed.returncode == 0, changed.stderr
    policies = _policies(influxd.url, database)
    assert policies["raw"]["duration"] == "720h0m0s" and policies["raw"]["default"] is True
    assert policies["rollup"]["duration"] == "9600h0m0s"


def _users(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / "influx-users.csv").read_text().splitlines()
    assert lines[0] == "role,username,password"
    return {line.split(",")[1]: line.split(",")[2] for line in lines[1:]}


def _as(user: str, password: str) -> dict[str, str]:
    return {"u": user, "p": password}  # 1.x reads them from the URL


def test_auth_on_write_only_and_read_only_users(
    userless_auth_influxd: Influxd, tmp_path: Path
) -> None:
    url, database = userless_auth_influxd.url, "sanitation"
    admin = {"influx__admin_username": "root", "influx__admin_password": "root-secret-1"}
    refused = _setup(url, database, tmp_path, influx__admin_username="root")
    assert refused.returncode != 0  # no admin password: nothing can be created
    done = _setup(url, database, tmp_path, **admin)
    assert done.returncode == 0, done.stderr
    users = _users(tmp_path)
    assert set(users) == {"sanitel-ingest", "sanitel-grafana"}
    assert stat.S_IMODE((tmp_path / "influx-users.csv").stat().st_mode) == 0o600
    for secret in (*users.values(), "root-secret-1"):
        assert secret not in done.stdout + done.stderr
    assert _setup(url, database, tmp_path, **admin).returncode == 0  # idempotent
    assert _users(tmp_path) == users  # the same passwords
    assert _policies(url, database, _as("root", "root-secret-1"))["raw"]["default"] is True

    writer = _as("sanitel-ingest", users["sanitel-ingest"])
    reader = _as("sanitel-grafana", users["sanitel-grafana"])
    ts = (int(time.time()) - 3600) * 1000  # within `raw`'s 90 days
    point = f"odor,site_id=S,device_id=D nh3_ppm=1.5 {ts}".encode()
    wrote = httpx.post(f"{url}/write", params={"db": database, "precision": "ms", **writer},
                       content=point)
    assert wrote.status_code == 204
    read = httpx.post(f"{url}/query", data={"db": database, "q": "SELECT * FROM odor"},
                      params=writer)
    assert read.status_code == 403 or "error" in read.json()["results"][0]

    refused_write = httpx.post(f"{url}/write", params={"db": database, "precision": "ms",
                                                       **reader}, content=point)
    assert refused_write.status_code == 403
    got = httpx.post(f"{url}/query", data={"db": database, "q": "SELECT nh3_ppm FROM odor",
                                           "epoch": "ms"}, params=reader).json()["results"][0]
    assert got["series"][0]["values"] == [[ts, 1.5]]
    for statement in ('DROP MEASUREMENT "odor"', f'DROP DATABASE "{database}"',
                      f'DROP RETENTION POLICY "raw" ON "{database}"', "DROP SERIES FROM odor"):
        answer = httpx.post(f"{url}/query", data={"db": database, "q": statement}, params=reader)
        assert answer.status_code == 403 or "error" in answer.json()["results"][0], statement
    still = httpx.post(f"{url}/query", data={"db": database, "q": "SELECT count(nh3_ppm) FROM "
                                             "odor"}, params=reader).json()["results"][0]
    assert still["series"][0]["values"][0][1] == 1


def test_ingest_as_the_write_only_user_skips_setup_once_and_rolls_up_with_the_reader(
    userless_auth_influxd: Influxd, tmp_path: Path, run_ingest: Any, mqtt: Any
) -> None:
    url, database = userless_auth_influxd.url, "sanitation"
    admin = {"influx__admin_username": "root", "influx__admin_password": "root-secret-1"}
    assert _setup(url, database, tmp_path, **admin).returncode == 0
    users = _users(tmp_path)
    ingest = run_ingest(
        influx__url=url, influx__database=database, data_dir=tmp_path,
        influx__username="sanitel-ingest", influx__password=users["sanitel-ingest"],
        influx__read_username="sanitel-grafana", influx__read_password=users["sanitel-grafana"],
        retention__rollup_every_s=1)
    ts = int(time.time() * 1000) - 2 * 3_600_000  # two hours late
    for minute, entries in enumerate((3, 4, 5)):
        mqtt.publish("sanitation/v1/WC-0001/people_counter/WC-0001-PC-1/telemetry",
                     {"entries": entries, "ts": ts + minute * 60_000})
    reader = _as("sanitel-grafana", users["sanitel-grafana"])
    deadline, got = time.monotonic() + 30, []
    while not got and time.monotonic() < deadline:
        time.sleep(0.5)
        result = httpx.post(f"{url}/query", params=reader, data={
            "db": database, "q": 'SELECT entries_sum FROM "rollup"."people_flow_1h"'}).json()
        got = [row[1] for s in result["results"][0].get("series", []) for row in s["values"]]
    hour_split = (ts % 3_600_000) > 3_600_000 - 3 * 60_000
    assert sum(got) == 12 and (len(got) == 1 or hour_split)
    assert ingest.stop() == 0
    log = ingest.log()
    assert log.count("influx setup skipped") == 1, log[-2000:]
    for secret in users.values():
        assert secret not in log
