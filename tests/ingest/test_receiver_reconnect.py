"""PUBACKs meant for one connection never go out on the next (SPEC section 5: a reading is
acknowledged only once stored). A real mosquitto; the race made deterministic by acking
from inside paho's thread at the moments a loop thread's ack can land in: while paho
reconnects (its queue emptied for the new connection), and once the new connection's
CONNECT is out but its CONNACK not yet handled."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest

from ingest.receiver import Arrival, MqttReceiver
from ingest.settings import MqttSettings
from sanitel.local_servers import Mosquitto
from tests.conftest import MqttTestClient

TOPIC = "race/readings"


async def collect(rx: MqttReceiver, count: int, seconds: float) -> list[Arrival]:
    got: list[Arrival] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < count:
        await rx.wait(0.1)
        while rx.inbox:
            got.append(rx.inbox.popleft())
    return got


async def ack_in_a_reconnect_window(settings: MqttSettings, publisher: MqttTestClient,
                                    window: str) -> tuple[int, int]:
    async with MqttReceiver(settings, [TOPIC], []) as rx:
        await asyncio.wait_for(rx.connected.wait(), 10)
        for n in range(5):
            publisher.publish(TOPIC, f"reading {n}".encode())
        first = await collect(rx, 5, 10)
        assert len(first) == 5
        client = rx.client
        original = getattr(client, window)

        def late_ack(*args: object) -> object:  # in paho's thread, once
            setattr(client, window, original)
            rx.ack(first)
            return original(*args)

        setattr(client, window, late_ack)
        rx.connected.clear()
        client._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        await asyncio.wait_for(rx.connected.wait(), 20)
        again = await collect(rx, 5, 5)  # the broker redelivers the unacknowledged five
    async with MqttReceiver(settings, [TOPIC], []) as rx:  # same session, a new process
        await asyncio.wait_for(rx.connected.wait(), 10)
        owed = await collect(rx, 5, 4)
    return len(again), len(owed)


@pytest.mark.parametrize("window", [
    "_handle_connack",  # CONNECT sent, CONNACK not yet handled
    "_messages_reconnect_reset",  # paho's queue emptied, the new socket not yet made
])
def test_an_ack_of_the_old_connection_never_goes_out_on_the_new(mosquitto: Mosquitto,
                                                                 window: str) -> None:
    publisher = MqttTestClient(mosquitto.host, mosquitto.port)
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port,
                            client_id=f"race-{uuid.uuid4().hex[:8]}", reconnect_min_s=0.5)
    try:
        again, owed = asyncio.run(ack_in_a_reconnect_window(settings, publisher, window))
    finally:
        publisher.close()
    assert again == 5
    # None of the five was acknowledged on a connection that delivered it: the broker still
    # owes all five. A stale PUBACK on the new connection would have settled them.
    assert owed == 5
