"""The rollup task's parts: which hours a written body touched, spans of hours, a
meter's hourly use, and the v2 path (InfluxQL reads, rollup points through the v2 write
API; victoria-metrics, the v2 server here, does not keep the bucket's name)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from ingest.influxql_client import AsyncInfluxQL, Credentials
from ingest.rollup_task import DirtyHours, Rollups, open_rollup_writer
from ingest.rollups import HOUR_MS, meter_use, spans, touched_hours
from ingest.settings import InfluxSettings
from sanitel.local_servers import Influxd, VictoriaMetrics

H = 1_796_000_400_000 - 1_796_000_400_000 % HOUR_MS


def test_written_hours_are_noted_per_measurement_and_kept_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "state" / "rollup-hours.json"
    dirty = DirtyHours(path)
    dirty.add(touched_hours([
        f"odor,site_id=A,device_id=A1 nh3_ppm=1.0 {H + 5}",
        f"odor,site_id=A,device_id=A1 nh3_ppm=1.0 {H + HOUR_MS + 5}",
        f"people_flow,site_id=A,device_id=A2 entries=1i {H - 1}",
        f"alerts,site_id=A,rule=x state=\"firing\" {H}",  # not rolled up
        f"pipeline,instance=i stored=5i {H}",
    ]))
    assert dirty.hours["odor"] == {H, H + HOUR_MS}
    assert dirty.hours["people_flow"] == {H - HOUR_MS}
    assert not dirty.hours["station"] and not dirty.hours["toilet"]
    again = DirtyHours(path)  # a crash after the write loses nothing
    assert again.hours == dirty.hours
    taken = again.take()
    assert not again and taken["odor"] == {H, H + HOUR_MS}
    again.add({("station", H), ("alerts", H)})  # a name that is not rolled up is let go
    assert DirtyHours(path).hours["odor"] == {H, H + HOUR_MS}  # still there while recomputed
    again.done()
    after = DirtyHours(path)
    assert not after.hours["odor"] and after.hours["station"] == {H}


@given(st.sets(st.integers(0, 500), max_size=60), st.integers(1, 48))
def test_spans_cover_exactly_the_hours_in_runs(hours: set[int], longest: int) -> None:
    starts = {H + h * HOUR_MS for h in hours}
    covered: set[int] = set()
    for start, end in spans(starts, longest):
        assert 0 < end - start <= longest * HOUR_MS
        covered |= set(range(start, end, HOUR_MS))
    assert covered == starts


def test_meter_use_starts_from_the_reading_before_the_hour() -> None:
    assert meter_use(13.0, 10.0, 12.5) == 3.0
    assert meter_use(13.0, None, 12.5) == 0.5  # no earlier reading: within the hour
    assert meter_use(2.0, 10.0, 2.0) == 0.0  # a replaced meter: never negative
    assert meter_use(None, 10.0, None) is None


def test_v2_rollup_points_go_through_the_v2_write_api_to_the_rollup_bucket(
    influxd: Influxd, victoria: VictoriaMetrics
) -> None:
    database = f"t_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{database}"')
    # Where an InfluxDB 2.x maps the `rollup` policy (DBRP): read by the daily figures.
    influxd.query(f'CREATE RETENTION POLICY "rollup" ON "{database}" DURATION 1825d '
                  "REPLICATION 1")
    hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS - HOUR_MS
    site = f"S{uuid.uuid4().hex[:6]}"
    body = "\n".join(
        f"people_flow,site_id={site},device_id={site}-PC,district=D,site_kind=toilet "
        f"entries={n}i,occupancy={n}i {hour + n * 60_000}" for n in range(1, 11))
    httpx.post(f"{influxd.url}/write", params={"db": database, "precision": "ms"},
               content=body.encode()).raise_for_status()
    v2 = InfluxSettings(api="v2", url=victoria.url, database=database, token="t0k")  # type: ignore[arg-type]

    async def run() -> int:
        reader = AsyncInfluxQL(influxd.url, Credentials())
        try:
            async with open_rollup_writer(v2) as writer:
                return await Rollups(v2, reader, writer).recompute({"people_flow": {hour}})
        finally:
            await reader.aclose()

    assert asyncio.run(run()) == 1
    series: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not series and time.monotonic() < deadline:
        series = victoria.export(f'{{__name__="people_flow_1h_entries_sum",site_id="{site}"}}')
    (only,) = series
    assert only["values"] == [55] and only["timestamps"] == [hour]
    assert only["metric"]["device_id"] == f"{site}-PC" and only["metric"]["district"] == "D"


def _plain_hours(body: bytes) -> dict[str, set[int]]:
    """The hours a body touches, plainly: each line's measurement (up to the first comma)
    and its time (the last field), per rolled-up measurement."""
    hours: dict[str, set[int]] = {}
    for line in body.decode().split("\n"):
        measurement = line.split(",", 1)[0]
        if measurement in ("people_flow", "odor", "station", "sprayer", "toilet"):
            hours.setdefault(measurement, set()).add(int(line.split(" ")[-1]) // HOUR_MS
                                                     * HOUR_MS)
    return hours


_tag_text = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=8)


@given(st.lists(st.tuples(
    st.sampled_from(["people_flow", "odor", "station", "sprayer", "toilet", "alerts",
                     "rejects", "pipeline", "odorx", "sites"]),
    st.lists(st.tuples(_tag_text, _tag_text), min_size=1, max_size=3),
    st.sampled_from(['nh3_ppm=1.5', 'entries=3i', 'cleaned_by="Li Wei"', 'x=1.0,y=2i']),
    st.integers(0, 4_102_444_800_000)), min_size=1, max_size=40))
def test_noted_hours_are_the_plain_formula(lines: list[tuple[str, list[tuple[str, str]],
                                                             str, int]]) -> None:
    body = "\n".join(
        f"{name},{','.join(f'{k}={v}' for k, v in tags)} {fields} {ts}"
        for name, tags, fields, ts in lines).encode()
    dirty = DirtyHours(None)
    dirty.add(touched_hours(body.decode().split("\n")))
    assert {name: hours for name, hours in dirty.hours.items() if hours} == _plain_hours(body)
