"""The drain's storage limit (`benchmarks/storage_limit.py`): the points it posts are the
ones `sanitel ingest` stores for the backlog (one per good reading, SPEC section 5), and
all of them reach the real influxd."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from benchmarks.storage_limit import lines, main
from benchmarks.traffic import MEASUREMENTS, city_registry, city_traffic
from devices.sites import Registry
from sanitel.local_servers import Influxd

START_MS = 1_796_000_000_000


@pytest.fixture(scope="module")
def city() -> tuple[Registry, int, list[str]]:
    registry = Registry.from_dict(city_registry(12, seed=5))
    traffic = city_traffic(registry, 800, seed=5, bad_share=0.1, duplicate_share=0.05)
    return registry, traffic.good, lines(traffic, registry, START_MS)


def _key(line: str) -> tuple[str, str]:
    """A point's identity: its series (measurement and tags) and its time."""
    series, _, rest = line.partition(" ")
    return series, rest.rpartition(" ")[2]


def test_one_point_per_good_reading_and_none_for_the_bad(
    city: tuple[Registry, int, list[str]],
) -> None:
    registry, good, points = city
    assert good > 500  # the traffic holds bad readings and duplicates besides
    assert len({_key(line) for line in points}) == good
    for line in points:
        measurement, _, tags = line.partition(" ")[0].partition(",")
        assert measurement in MEASUREMENTS
        device = dict(tag.split("=", 1) for tag in tags.split(","))["device_id"]
        assert device in registry.devices
        assert " seq=" in line or ",seq=" in line


def test_every_point_is_written_in_bodies_of_the_batch(
    city: tuple[Registry, int, list[str]], influxd: Influxd, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, good, points = city
    db = f"storage_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{db}"')
    path = tmp_path / "points.lp"
    path.write_text("\n".join(points))
    main(["--influx", influxd.url, "--database", db, "--lines", str(path), "--batch", "100",
          "--in-flight", "2"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["connected", "done"]
    assert events[1]["writes"] == -(-len(points) // 100)
    assert events[1]["errors"] == 0
    stored = 0
    for measurement in MEASUREMENTS:
        rows = influxd.rows(f'SELECT count("seq") FROM "{measurement}"', db=db)
        stored += rows[0]["count"] if rows else 0
    assert stored == good
