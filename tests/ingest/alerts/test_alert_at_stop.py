"""Alert events raised while `sanitel ingest` stops are stored and confirmed before it
exits, not left in the outbox to be published again at every start (issue 13). Real
mosquitto and influxd; InfluxDB slowed by a proxy so that stopping takes a while."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ingest.alerts.incident_db import store_path
from sanitel.local_servers import Influxd
from tests.ingest.influx_proxy import InfluxProxy

#: One odor sensor reporting every second: silent for 3 s, it is `offline`.
QUICK_CITY = {"sites": [{
    "id": "WC-0001", "kind": "toilet", "name": "People's Park North", "district": "Jinjiang",
    "lat": 30.657, "lon": 104.066,
    "devices": [{"id": "WC-0001-OD-1", "type": "odor", "interval_s": 1}],
}]}


def test_events_raised_while_stopping_are_stored_and_confirmed(
    run_ingest: Callable[..., Any], influxd: Influxd, tmp_path: Path
) -> None:
    registry = tmp_path / "quick.yaml"
    registry.write_text(yaml.safe_dump(QUICK_CITY))
    proxy = InfluxProxy(influxd.url)
    data_dir = tmp_path / "data"
    try:
        ingest = run_ingest(registry=registry, influx__url=proxy.url, data_dir=data_dir,
                            influx__timeout_s=30)
        time.sleep(1.5)
        # Stopping now takes ~8 s (the last write is slow); meanwhile the silent sensor
        # passes 3 intervals: its `offline` event must still be stored and confirmed.
        proxy.delay_s = 8
        assert ingest.stop(signal.SIGTERM, timeout=60) == 0
    finally:
        proxy.close()
    with sqlite3.connect(store_path(data_dir / "state")) as db:
        left = db.execute("SELECT event_id, event FROM outbox").fetchall()
    assert left == [], f"left in the outbox at exit: {left}\n{ingest.log()[-3000:]}"
    stored = influxd.rows("SELECT alert_id, state FROM alerts", ingest.database)
    incidents = {row["alert_id"] for row in stored}
    with sqlite3.connect(store_path(data_dir / "state")) as db:
        known = {row[0] for row in db.execute("SELECT alert_id FROM incidents")}
    assert known <= incidents  # every incident raised has its point in InfluxDB
