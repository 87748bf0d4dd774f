"""The two reference contenders, each run as its own process so its RSS and CPU are its own.

    python -m benchmarks.contenders bare  --port P --client-id ID --expect N
    python -m benchmarks.contenders naive --port P --client-id ID --influx URL --database DB

`bare`: the raw limit. A paho-mqtt 2.x subscriber (MQTT v5, QoS 1, persistent session)
that only counts, and prints the time it received the N-th message.

`naive`: a bridge written the way a tutorial writes it: paho `on_message` -> `json.loads`
-> one synchronous HTTP `POST /write` per message (httpx, keep-alive). No validation,
no batching.

Both print JSON lines on stdout: `{"event": "connected", "t": epoch_s}`, `{"event":
"done", ...}`, and on SIGTERM `{"event": "stopped", "handled": n, ...}`. `create_session`
makes a contender's persistent session beforehand, so the broker queues for it.
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
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

TELEMETRY_FILTER = "sanitation/v1/+/+/+/telemetry"
SESSION_EXPIRY_S = 3600


class SessionError(RuntimeError):
    """A persistent session could not be made; the message names the client id."""


def _say(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _connect_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return props


def _client(client_id: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)


def create_session(host: str, port: int, client_id: str, topics: list[str] | None = None) -> None:
    """Connect once (clean_start=False, session expiry), subscribe QoS 1, disconnect."""
    subscribed = threading.Event()
    client = _client(client_id)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(
        [(t, SubscribeOptions(qos=1)) for t in (topics or [TELEMETRY_FILTER])]
    )
    client.connect(host, port, clean_start=False, properties=_connect_props())
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


def bare(host: str, port: int, client_id: str, expect: int) -> None:
    count = 0
    done = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, p: Any) -> None:
        _say(event="connected", t=time.time(), session_present=bool(flags.session_present))

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count == expect:
            _say(event="done", t=time.time(), count=count)
            done.set()

    client = _client(client_id)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port, clean_start=False, properties=_connect_props())
    _run_until(client, done, lambda: {"handled": count})


def naive(host: str, port: int, client_id: str, influx: str, database: str) -> None:
    import httpx  # a tutorial would use requests; httpx is what this project has

    http = httpx.Client(timeout=10)
    url = f"{influx}/write"
    params = {"db": database, "precision": "ms"}
    handled = errors = 0
    done = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason: Any, p: Any) -> None:
        _say(event="connected", t=time.time(), session_present=bool(flags.session_present))

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
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, port, clean_start=False, properties=_connect_props())
    _run_until(client, done, lambda: {"handled": handled, "errors": errors})


def _run_until(client: paho.Client, done: threading.Event, figures: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    client.loop_start()
    done.wait()
    client.disconnect()
    client.loop_stop()
    _say(event="stopped", t=time.time(), **figures())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.contenders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bare", "naive"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--expect", type=int, default=0, help="bare: messages to count")
    parser.add_argument("--influx", default="http://127.0.0.1:8086", help="naive: InfluxDB URL")
    parser.add_argument("--database", default="bench_naive", help="naive: database")
    args = parser.parse_args(argv)
    if args.kind == "bare":
        bare(args.host, args.port, args.client_id, args.expect)
    else:
        naive(args.host, args.port, args.client_id, args.influx, args.database)


if __name__ == "__main__":
    main()
