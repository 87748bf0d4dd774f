"""The Python reference contenders, each its own process so that its RSS and CPU are its own.

    python -m benchmarks.contenders paho311 --port P --client-id ID --expect N
    python -m benchmarks.contenders paho5   --port P --client-id ID --expect N [--receive-maximum R]
    python -m benchmarks.contenders bridge  --port P --client-id ID --influx URL --database DB
    python -m benchmarks.contenders naive   --port P --client-id ID --influx URL --database DB

`paho311` / `paho5`: a stock paho-mqtt 2.x subscriber (MQTT 3.1.1, or MQTT 5 with the
same receive maximum as Sanitel), QoS 1, persistent session, that only counts; paho
acknowledges each message itself. It prints the time of its first and its N-th message.

`bridge`: the minimal Python bridge: paho 3.1.1 `on_message` -> `json.loads` -> a line of
line protocol (the payload's numbers as float fields, so that no bad reading can make a
field type conflict that loses a whole batch); a thread writes what has gathered every
200 ms (5,000 lines a request). No validation, no ack after store (paho acks on receipt).

`naive`: the tutorial bridge: paho `on_message` -> `json.loads` -> one synchronous HTTP
`POST /write` per message (httpx, keep-alive). No validation, no batching.

Each prints JSON lines on stdout: `{"event": "connected", "t": epoch_s}`, `{"event":
"first", "t"}`, `{"event": "done", ...}`, and on SIGTERM `{"event": "stopped", "handled":
n, ...}`. `create_session` makes a contender's persistent session beforehand, so the
broker queues for it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from devices.registry import DEVICE_TYPES

TELEMETRY_FILTER = "sanitation/v1/+/+/+/telemetry"
SESSION_EXPIRY_S = 3600


class SessionError(RuntimeError):
    """A persistent session could not be made; the message names the client id."""


def say(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _connect_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return props


#: Measurement of each device type (SPEC section 5), for the bridges.
MEASUREMENT_OF = {name: model.measurement for name, model in DEVICE_TYPES.items()}
BRIDGE_FLUSH_S = 0.2
BRIDGE_BATCH = 5000


def _client(client_id: str, protocol: int = paho.MQTTv5) -> paho.Client:
    version = MQTTProtocolVersion(protocol)
    if version == MQTTProtocolVersion.MQTTv5:
        return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                       clean_session=False)


def create_session(host: str, port: int, client_id: str, topics: list[str] | None = None,
                   protocol: int = paho.MQTTv5) -> None:
    """Connect once (persistent: clean_start=False and a session expiry, or 3.1.1's
    clean_session=False), subscribe QoS 1, disconnect."""
    subscribed = threading.Event()
    client = _client(client_id, protocol)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(
        [(t, SubscribeOptions(qos=1)) for t in (topics or [TELEMETRY_FILTER])]
        if protocol == paho.MQTTv5 else [(t, 1) for t in (topics or [TELEMETRY_FILTER])]
    )
    if protocol == paho.MQTTv5:
        client.connect(host, port, clean_start=False, properties=_connect_props())
    else:
        client.connect(host, port)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise SessionError(f"client {client_id}: no SUBACK from {host}:{port} within 10 s")
    finally:
        client.disconnect()
        client.loop_stop()


def drop_session(host: str, port: int, client_id: str) -> None:
    """Connect with a clean start and no expiry: the broker forgets what it queued for us."""
    client = _client(client_id)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect(host, port, clean_start=True, properties=props)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def _on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, p: Any) -> None:
    say(event="connected", t=time.time(), session_present=bool(flags.session_present))


def _connect(client: paho.Client, host: str, port: int, receive_maximum: int | None) -> None:
    client.on_connect = _on_connect
    if client.protocol != paho.MQTTv5:
        client.connect(host, port)
        return
    props = _connect_props()
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    client.connect(host, port, clean_start=False, properties=props)


def counting(host: str, port: int, client_id: str, expect: int, protocol: int,
             receive_maximum: int | None) -> None:
    """A stock paho subscriber that only counts (paho acks every message on receipt)."""
    count = 0
    done = threading.Event()

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count == 1:
            say(event="first", t=time.time())
        if count == expect:
            say(event="done", t=time.time(), count=count)
            done.set()

    client = _client(client_id, protocol)
    client.on_message = on_message
    _connect(client, host, port, receive_maximum)
    _run_until(client, done, lambda: {"handled": count})


def bridge(host: str, port: int, client_id: str, influx: str, database: str) -> None:
    """paho 3.1.1 callback -> json.loads -> line protocol; 200 ms batches, one /write each."""
    import httpx

    lines: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    figures = {"handled": 0, "errors": 0, "writes": 0, "write_errors": 0}

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        figures["handled"] += 1
        try:
            data = json.loads(msg.payload)
            _, _, site_id, device_type, device_id, _ = msg.topic.split("/")
            fields = ",".join(f"{key}={float(value)!r}" for key, value in data.items()
                              if key != "ts" and type(value) in (int, float))
            line = (f"{MEASUREMENT_OF[device_type]},device_id={device_id},site_id={site_id} "
                    f"{fields} {int(data['ts'])}")
        except (ValueError, KeyError, TypeError, AttributeError):
            figures["errors"] += 1
            return
        with lock:
            lines.append(line)

    def writer() -> None:
        with httpx.Client(timeout=30) as http:
            while not done.is_set():
                done.wait(BRIDGE_FLUSH_S)
                with lock:
                    batch, lines[:] = lines[:], []
                for i in range(0, len(batch), BRIDGE_BATCH):
                    body = "\n".join(batch[i:i + BRIDGE_BATCH])
                    response = http.post(f"{influx}/write", content=body,
                                         params={"db": database, "precision": "ms"})
                    figures["writes"] += 1
                    figures["write_errors"] += response.status_code != 204

    thread = threading.Thread(target=writer, name="bridge-writer", daemon=True)
    thread.start()
    client = _client(client_id, paho.MQTTv311)
    client.on_message = on_message
    _connect(client, host, port, None)
    _run_until(client, done, lambda: figures)


def naive(host: str, port: int, client_id: str, influx: str, database: str) -> None:
    import httpx  # a tutorial would use requests; httpx is what this project has

    http = httpx.Client(timeout=10)
    url = f"{influx}/write"
    params = {"db": database, "precision": "ms"}
    handled = errors = 0
    done = threading.Event()

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        nonlocal handled, errors
        handled += 1
        try:
            data = json.loads(msg.payload)
        except ValueError:
            errors += 1
            return
        _, _, site_id, device_type, device_id, _ = msg.topic.split("/")
        fields = ",".join(
            f"{key}={float(value)}" for key, value in data.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and key != "ts"
        )
        if not fields or not isinstance(data.get("ts"), int):
            errors += 1
            return
        line = f"{device_type},site_id={site_id},device_id={device_id} {fields} {data['ts']}"
        try:
            response = http.post(url, params=params, content=line)
            if response.status_code != 204:
                errors += 1
        except httpx.HTTPError:
            errors += 1

    client = _client(client_id)
    client.on_message = on_message
    _connect(client, host, port, None)
    _run_until(client, done, lambda: {"handled": handled, "errors": errors})


def _run_until(client: paho.Client, done: threading.Event, figures: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()
    say(event="stopped", t=time.time(), **figures())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contenders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["paho311", "paho5", "bridge", "naive"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--expect", type=int, default=0, help="paho*: messages to count")
    parser.add_argument("--receive-maximum", type=int, default=None,
                        help="paho5: the Receive Maximum to ask for (Sanitel's)")
    parser.add_argument("--influx", default="http://127.0.0.1:8086", help="bridges: InfluxDB URL")
    parser.add_argument("--database", default="bench_bridge", help="bridges: database")
    args = parser.parse_args(argv)
    if args.kind in ("paho311", "paho5"):
        protocol = paho.MQTTv311 if args.kind == "paho311" else paho.MQTTv5
        counting(args.host, args.port, args.client_id, args.expect, protocol,
                 args.receive_maximum)
    elif args.kind == "bridge":
        bridge(args.host, args.port, args.client_id, args.influx, args.database)
    else:
        naive(args.host, args.port, args.client_id, args.influx, args.database)


if __name__ == "__main__":
    main()
