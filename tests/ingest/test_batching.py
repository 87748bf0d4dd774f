"""A backlog is written in whole batches: each write of the real `sanitel ingest` carries
`influx.batch_size` points, not a full one and a remainder (settings: "points per write")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sanitel.local_servers import Influxd
from tests.ingest.influx_proxy import InfluxProxy
from tests.streams import drain_backlog


@pytest.fixture
def proxy(influxd: Influxd) -> Iterator[InfluxProxy]:
    server = InfluxProxy(influxd.url)
    yield server
    server.close()


def test_a_backlog_goes_in_writes_of_batch_size_points(
    run_ingest: Callable[..., Any], influxd: Influxd, proxy: InfluxProxy, mosquitto: Any
) -> None:
    batch_size = 1500  # below the pipeline's slice of 2,000 arrivals, and no divisor of it
    points_per_write: list[int] = []

    def count(body: bytes) -> None:  # forwards every write; notes its points
        points_per_write.append(body.rstrip(b"\n").count(b"\n") + 1)

    proxy.refuse = count
    ingest = run_ingest(influx__url=proxy.url, influx__batch_size=batch_size)
    drain_backlog(ingest, influxd, mosquitto.host, mosquitto.port, count=21_000, rate=10_000)
    assert ingest.stop() == 0
    assert max(points_per_write) <= batch_size
    # 21,000 readings are 14 full writes. Short ones are allowed where the backlog is not a
    # backlog yet (the first arrivals, flushed at the interval) and at its end.
    full = [n for n in points_per_write if n == batch_size]
    short = [n for n in points_per_write if n < batch_size]
    assert len(full) >= 12, points_per_write
    assert len(short) <= 4 + 2, points_per_write  # + the stop's last points
