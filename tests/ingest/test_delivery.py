"""At-least-once delivery (SPEC section 5): no good reading lost through InfluxDB outages,
ingest crashes, broker restarts and a full spool. Every test counts distinct points in
InfluxDB against what was published (with `seq`)."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.streams import Stream, assert_every_reading_once, wait_all_stored


def received_total(influxd: Any, db: str) -> int:
    rows = influxd.rows('SELECT sum("received") AS n FROM pipeline', db)
    return int(rows[0]["n"]) if rows else 0


def report(name: str, **figures: Any) -> None:
    print(f"\nDELIVERY {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def test_influxdb_down_30s_mid_stream(
    run_ingest: Callable[..., Any], fresh_influxd: Any, mosquitto: Any
) -> None:
    ingest = run_ingest(influx__url=fresh_influxd.url)
    stream = Stream(mosquitto.host, mosquitto.port, count=4000, rate=100).start()
    try:
        time.sleep(8)
        fresh_influxd.stop()
        time.sleep(30)
        assert ingest.proc.poll() is None
        fresh_influxd.start()
        back = time.monotonic()
        stream.wait_published()
        seqs = wait_all_stored(fresh_influxd, ingest.database, stream)
        replay_s = time.monotonic() - back
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert "spooling" in ingest.log() and "spool replayed" in ingest.log()
    assert ingest.stop() == 0
    report("influx-outage", published=stream.count, stored=len(seqs),
           lost=stream.count - len(set(seqs)), until_all_stored_s=round(replay_s, 1),
           received=received_total(fresh_influxd, ingest.database))


def test_ingest_killed_with_sigkill_several_times(
    run_ingest: Callable[..., Any], influxd: Any, mosquitto: Any
) -> None:
    ingest = run_ingest()
    stream = Stream(mosquitto.host, mosquitto.port, count=5000, rate=400).start()
    kills = 0
    try:
        for _ in range(3):
            time.sleep(2.5)
            ingest.stop(signal.SIGKILL)
            kills += 1
            time.sleep(0.5)
            ingest.restart()
        stream.wait_published()
        seqs = wait_all_stored(influxd, ingest.database, stream)
    finally:
        stream.close()
    assert kills == 3
    assert_every_reading_once(seqs, stream.count)
    assert ingest.stop() == 0
    report("sigkill-x3", published=stream.count, stored=len(seqs),
           lost=stream.count - len(set(seqs)))


def test_broker_restarted_mid_stream(
    run_ingest: Callable[..., Any], fresh_mosquitto: Any, influxd: Any
) -> None:
    ingest = run_ingest(mqtt__port=fresh_mosquitto.port)
    stream = Stream(fresh_mosquitto.host, fresh_mosquitto.port, count=4000, rate=400).start()
    try:
        time.sleep(3)
        fresh_mosquitto.stop()
        time.sleep(2)
        fresh_mosquitto.start()
        stream.wait_published()
        seqs = wait_all_stored(influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.log().count("connected to mqtt://") >= 2
    assert ingest.stop() == 0
    report("broker-restart", published=stream.count, stored=len(seqs),
           lost=stream.count - len(set(seqs)))


def test_spool_full_pauses_acknowledgement_and_drops_nothing(
    run_ingest: Callable[..., Any], fresh_influxd: Any, mosquitto: Any
) -> None:
    ingest = run_ingest(influx__url=fresh_influxd.url, spool__max_bytes=40_000,
                        influx__batch_size=200)
    fresh_influxd.stop()
    stream = Stream(mosquitto.host, mosquitto.port, count=3000, rate=1000).start()
    try:
        stream.wait_published()
        ingest.wait_log("no longer acknowledging", timeout=30)
        assert ingest.proc.poll() is None
        fresh_influxd.start()
        seqs = wait_all_stored(fresh_influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    ingest.wait_log("spool has room again", timeout=30)
    deadline = time.monotonic() + 15
    paused: list[Any] = []
    while time.monotonic() < deadline and not paused:
        paused = fresh_influxd.rows("SELECT paused FROM pipeline WHERE paused = true",
                                    ingest.database)
        time.sleep(0.2)
    assert paused, "the pipeline measurement never showed the pause"
    assert ingest.stop() == 0


def test_point_refused_by_influxdb_is_dead_lettered_others_stored(
    run_ingest: Callable[..., Any], influxd: Any, mqtt: Any, rows_of: Callable[..., Any]
) -> None:
    import httpx

    db = f"t_{uuid.uuid4().hex[:8]}"
    ts = int(time.time() * 1000) - 60_000
    influxd.query(f'CREATE DATABASE "{db}"')
    # Started first: its influx setup makes `raw` the default retention policy.
    ingest = run_ingest(influx__database=db, influx__flush_interval_ms=1000)
    # h2s_ppm already holds strings in this shard: a float h2s_ppm is a type conflict (400).
    httpx.post(f"{influxd.url}/write", params={"db": db, "precision": "ms"},
               content=f'odor,device_id=old h2s_ppm="n/a" {ts - 1000}'.encode()).raise_for_status()
    mqtt.subscribe("sanitation/v1/_dlq/#")
    topic = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"
    for seq in range(50):
        reading: dict[str, Any] = {"nh3_ppm": 1.0, "seq": seq, "ts": ts + seq}
        if seq == 25:
            reading["h2s_ppm"] = 0.5
        mqtt.publish(topic, reading)
    got = mqtt.wait_for(lambda m: any("storage_rejected" in t for t, _, _ in m))
    record = json.loads(next(p for t, p, _ in got if t.endswith("/storage_rejected")))
    assert record["topic"] == topic and '"seq": 25' in __import__("base64").b64decode(
        record["payload_b64"]).decode()
    rows = rows_of(f"SELECT seq FROM odor WHERE time >= {ts}ms", db, count=49)
    assert sorted(r["seq"] for r in rows) == [s for s in range(50) if s != 25]
    rejects = rows_of("SELECT sum(count) AS n FROM rejects WHERE reason = 'storage_rejected'", db)
    assert rejects[0]["n"] == 1
    assert ingest.stop() == 0


def test_unwritable_spool_pauses_instead_of_crashing(
    run_ingest: Callable[..., Any], fresh_influxd: Any, mosquitto: Any, tmp_path: Any
) -> None:
    spool_dir = tmp_path / "spool"
    ingest = run_ingest(influx__url=fresh_influxd.url, spool__dir=spool_dir)
    fresh_influxd.stop()
    # The spool directory replaced by a file: every append fails with an OSError (as it
    # would on a full or read-only disk, and also for root, whom permissions do not stop).
    spool_dir.rmdir()
    spool_dir.write_text("not a directory")
    stream = Stream(mosquitto.host, mosquitto.port, count=500, rate=500).start()
    try:
        stream.wait_published()
        ingest.wait_log("cannot write the spool", timeout=30)
        assert ingest.proc.poll() is None, ingest.log()[-2000:]
        spool_dir.unlink()
        spool_dir.mkdir()
        fresh_influxd.start()
        seqs = wait_all_stored(fresh_influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.stop() == 0


def test_started_before_the_broker_connects_when_it_comes(
    run_ingest: Callable[..., Any], fresh_mosquitto: Any, influxd: Any,
    rows_of: Callable[..., Any],
) -> None:
    fresh_mosquitto.stop()
    ingest = run_ingest(mqtt__port=fresh_mosquitto.port)  # "started" after 10 s without one
    assert "cannot reach the broker" in ingest.log() and "no broker after 10 s" in ingest.log()
    fresh_mosquitto.start()
    ingest.wait_log("subscribed to", timeout=40)
    stream = Stream(fresh_mosquitto.host, fresh_mosquitto.port, count=200, rate=400).start()
    try:
        stream.wait_published()
        seqs = wait_all_stored(influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.stop() == 0


def test_influxdb_down_at_start_database_created_when_it_comes(
    run_ingest: Callable[..., Any], fresh_influxd: Any, mosquitto: Any
) -> None:
    fresh_influxd.stop()
    ingest = run_ingest(influx__url=fresh_influxd.url)
    assert "cannot create database" in ingest.log()
    stream = Stream(mosquitto.host, mosquitto.port, count=500, rate=500).start()
    try:
        stream.wait_published()
        ingest.wait_log("spooling", timeout=20)
        fresh_influxd.start()
        seqs = wait_all_stored(fresh_influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.stop() == 0
