"""A steady stream of QoS 1 odor readings, and checks that every one was stored once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

DEVICES = [("WC-0001", "odor", "WC-0001-OD-1"), ("TS-0001", "odor", "TS-0001-OD-1")]


class Stream:
    """Publishes `count` odor readings at `rate`/s from its own thread, QoS 1, each with a
    distinct (device, ts) and a global `seq`; survives broker restarts (paho reconnects)."""

    def __init__(self, host: str, port: int, count: int, rate: float) -> None:
        self.count, self.rate = count, rate
        self.base = int(time.time() * 1000) - 7 * 86_400_000
        self.sent = 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"stream-{uuid.uuid4().hex[:6]}",
                                  clean_session=False)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)
        self._acked: set[int] = set()
        self._mids: list[int] = []
        self.client.on_publish = lambda c, u, mid, rc, p: self._acked.add(mid)
        self.client.connect(host, port)
        self.client.loop_start()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Stream:
        self.thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        for seq in range(self.count):
            site, dtype, dev = DEVICES[seq % len(DEVICES)]
            payload = json.dumps({"nh3_ppm": round(seq % 100 * 0.5, 2), "seq": seq,
                                  "ts": self.base + seq})
            # While the broker is away paho queues the message and sends it on reconnect.
            self._mids.append(self.client.publish(
                f"sanitation/v1/{site}/{dtype}/{dev}/telemetry", payload, qos=1).mid)
            self.sent = seq + 1
            delay = started + (seq + 1) / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def wait_published(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._acked.issuperset(self._mids):
            time.sleep(0.1)
        assert self._acked.issuperset(self._mids), "the broker did not take every reading"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stored_seqs(influxd: Any, db: str, base: int) -> list[int]:
    from tests.conftest import rows_or_none_yet

    rows = rows_or_none_yet(influxd, f"SELECT seq FROM odor WHERE time >= {base}ms", db)
    return [row["seq"] for row in rows]


def wait_all_stored(influxd: Any, db: str, stream: Stream, timeout: float = 90) -> list[int]:
    deadline = time.monotonic() + timeout
    seqs: list[int] = []
    while time.monotonic() < deadline:
        seqs = stored_seqs(influxd, db, stream.base)
        if len(seqs) >= stream.count:
            break
        time.sleep(0.25)
    return seqs


def drain_backlog(ingest: Any, influxd: Any, host: str, port: int, count: int, rate: float,
                  timeout: float = 90) -> list[int]:
    """Stop `ingest` (its persistent session queues what comes meanwhile), publish `count`
    readings, start it again and wait until it stored them; returns the stored seqs,
    checked to be every reading once."""
    assert ingest.stop() == 0
    stream = Stream(host, port, count=count, rate=rate).start()
    try:
        stream.wait_published()
        ingest.restart()
        seqs = wait_all_stored(influxd, ingest.database, stream, timeout=timeout)
    finally:
        stream.close()
    assert_every_reading_once(seqs, count)
    return seqs


def assert_every_reading_once(seqs: list[int], count: int) -> None:
    missing = sorted(set(range(count)) - set(seqs))
    assert not missing, f"{len(missing)} readings lost, e.g. seq {missing[:10]}"
    assert len(seqs) == count == len(set(seqs)), "a reading stored as two distinct points"
