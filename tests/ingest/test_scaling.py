"""Scaling out: `store` workers in one MQTT shared subscription group split the readings,
nothing lost or stored twice; one `alerts` instance outside the group sees every reading
and keeps the incidents, so an incident fires once."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.streams import Stream, assert_every_reading_once, wait_all_stored

ODOR = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"


def received(log: str) -> int:
    match = re.search(r"sanitel ingest: stopped; (\d+) received", log)
    assert match, log[-2000:]
    return int(match.group(1))


def test_store_workers_split_the_load_and_one_alerts_instance_fires_once(
    run_ingest: Callable[..., Any], influxd: Any, mosquitto: Any, mqtt: Any,
) -> None:
    database = f"t_{uuid.uuid4().hex[:8]}"
    group = {"influx__database": database, "mqtt__shared_group": "sanitel"}
    workers = [run_ingest(pipeline__role="store", **group) for _ in range(2)]
    alerts = run_ingest(pipeline__role="alerts", **group)
    mqtt.subscribe("sanitation/v1/_alerts/#")

    stream = Stream(mosquitto.host, mosquitto.port, count=3000, rate=600).start()
    try:
        stream.wait_published()
        seqs = wait_all_stored(influxd, database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)

    start = int(time.time() * 1000) - 10 * 60_000  # NH3 held for 5 minutes of reading time
    for minute in range(6):
        mqtt.publish(ODOR, {"nh3_ppm": 3.0, "seq": 10_000 + minute, "ts": start + minute * 60_000})
    firing = mqtt.wait_for(lambda msgs: len(msgs) >= 1, timeout=20)
    time.sleep(1.5)  # a second incident (from a store worker) would show by now
    events = [json.loads(payload) for _, payload, _ in mqtt.messages]
    assert [(e["rule"], e["state"], e["device_id"]) for e in events] == [
        ("odor_nh3_high", "firing", "WC-0001-OD-1")
    ], firing

    for handle in [*workers, alerts]:
        assert handle.stop() == 0
    split = [received(worker.log()) for worker in workers]
    assert sum(split) == stream.count + 6 and all(share > 0 for share in split), split
    assert received(alerts.log()) == stream.count + 6
    assert "role alerts" in alerts.log() and "role store" in workers[0].log()
