"""A broker with access control on, and an MQTT 5 client that reports reason codes."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.credentials import Account

NOT_AUTHORIZED = 0x87
BAD_USER_OR_PASSWORD = 0x86
#: PUBACK reasons of a publish the broker took: success, and "no matching subscribers".
ACCEPTED = (0x00, 0x10)


class Client:
    """A paho MQTT 5 client: CONNACK, PUBACK and SUBACK reason codes, messages received."""

    def __init__(self, port: int, username: str | None = None, password: str | None = None,
                 will: tuple[str, bytes] | None = None,
                 tls: tuple[Path, Path | None, Path | None] | None = None) -> None:
        """`tls`: (CA file, client certificate, its key); the TLS handshake's failure
        raises from here (ssl.SSLError / OSError)."""
        self.connack: int | None = None
        self.pubacks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        if tls:
            ca, cert, key = tls
            self.client.tls_set(ca_certs=str(ca), certfile=str(cert) if cert else None,
                                keyfile=str(key) if key else None,
                                tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None, "CONNACK")

    def _on_connect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connack = reason.value

    def _on_publish(self, c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        self.pubacks[mid] = reason.value

    def _on_subscribe(self, c: Any, u: Any, mid: int, reasons: Any, props: Any) -> None:
        self.subacks[mid] = [r.value for r in reasons]

    def _on_message(self, c: Any, u: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    @staticmethod
    def _wait(done: Any, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s")
            time.sleep(0.01)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> int:
        """QoS 1; the PUBACK's reason code (0 success, 0x87 not authorized)."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        self._wait(lambda: mid in self.pubacks, f"PUBACK for {topic}")
        return self.pubacks[mid]

    def subscribe(self, topic_filter: str) -> list[int]:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        self._wait(lambda: mid in self.subacks, f"SUBACK for {topic_filter}")
        return self.subacks[mid]

    def received(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect_as(port: int, account: Account, **kwargs: Any) -> Client:
    client = Client(port, account.username, account.password, **kwargs)
    assert client.connack == 0, f"{account.username} refused: {client.connack}"
    return client
