"""The rollup hours through the store stage (SPEC section 9), against a real influxd: a
batch's hours are on disk before its messages are acknowledged, whether the batch was
written or spooled; a spool replay notes the hours of what it wrote (its lines come
without their readings), before the spooled batch is removed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ingest.influx_writer import open_writer
from ingest.receiver import Arrival
from ingest.rollup_task import DirtyHours
from ingest.rollups import HOUR_MS
from ingest.settings import InfluxSettings, SpoolSettings
from ingest.spool import Spool
from ingest.store_stage import Batch, Store
from sanitel.local_servers import Influxd

H = 1_796_000_400_000 - 1_796_000_400_000 % HOUR_MS
TOPIC = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"
LINES = [
    f"odor,site_id=WC-0001,device_id=WC-0001-OD-1 nh3_ppm=1.5 {H + 10}",
    f"odor,site_id=WC-0001,device_id=WC-0001-OD-1 nh3_ppm=1.7 {H + HOUR_MS + 10}",
    f"people_flow,site_id=WC-0001,device_id=WC-0001-PC-1 entries=3i {H - 5}",
    f"pipeline,instance=a stored=3i {H}",  # the pipeline's own point: no rollup
]
#: What the pipeline notes for these readings as it builds their lines.
HOURS = {("odor", H), ("odor", H + HOUR_MS), ("people_flow", H - HOUR_MS)}
ROLLED_UP = {"odor": {H, H + HOUR_MS}, "people_flow": {H - HOUR_MS}}


def _batch() -> Batch:
    batch = Batch()
    for n, line in enumerate(LINES, 1):
        arrival = Arrival(TOPIC, b"{}", n, 1, 1, 0) if n < len(LINES) else None
        batch.add(line, arrival)
        if arrival is not None:
            batch.arrivals.append(arrival)
    batch.hours = set(HOURS)
    return batch


def _noted(path: Path) -> dict[str, set[int]]:
    return {name: hours for name, hours in DirtyHours(path).hours.items() if hours}


async def _store_one(store: Store, batch: Batch) -> None:
    await store.queue.put(batch)
    await store.queue.put(None)
    await asyncio.wait_for(store.run(), 30)


def test_a_batchs_hours_are_on_disk_before_its_acknowledgement_written_or_spooled(
    fresh_influxd: Influxd, tmp_path: Path
) -> None:
    settings = InfluxSettings(url=fresh_influxd.url, database="hours")
    seen_at_ack: list[dict[str, set[int]]] = []

    def run(state: Path, spool: Path) -> None:
        dirty = DirtyHours(state)

        def ack(arrivals: list[Arrival]) -> None:
            assert len(arrivals) == 3
            seen_at_ack.append(_noted(state))  # what a crash right now would leave

        async def scenario() -> None:
            async with open_writer(settings) as writer:
                store = Store(writer, Spool(spool, 1 << 20), SpoolSettings(), ack,
                              lambda d, o: None, 8, noted=dirty.add)
                await _store_one(store, _batch())

        asyncio.run(scenario())

    run(tmp_path / "written.json", tmp_path / "spool-1")
    fresh_influxd.stop()  # the next batch goes to the spool
    try:
        run(tmp_path / "spooled.json", tmp_path / "spool-2")
    finally:
        fresh_influxd.start()
    assert seen_at_ack == [ROLLED_UP, ROLLED_UP]
    assert Spool(tmp_path / "spool-2", 1 << 20).batches == 1
    assert not Spool(tmp_path / "spool-1", 1 << 20)


def test_a_spool_replay_notes_the_hours_of_what_it_wrote(
    fresh_influxd: Influxd, tmp_path: Path
) -> None:
    settings = InfluxSettings(url=fresh_influxd.url, database="replayed")
    spool_dir = tmp_path / "spool"
    fresh_influxd.stop()
    try:
        async def spooled() -> None:  # a first process spools a batch, noted elsewhere
            async with open_writer(settings) as writer:
                store = Store(writer, Spool(spool_dir, 1 << 20), SpoolSettings(),
                              lambda a: None, lambda d, o: None, 8)
                await _store_one(store, _batch())

        asyncio.run(spooled())
    finally:
        fresh_influxd.start()
    assert Spool(spool_dir, 1 << 20).batches == 1
    state = tmp_path / "after-restart.json"
    dirty = DirtyHours(state)
    spool_left: list[int] = []

    def noted(hours: set[tuple[str, int]]) -> None:
        spool_left.append(Spool(spool_dir, 1 << 20).batches)  # not yet removed
        dirty.add(hours)

    async def replayed() -> None:  # the next start replays it
        async with open_writer(settings) as writer:
            store = Store(writer, Spool(spool_dir, 1 << 20), SpoolSettings(),
                          lambda a: None, lambda d, o: None, 8, noted=noted)
            replaying = asyncio.create_task(store.replay())
            for _ in range(300):
                if not store.spool:
                    break
                await asyncio.sleep(0.05)
            replaying.cancel()
            assert store.figures.replayed == len(LINES)

    asyncio.run(replayed())
    assert spool_left == [1]
    assert _noted(state) == ROLLED_UP
    assert not Spool(spool_dir, 1 << 20)
