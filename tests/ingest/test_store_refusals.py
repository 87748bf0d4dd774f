"""The store stage against InfluxDB refusing in ways that are not "down" (SPEC section 5,
v1.1): 413 splits, other 4xx never hold up the batches behind, InfluxDB going away while
a batch is halved spools only what is left, and a point refused on replay keeps its
message's topic and payload. A real influxd, sometimes behind a proxy that answers for it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import spool_record
from ingest.influx_writer import (
    BodyTooLarge,
    CredentialsRefused,
    V1Writer,
    WriteRejected,
    WriteUnavailable,
    _raise_for,
)
from ingest.receiver import Arrival
from ingest.settings import InfluxSettings, SpoolSettings
from ingest.spool import Spool
from ingest.store_stage import Batch, Store
from ingest.write_pieces import pieces
from sanitel.local_servers import Influxd
from tests.ingest.influx_proxy import InfluxProxy

TOPIC = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"


@pytest.fixture(scope="module")
def small_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """InfluxDB answering 413 to bodies above 20,000 bytes, as in the issue."""
    with Influxd(tmp_path_factory.mktemp("influxd-small"), max_body_size=20_000) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def proxy(influxd: Influxd) -> Iterator[InfluxProxy]:
    server = InfluxProxy(influxd.url)
    yield server
    server.close()


class Harness:
    """A Store on a real writer and spool, recording acks and dead letters."""

    def __init__(self, url: str, db: str, spool_dir: Path, **limits: int) -> None:
        self.url, self.db, self.spool_dir, self.limits = url, db, spool_dir, limits
        self.rejects: list[tuple[str, Arrival | None]] = []
        self.acked: list[Arrival] = []

    def store(self, writer: V1Writer) -> Store:
        return Store(
            writer, Spool(self.spool_dir, 1 << 24),
            SpoolSettings(retry_min_s=0.05, retry_max_s=0.2),
            self.acked.extend, lambda detail, origin: self.rejects.append((detail, origin)),
            8, **self.limits,
        )

    async def run(self, *batches: Batch, replay_s: float = 0.0) -> Store:
        settings = InfluxSettings(url=self.url, database=self.db)
        async with V1Writer(settings) as writer:
            store = self.store(writer)
            for batch in batches:
                await store.queue.put(batch)
            await store.queue.put(None)
            await store.run()
            if replay_s:
                replaying = asyncio.create_task(store.replay())
                deadline = time.monotonic() + replay_s
                while store.spool and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                replaying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await replaying
            return store


def arrival(seq: int, ts: int) -> Arrival:
    return Arrival(TOPIC, f'{{"seq": {seq}, "ts": {ts}}}'.encode(), seq + 1, 1, 1, ts)


def readings(count: int, ts: int, odd: dict[int, str] | None = None) -> Batch:
    batch = Batch()
    for seq in range(count):
        fields = (odd or {}).get(seq, f"nh3_ppm=1.5,seq={seq}i")
        origin = arrival(seq, ts + seq)
        batch.add(f"odor,device_id=WC-0001-OD-1 {fields} {ts + seq}", origin)
        batch.arrivals.append(origin)
    return batch


def stored_seqs(influxd: Influxd, db: str) -> list[int]:
    return sorted(row["seq"] for row in influxd.rows("SELECT seq FROM odor", db))


def new_db(influxd: Influxd) -> str:
    db = f"t_{uuid.uuid4().hex[:10]}"
    influxd.query(f'CREATE DATABASE "{db}"', db="")
    return db


def conflicting_db(influxd: Influxd, ts: int) -> str:
    """A database where `h2s_ppm` holds strings: a float h2s_ppm is refused with a 400."""
    db = new_db(influxd)
    httpx.post(f"{influxd.url}/write", params={"db": db, "precision": "ms"},
               content=f'odor,device_id=old h2s_ppm="n/a" {ts - 1000}'.encode()).raise_for_status()
    return db


# ------------------------------------------------------------------ outcomes of statuses


@pytest.mark.parametrize(("status", "kind"), [
    (400, WriteRejected), (422, WriteRejected), (409, WriteRejected), (415, WriteRejected),
    (413, BodyTooLarge), (401, CredentialsRefused), (403, CredentialsRefused),
    (404, WriteUnavailable), (429, WriteUnavailable), (500, WriteUnavailable),
    (503, WriteUnavailable),
])
def test_each_status_has_its_outcome(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind) as caught:
        _raise_for(status, "why", "InfluxDB at x", 123)
    assert type(caught.value) is kind and str(status) in str(caught.value)


def test_refused_credentials_are_kept_and_a_413_is_a_refusal() -> None:
    assert issubclass(CredentialsRefused, WriteUnavailable)  # kept in the spool
    assert issubclass(BodyTooLarge, WriteRejected)  # split, a single point dead-lettered


@given(st.lists(st.text(min_size=1, max_size=300), max_size=200),
       st.integers(1, 50), st.integers(1, 3000))
def test_pieces_bound_points_and_bytes_and_keep_the_order(
    lines: list[str], max_points: int, max_bytes: int
) -> None:
    ranges = pieces(lines, max_points, max_bytes) if lines else []
    covered = [index for start, end in ranges for index in range(start, end)]
    assert covered == list(range(len(lines)))
    for start, end in ranges:
        assert 1 <= end - start <= max_points
        body = "\n".join(lines[start:end]).encode()
        assert len(body) <= max_bytes or end - start == 1


# ------------------------------------------------------------------ 413 from a real influxd


def test_413_splits_the_batch_until_it_fits(small_influxd: Influxd, tmp_path: Path) -> None:
    db, ts = new_db(small_influxd), int(time.time() * 1000) - 60_000
    harness = Harness(small_influxd.url, db, tmp_path / "spool")
    # 3,000 points of ~60 bytes: one body of ~180 KB, nine times InfluxDB's bound.
    store = asyncio.run(harness.run(readings(3000, ts), readings(500, ts + 10_000)))
    assert stored_seqs(small_influxd, db) == sorted([*range(3000), *range(500)])
    assert (store.figures.stored, harness.rejects, bool(store.spool)) == (3500, [], False)
    assert store.max_bytes <= 20_000  # learnt from the 413: later batches fit at once
    assert len(harness.acked) == 3500


def test_a_point_too_large_alone_is_dead_lettered(small_influxd: Influxd, tmp_path: Path) -> None:
    db, ts = new_db(small_influxd), int(time.time() * 1000) - 60_000
    harness = Harness(small_influxd.url, db, tmp_path / "spool")
    huge = f'nh3_ppm=1.5,seq=7i,note="{"x" * 30_000}"'
    store = asyncio.run(harness.run(readings(20, ts, {7: huge})))
    assert stored_seqs(small_influxd, db) == [s for s in range(20) if s != 7]
    assert len(harness.rejects) == 1 and store.figures.storage_rejected == 1
    detail, origin = harness.rejects[0]
    assert "413" in detail and "too large" in detail
    assert origin is not None and origin.topic == TOPIC and b'"seq": 7' in origin.payload
    assert not store.spool


def test_max_body_bytes_bounds_every_write(influxd: Influxd, proxy: InfluxProxy,
                                           tmp_path: Path) -> None:
    db, ts = new_db(influxd), int(time.time() * 1000) - 60_000
    harness = Harness(proxy.url, db, tmp_path / "spool", max_points=100, max_bytes=5_000)
    asyncio.run(harness.run(readings(2000, ts)))
    assert stored_seqs(influxd, db) == list(range(2000))
    sizes = [size for size, status in proxy.bodies]
    assert max(sizes) <= 5_000 and all(status == 204 for _, status in proxy.bodies)
    assert len(sizes) >= 2000 * 55 // 5_000


# ------------------------------------------------------------------ statuses that never pass


def test_a_batch_refused_with_another_4xx_never_holds_up_the_ones_behind(
    influxd: Influxd, proxy: InfluxProxy, tmp_path: Path
) -> None:
    db, ts = new_db(influxd), int(time.time() * 1000) - 60_000
    proxy.refuse = lambda body: 409 if b"poison" in body else None
    harness = Harness(proxy.url, db, tmp_path / "spool")
    first = readings(10, ts, {4: 'nh3_ppm=1.5,seq=4i,tag="poison"'})
    second = readings(10, ts + 1000)
    store = asyncio.run(harness.run(first, second))
    assert stored_seqs(influxd, db) == sorted([*(s for s in range(10) if s != 4), *range(10)])
    assert [origin.payload for _, origin in harness.rejects if origin] == [
        first.origins[4].payload  # type: ignore[union-attr]
    ]
    assert "409" in harness.rejects[0][0] and not store.spool and len(harness.acked) == 20


# ------------------------------------------------------------------ outage while halving


def test_influxdb_going_away_mid_halving_spools_only_what_is_left(
    influxd: Influxd, proxy: InfluxProxy, tmp_path: Path
) -> None:
    db, ts = new_db(influxd), int(time.time() * 1000) - 60_000
    # Point 1 is refused (400, nothing of the body stored, as InfluxDB 2.x/3.x do).
    # Writes: [0:8] 400, [0:4] 400, [0:2] 400, [0:1] ok, [1:2] 400 -> dead letter,
    # [2:4] ok, then InfluxDB is gone for [4:8].
    proxy.refuse = lambda body: 400 if b"bad=" in body else None
    proxy.writes_left = 2
    bad = "nh3_ppm=1.5,seq=1i,bad=1i"
    harness = Harness(proxy.url, db, tmp_path / "spool")
    store = asyncio.run(harness.run(readings(8, ts, {1: bad})))
    assert stored_seqs(influxd, db) == [0, 2, 3]
    assert len(harness.rejects) == 1 and len(harness.acked) == 8
    oldest = store.spool.oldest()
    assert oldest is not None and store.spool.batches == 1
    lines, origins = spool_record.decode(oldest[1], "spooled")
    assert [line.split("seq=")[1].split("i")[0] for line in lines] == ["4", "5", "6", "7"]
    assert [o.topic for o in origins if o] == [TOPIC] * 4
    # InfluxDB is back: a new process replays the rest; nothing is dead-lettered twice.
    proxy.writes_left = None
    again = Harness(proxy.url, db, tmp_path / "spool")
    replayed = asyncio.run(again.run(replay_s=10))
    assert stored_seqs(influxd, db) == [0, 2, 3, 4, 5, 6, 7]
    assert again.rejects == [] and replayed.figures.stored == 4 and not replayed.spool


# ------------------------------------------------------------------ refused on replay


def test_a_point_refused_on_replay_keeps_its_topic_and_payload(
    influxd: Influxd, proxy: InfluxProxy, tmp_path: Path
) -> None:
    ts = int(time.time() * 1000) - 60_000
    db = conflicting_db(influxd, ts)
    proxy.writes_left = 0  # InfluxDB away: everything goes to the spool
    harness = Harness(proxy.url, db, tmp_path / "spool")
    batch = readings(6, ts, {3: "nh3_ppm=1.5,seq=3i,h2s_ppm=0.5"})
    batch.add(f"pipeline,instance=a received=6i {ts}")  # the pipeline's own point
    asyncio.run(harness.run(batch))
    assert harness.rejects == [] and len(harness.acked) == 6
    proxy.writes_left = None
    again = Harness(proxy.url, db, tmp_path / "spool")
    asyncio.run(again.run(replay_s=10))
    assert stored_seqs(influxd, db) == [0, 1, 2, 4, 5]
    [(detail, origin)] = again.rejects
    assert origin is not None and "400" in detail
    assert (origin.topic, origin.payload, origin.received_ms) == (
        TOPIC, f'{{"seq": 3, "ts": {ts + 3}}}'.encode(), ts + 3)


def test_an_unreadable_spool_file_is_set_aside_and_the_next_replayed(
    influxd: Influxd, tmp_path: Path
) -> None:
    db, ts = new_db(influxd), int(time.time() * 1000) - 60_000
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.append(spool_record.MARKER + b"{not json")
    spool.append(spool_record.encode(*_lines_and_origins(readings(5, ts))))
    harness = Harness(influxd.url, db, tmp_path / "spool")
    store = asyncio.run(harness.run(replay_s=10))
    assert stored_seqs(influxd, db) == list(range(5)) and not store.spool
    assert [p.suffix for p in (tmp_path / "spool").iterdir()] == [".unreadable"]


def test_spool_files_of_the_earlier_release_still_replay(influxd: Influxd,
                                                          tmp_path: Path) -> None:
    db, ts = new_db(influxd), int(time.time() * 1000) - 60_000
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.append("\n".join(readings(5, ts).lines).encode())  # plain line protocol
    store = asyncio.run(Harness(influxd.url, db, tmp_path / "spool").run(replay_s=10))
    assert stored_seqs(influxd, db) == list(range(5)) and not store.spool


def _lines_and_origins(batch: Batch) -> tuple[list[str], list[Any]]:
    return batch.lines, batch.origins
