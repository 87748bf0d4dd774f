"""The drain's clock (`benchmarks/write_relay.py`) against the real influxd: every request
reaches InfluxDB as sent, every answer comes back as InfluxDB gave it, and only the
writes InfluxDB took are noted, with the reading lines they held."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from benchmarks.write_relay import WriteRelay, reading_lines, reading_times_ms
from sanitel.local_servers import Influxd

MEASUREMENTS = ("odor", "people_flow")


@pytest.fixture
def db(influxd: Influxd) -> str:
    name = f"relay_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{name}"')
    return name


@pytest.fixture
def relay(influxd: Influxd) -> Iterator[WriteRelay]:
    with WriteRelay(influxd.url, MEASUREMENTS) as running:
        yield running


def odor_lines(first: int, count: int) -> list[str]:
    return [f"odor,device_id=od-{i % 7},site_id=s1 nh3_ppm={i / 10},seq={i}i "
            f"{1_700_000_000_000 + i}" for i in range(first, first + count)]


def test_writes_pass_through_and_are_noted_with_their_readings(
    influxd: Influxd, relay: WriteRelay, db: str
) -> None:
    # Lines the clock must not count: another measurement, and a reading-measurement point
    # without `seq` (the pipeline's own points are not readings).
    others = ["sanitel_pipeline,instance=a received=5i 1700000000000",
              "people_flow,device_id=pc-1,site_id=s1 in=3i 1700000000001"]
    before = time.time()
    with httpx.Client() as client:  # one keep-alive connection, as the consumers use
        for chunk in (odor_lines(0, 300), odor_lines(300, 200) + others):
            answer = client.post(f"{relay.url}/write", params={"db": db, "precision": "ms"},
                                 content="\n".join(chunk).encode())
            assert answer.status_code == 204
    after = time.time()

    writes = relay.writes(db)
    assert [n for _, n in writes.answered] == [300, 200]
    assert writes.readings == 500
    times = [t for t, _ in writes.answered]
    assert before <= times[0] <= times[1] <= after
    rows = influxd.rows('SELECT count(seq) FROM "odor"', db)
    assert rows[0]["count"] == 500
    assert influxd.rows('SELECT count("in") FROM "people_flow"', db)[0]["count"] == 1
    assert relay.writes("another_db").answered == []


def test_a_chunked_body_is_relayed_whole(influxd: Influxd, relay: WriteRelay, db: str) -> None:
    lines = odor_lines(0, 1000)

    def body() -> Iterator[bytes]:  # a generator: httpx sends it chunked
        for start in range(0, len(lines), 333):
            yield ("\n".join(lines[start:start + 333]) + "\n").encode()

    answer = httpx.post(f"{relay.url}/write", params={"db": db, "precision": "ms"},
                        content=body())
    assert answer.status_code == 204
    assert relay.writes(db).readings == 1000
    assert influxd.rows('SELECT count(seq) FROM "odor"', db)[0]["count"] == 1000


def test_a_refused_write_comes_back_as_influxdb_said_and_is_not_noted(
    relay: WriteRelay, db: str
) -> None:
    answer = httpx.post(f"{relay.url}/write", params={"db": db},
                        content=b"odor,device_id=x nh3_ppm= 1")
    assert answer.status_code == 400
    assert "unable to parse" in answer.json()["error"]
    missing = httpx.post(f"{relay.url}/write", params={"db": f"{db}_missing"},
                         content="\n".join(odor_lines(0, 3)).encode())
    assert missing.status_code == 404
    assert relay.writes(db).answered == []
    assert relay.writes(f"{db}_missing").answered == []


def test_queries_pass_through(relay: WriteRelay, db: str) -> None:
    answer = httpx.get(f"{relay.url}/query", params={"q": "SHOW DATABASES"})
    assert answer.status_code == 200
    names = [v[0] for v in answer.json()["results"][0]["series"][0]["values"]]
    assert db in names


def test_reading_lines_counts_only_readings_of_the_measurements() -> None:
    measurements = frozenset({b"odor"})
    body = b"\n".join([
        b"odor,device_id=a v=1,seq=1i 1",
        b"odor v=1,seq=2i 2",            # no tags: still the measurement
        b"odorless,device_id=a seq=1i 1",  # a longer name that starts alike
        b"odor,device_id=a v=1 3",        # no seq
        b"",
    ])
    assert reading_lines(body, measurements) == 2


def test_latencies_are_answer_time_less_each_readings_timestamp(
    influxd: Influxd, db: str
) -> None:
    with WriteRelay(influxd.url, MEASUREMENTS, latencies=True) as relay:
        sent_ms = int(time.time() * 1000) - 250  # readings sent a quarter second ago
        lines = [f"odor,device_id=od-{i} nh3_ppm=1.5,seq={i}i {sent_ms + i}" for i in range(5)]
        lines.append(f"sanitel_pipeline,instance=a received=5i {sent_ms}")  # not a reading
        answer = httpx.post(f"{relay.url}/write", params={"db": db, "precision": "ms"},
                            content="\n".join(lines).encode())
        assert answer.status_code == 204
        done_ms = time.time() * 1000
        # a reading sent two seconds ago, in seconds precision
        body = f"odor,device_id=od-9 nh3_ppm=1.5,seq=9i {(sent_ms - 2000) // 1000}".encode()
        assert httpx.post(f"{relay.url}/write", params={"db": db, "precision": "s"},
                          content=body).status_code == 204
        second_done_ms = time.time() * 1000
    writes = relay.writes(db)
    assert writes.readings == 6 == relay.readings(db)
    first, second = writes.latencies_ms[:5], writes.latencies_ms[5:]
    for i, latency in enumerate(first):
        assert 250 - i <= latency <= done_ms - sent_ms - i
    # whole seconds: the timestamp was cut by up to 999 ms, so the latency grows by as much;
    # the answer came before second_done_ms, however long a loaded machine took to give it
    assert len(second) == 1
    assert 2000 + 250 <= second[0] <= 2000 + (second_done_ms - sent_ms) + 1000


def test_reading_times_follow_the_precision_and_skip_lines_without_one() -> None:
    measurements = frozenset({b"odor"})
    body = b"\n".join([
        b"odor,device_id=a v=1,seq=1i 1700000000123",
        b'odor,device_id=a note="a b c",seq=2i 1700000000124',  # spaces in a string field
        b"odor,device_id=a v=1,seq=3i",                          # no time: InfluxDB's own
        b"people_flow,device_id=a in=1i,seq=4i 1700000000125",   # another measurement
    ])
    assert reading_times_ms(body, measurements, "ms") == [1700000000123, 1700000000124]
    assert reading_times_ms(b"odor v=1,seq=1i 1700000000", measurements, "s") == [
        1700000000000]
    assert reading_times_ms(b"odor v=1,seq=1i 1700000000000000000", measurements, "") == [
        1700000000000]
