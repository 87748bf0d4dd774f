"""Runs the receive path (`ingest.receiver` over `ingest.paho_fastpath`) against a broker
under whichever paho-mqtt is first on sys.path; prints what it saw as JSON.

Used by test_paho_versions.py, once per paho version the pin allows: the private API that
`paho_fastpath` relies on must behave the same in each.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion

from ingest.receiver import MqttReceiver, acknowledged
from ingest.settings import MqttSettings

TOPIC = "probe/readings"
#: Small and large payloads, so that packets straddle the 64 KiB reads of paho_fastpath.
SIZES = [10, 300, 70_000, 5, 65_536, 1, 130_000] * 20


def publish_all(port: int) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe-publisher",
                         protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(TOPIC, bytes([n % 251]) * size, qos=1)
             for n, size in enumerate(SIZES)]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


async def receive(port: int, take: bool) -> dict[str, object]:
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="probe-receiver")
    async with MqttReceiver(settings, [TOPIC], []) as receiver:
        await asyncio.wait_for(receiver.connected.wait(), 10)
        if take:
            await asyncio.to_thread(publish_all, port)
        arrivals = []
        deadline = time.monotonic() + (20 if take else 2)
        while time.monotonic() < deadline and (not take or len(arrivals) < len(SIZES)):
            await receiver.wait(0.2)
            while receiver.inbox:
                arrivals.append(receiver.inbox.popleft())
        receiver.ack(arrivals)
        own = receiver.publish("probe/own", b"x", qos=1)
        deadline = time.monotonic() + 10
        while not acknowledged(own) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the PUBACKs leave before the disconnect
        return {
            "received": len(arrivals),
            "payloads_ok": [len(a.payload) for a in arrivals] == SIZES[:len(arrivals)]
            and all(a.payload == bytes([n % 251]) * len(a.payload)
                    for n, a in enumerate(arrivals)),
            "own_publish_acknowledged": acknowledged(own),
        }


def main() -> None:
    port = int(sys.argv[1])
    first = asyncio.run(receive(port, take=True))
    again = asyncio.run(receive(port, take=False))  # same session: nothing may come back
    print(json.dumps({"paho": paho_version, "first": first,
                      "redelivered": again["received"]}))


if __name__ == "__main__":
    main()
