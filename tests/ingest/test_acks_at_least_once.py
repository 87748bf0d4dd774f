"""Dead letters are at least once (a rejected message is acknowledged only once the broker
has its `_dlq` record), memory stays bounded (the inbox, paho's queue of our publishes),
and only transport errors count as "InfluxDB unavailable" in the v2 writer. Real mosquitto
and InfluxDB; the store stage run in process."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ingest.influx_writer import V2Writer, WriteUnavailable
from ingest.receiver import Arrival, MqttReceiver
from ingest.settings import InfluxSettings, MqttSettings, SpoolSettings
from ingest.spool import Spool
from ingest.store_stage import Batch, Store
from sanitel.local_servers import Mosquitto, free_port
from tests.conftest import MqttTestClient

TOPIC = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"


class NoWrites:
    """A writer for batches without points (only rejected messages): never called."""

    async def write(self, body: bytes) -> None:
        raise AssertionError("nothing to write")


@pytest.fixture
def publisher(fresh_mosquitto: Mosquitto) -> Iterator[paho.Client]:
    """A QoS 1 publisher like ingest's own (paho, reconnecting), with a queue of 3."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dlq-{uuid.uuid4().hex[:6]}",
                         protocol=paho.MQTTv5)
    client.reconnect_delay_set(1, 1)
    client.max_queued_messages_set(3)
    client.connect(fresh_mosquitto.host, fresh_mosquitto.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def test_a_rejected_message_is_acked_only_once_its_dead_letter_is_with_the_broker(
    fresh_mosquitto: Mosquitto, publisher: paho.Client, tmp_path: Path
) -> None:
    watcher = MqttTestClient(fresh_mosquitto.host, fresh_mosquitto.port)
    watcher.close()
    fresh_mosquitto.stop()  # the broker goes away right after the messages were rejected
    time.sleep(0.5)
    first, second, third = (Arrival(TOPIC, b"{bad", n, 1, 1, 0) for n in (1, 2, 3))
    batch = Batch(arrivals=[first, second, third])
    batch.dead_letters = [(publisher.publish("dlq/x", b"record", qos=1), arrival)
                          for arrival in (first, second, third)]
    queued_out = publisher.publish("dlq/x", b"record", qos=1)  # paho's queue holds 3
    batch.dead_letters.append((queued_out, Arrival(TOPIC, b"{bad", 4, 1, 1, 0)))
    batch.arrivals.append(batch.dead_letters[-1][1])
    acked: list[Arrival] = []

    async def scenario() -> tuple[list[Arrival], list[Arrival]]:
        store = Store(NoWrites(), Spool(tmp_path / "spool", 1 << 20),  # type: ignore[arg-type]
                      SpoolSettings(), acked.extend, lambda d, o: None, 8)
        await store.queue.put(batch)
        await store.queue.put(None)
        running = asyncio.create_task(store.run())
        await asyncio.sleep(1.5)
        before = list(acked)
        await asyncio.to_thread(fresh_mosquitto.start)
        await asyncio.wait_for(running, 30)
        return before, list(acked)

    before, after = asyncio.run(scenario())
    assert queued_out.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
    assert before == []  # the broker has no dead letter yet: nothing acknowledged
    # Once it has them, their messages are; the one whose dead letter paho could not
    # queue stays unacknowledged (the broker redelivers it, it is rejected again).
    assert after == [first, second, third]


def test_the_inbox_drops_qos0_beyond_receive_maximum_and_keeps_qos1(mosquitto: Mosquitto) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port,
                            client_id=f"inbox-{uuid.uuid4().hex[:6]}", receive_maximum=100)
    publisher = MqttTestClient(mosquitto.host, mosquitto.port)

    async def scenario() -> tuple[int, int, int]:
        async with MqttReceiver(settings, ["flood/#"], []) as rx:
            await asyncio.wait_for(rx.connected.wait(), 10)
            for n in range(300):  # nobody takes from the inbox meanwhile
                publisher.client.publish("flood/qos0", str(n), qos=0)
            for n in range(20):
                publisher.publish("flood/qos1", str(n), qos=1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sum(
                    a.qos == 1 for a in list(rx.inbox)) < 20:
                await asyncio.sleep(0.05)
            return len(rx.inbox), sum(a.qos == 1 for a in rx.inbox), rx.dropped_qos0

    try:
        held, qos1, dropped = asyncio.run(scenario())
    finally:
        publisher.close()
    assert qos1 == 20  # flow control bounds those; none is ever dropped
    assert held == 100 + 20 and dropped == 200


def test_paho_holds_at_most_max_queued_publishes_of_ours(fresh_mosquitto: Mosquitto) -> None:
    settings = MqttSettings(host=fresh_mosquitto.host, port=fresh_mosquitto.port,
                            client_id=f"queue-{uuid.uuid4().hex[:6]}", max_queued_publishes=100)

    async def scenario() -> list[int]:
        async with MqttReceiver(settings, ["x/#"], []) as rx:
            await asyncio.wait_for(rx.connected.wait(), 10)
            await asyncio.to_thread(fresh_mosquitto.stop)
            await asyncio.sleep(0.5)
            return [rx.publish("dlq/x", b"r").rc for _ in range(150)]

    codes = asyncio.run(scenario())
    assert codes.count(MQTTErrorCode.MQTT_ERR_QUEUE_SIZE) == 50


# ------------------------------------------------------------------ the v2 writer's errors


def silent_server() -> tuple[int, threading.Event]:
    """A port that accepts connections and never answers (a hung InfluxDB)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def hold() -> None:
        held = []
        listener.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
        for conn in held:
            conn.close()
        listener.close()

    threading.Thread(target=hold, daemon=True).start()
    return listener.getsockname()[1], done


def test_v2_writer_transport_errors_are_unavailable(victoria: object) -> None:
    refused = V2Writer(InfluxSettings(api="v2", url=f"http://127.0.0.1:{free_port()}",
                                      token="t", timeout_s=2))
    with pytest.raises(WriteUnavailable):
        asyncio.run(refused.write(b"m f=1 1"))
    port, done = silent_server()
    try:
        hung = V2Writer(InfluxSettings(api="v2", url=f"http://127.0.0.1:{port}", token="t",
                                       timeout_s=0.5))
        with pytest.raises(WriteUnavailable):
            asyncio.run(hung.write(b"m f=1 1"))
    finally:
        done.set()


def test_v2_writer_lets_a_bug_of_ours_raise(victoria: object) -> None:
    writer = V2Writer(InfluxSettings(api="v2", url=victoria.url, token="t"))  # type: ignore[attr-defined]

    def buggy(**kwargs: object) -> None:  # a mistake of ours inside the write call
        raise KeyError("bucket")

    writer._api.write = buggy  # type: ignore[method-assign]
    # It must surface (and stop ingest), not be taken for an outage, spooled, retried.
    with pytest.raises(KeyError):
        asyncio.run(writer.write(b"m f=1 1"))
