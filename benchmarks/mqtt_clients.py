"""Sanitel's MQTT receive path against gmqtt, the maintained asyncio MQTT 5 client.

    .venv/bin/python -m benchmarks.mqtt_clients [--messages 50000] [--rounds 3]

Issue 19 allows "a maintained faster MQTT library if one measures better". This measures
the receive side alone, on the same footing: a real mosquitto (its own temp dir), a
persistent MQTT 5 session per client with Receive Maximum 50,000, the benchmark city's
readings (`benchmarks.traffic`) queued while the client is away, then the client drains
them and only counts (no validation, no storage), timed from its first message to its
N-th, with the process's CPU seconds from before connecting to the N-th message.

  sanitel   `ingest.receiver.MqttReceiver` (paho with the fast path of
            `ingest/paho_fastpath.py`): arrivals taken from its inbox in slices, each
            slice acknowledged in one write, as the pipeline does after storing
  gmqtt     gmqtt's `Client` with its default optimistic acknowledgement (PUBACK on
            receipt, before `on_message`): the cheapest way gmqtt receives. Its other
            mode acknowledges when `on_message` returns, one message at a time.

gmqtt is not a dependency of Sanitel, only of the `bench` extra (`.venv/bin/pip install
-e '.[bench]'`). The rounds alternate the two clients, each with a fresh backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks.contenders import create_session
from benchmarks.traffic import (
    TELEMETRY_FILTER,
    BacklogNotQueued,
    city_registry,
    city_traffic,
    publish_backlog,
)
from devices.sites import Registry
from ingest.pipeline import SLICE
from ingest.receiver import MqttReceiver
from ingest.settings import MqttSettings
from sanitel.local_servers import Mosquitto

RECEIVE_MAXIMUM = 50_000
#: (seconds first -> N-th message, seconds connect -> N-th, process CPU seconds)
Figures = tuple[float, float, float]


async def drain_sanitel(broker: Mosquitto, client_id: str, n: int) -> Figures:
    settings = MqttSettings(host=broker.host, port=broker.port, client_id=client_id,
                            receive_maximum=RECEIVE_MAXIMUM)
    receiver = MqttReceiver(settings, [], [TELEMETRY_FILTER])
    got, first = 0, 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with receiver:
        while got < n:
            await receiver.wait(1.0)
            inbox, taken = receiver.inbox, []
            for _ in range(min(SLICE, len(inbox))):
                taken.append(inbox.popleft())
            if taken and not got:
                first = time.perf_counter()
            got += len(taken)
            receiver.ack(taken)
        t1, cpu = time.perf_counter(), time.process_time() - cpu0
    return t1 - first, t1 - t0, cpu


async def drain_gmqtt(broker: Mosquitto, client_id: str, n: int) -> Figures:
    try:
        from gmqtt import Client
        from gmqtt.mqtt.constants import MQTTv50
    except ImportError:
        raise SystemExit("benchmarks.mqtt_clients needs gmqtt (the bench extra): "
                         ".venv/bin/pip install -e '.[bench]'") from None
    got, first, done = 0, 0.0, asyncio.Event()

    def on_message(client: object, topic: str, payload: bytes, qos: int, props: object) -> int:
        nonlocal got, first
        if not got:
            first = time.perf_counter()
        got += 1
        if got == n:
            done.set()
        return 0

    client = Client(client_id, clean_session=False, session_expiry_interval=3600,
                    receive_maximum=RECEIVE_MAXIMUM)
    client.on_message = on_message
    cpu0, t0 = time.process_time(), time.perf_counter()
    await client.connect(broker.host, broker.port, version=MQTTv50)
    client.subscribe(TELEMETRY_FILTER, qos=1)
    await asyncio.wait_for(done.wait(), 300)
    t1, cpu = time.perf_counter(), time.process_time() - cpu0
    await client.disconnect()
    return t1 - first, t1 - t0, cpu


CLIENTS: dict[str, Callable[[Mosquitto, str, int], Coroutine[Any, Any, Figures]]] = {
    "sanitel": drain_sanitel, "gmqtt": drain_gmqtt,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mqtt_clients",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sites", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    registry = Registry.from_dict(city_registry(args.sites, args.seed))
    items = city_traffic(registry, args.messages, seed=args.seed).items
    with tempfile.TemporaryDirectory(prefix="sanitel-mqtt-clients-") as tmp:
        broker = Mosquitto(Path(tmp))
        broker.start()
        try:
            for round_no in range(1, args.rounds + 1):
                for name, drain in CLIENTS.items():
                    client_id = f"clients-{name}"
                    create_session(broker.host, broker.port, client_id, [TELEMETRY_FILTER],
                                   protocol=5)
                    try:
                        sent = publish_backlog(broker.host, broker.port, items)
                    except BacklogNotQueued as exc:
                        raise SystemExit(str(exc)) from None
                    span, from_connect, cpu = asyncio.run(drain(broker, client_id, sent))
                    print(f"round {round_no} {name:8} {sent / span:>9,.0f} msg/s first->last "
                          f"({span:.2f} s; {from_connect:.2f} s from connect), "
                          f"{cpu * 100_000 / sent:.2f} CPU s/100k", flush=True)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
