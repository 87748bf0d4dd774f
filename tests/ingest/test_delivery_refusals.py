"""The real `sanitel ingest` against InfluxDB refusing in ways that are not "down" (SPEC
section 5, v1.1): bodies too large (a real influxd with `max-body-size`), and refused
credentials (a real influxd with auth on)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sanitel.local_servers import Influxd, free_port
from tests.streams import Stream, assert_every_reading_once, drain_backlog, wait_all_stored


@pytest.fixture
def small_body_influxd(tmp_path: Path) -> Iterator[Influxd]:
    with Influxd(tmp_path / "influxd-small", max_body_size=20_000) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def auth_influxd(tmp_path: Path) -> Iterator[Influxd]:
    with Influxd(tmp_path / "influxd-auth", auth_enabled=True) as server:
        yield server  # type: ignore[misc]


def test_bodies_beyond_influxdbs_max_body_size_are_split_and_all_stored(
    run_ingest: Callable[..., Any], small_body_influxd: Influxd, mosquitto: Any
) -> None:
    # The case: with batch_size 100, a backlog still came in batches of up to
    # 2,000 readings, bodies passed 20 KB, and InfluxDB answered 413 for ever. Now a write
    # carries at most 100 points (~12 KB here).
    ingest = run_ingest(influx__url=small_body_influxd.url, influx__batch_size=100)
    drain_backlog(ingest, small_body_influxd, mosquitto.host, mosquitto.port, count=5000,
                  rate=5000, timeout=60)
    assert "HTTP 413" not in ingest.log()
    assert ingest.stop() == 0


def test_a_413_with_the_default_batch_size_splits_until_it_fits(
    run_ingest: Callable[..., Any], small_body_influxd: Influxd, mosquitto: Any
) -> None:
    ingest = run_ingest(influx__url=small_body_influxd.url)
    stream = Stream(mosquitto.host, mosquitto.port, count=5000, rate=2500).start()
    try:
        stream.wait_published()
        seqs = wait_all_stored(small_body_influxd, ingest.database, stream, timeout=60)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.log().count("too large (HTTP 413)") <= 3, ingest.log()[-3000:]
    assert "storage_rejected" not in ingest.log()
    assert ingest.stop() == 0


def test_refused_credentials_keep_readings_said_once_and_counted(
    run_ingest: Callable[..., Any], auth_influxd: Influxd, mosquitto: Any, tmp_path: Path
) -> None:
    db = f"t_{uuid.uuid4().hex[:10]}"
    auth_influxd.query(f'CREATE DATABASE "{db}"', db="")
    user, password = auth_influxd.admin
    same = {"influx__url": auth_influxd.url, "influx__database": db,
            "influx__username": user, "data_dir": tmp_path / "data",
            "mqtt__client_id": f"ingest-{uuid.uuid4().hex[:8]}"}
    port = free_port()
    ingest = run_ingest(influx__password="wrong", http__port=port, **same)
    stream = Stream(mosquitto.host, mosquitto.port, count=1000, rate=500).start()
    try:
        stream.wait_published()
        time.sleep(6)  # retries every 0.2-1 s meanwhile
        assert ingest.proc.poll() is None
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
        assert "influxdb_credentials_refused" in ready["warnings"] + ready["reasons"], ready
        log = ingest.log()
        assert log.count("refused our credentials") == 1, log[-3000:]
        assert "(HTTP 401)" in log
        assert ingest.stop() == 0
        fixed = run_ingest(influx__password=password, **same)
        seqs = wait_all_stored(auth_influxd, db, stream, timeout=60)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    refused = auth_influxd.rows(
        "SELECT credentials_refused, credentials_refusals FROM pipeline "
        "WHERE credentials_refused = true", db)
    assert refused and sum(row["credentials_refusals"] for row in refused) >= 3
    assert fixed.stop() == 0
