"""A paho-mqtt client with a leaner receive path, for a subscriber that takes tens of
thousands of readings a second.

Measured with py-spy while draining a 50k QoS 1 backlog, paho's network thread spends
most of its time on syscalls and bookkeeping per message: a `select` and three or four
`recv` calls for each PUBLISH (one for the command byte, one per length byte, one for
the rest), and a topic-filter match even when no per-topic callback exists. This
subclass reads the socket in 64 KiB chunks and serves paho's small reads from that
buffer, keeps reading while the buffer holds whole packets, and hands messages straight
to `on_message`. It relies on paho 2.1/2.2 internals (`_sock_recv`, `loop_read`,
`_handle_on_message`, `_packet_queue`, `MQTTMessageInfo._published`). This is the one
module that touches paho's private API: the pin in pyproject.toml keeps it, the test
suite runs every delivery guarantee through it, and `tests/ingest/test_paho_versions.py`
runs it against the oldest and newest paho the pin allows.
"""

from __future__ import annotations

import ssl
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from ingest.settings import MqttSettings

CHUNK = 65536


def configure(client: paho.Client, settings: MqttSettings) -> paho.Client:
    """Credentials and TLS of `settings` on a paho client (ingest, `alerts ack`)."""
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_NONE if settings.tls_insecure else ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.tls_insecure)
    return client


def acknowledged(info: paho.MQTTMessageInfo) -> bool:
    """Whether the broker has acknowledged a QoS 1 publish (False while it is queued)."""
    if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
        # Published before the connection was up: paho queued it, sends it on connect and
        # records the PUBACK, but `is_published()` keeps raising for this return code.
        with info._condition:
            return bool(info._published)
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


def queue_packets(client: paho.Client, command: int, blob: bytes) -> None:
    """Hand paho's network thread ready-made packets of `command` (several PUBACKs in
    one buffer), sent with one write instead of one queued packet each."""
    client._packet_queue(command, blob, 0, 0)


class BufferedClient(paho.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: Any = None

    def _sock_recv(self, bufsize: int) -> bytes:
        sock = self._sock
        if sock is None:
            raise ConnectionError("self._sock is None")
        if sock is not self._rsock:  # a new connection: nothing buffered belongs to it
            self._rsock, self._rbuf, self._rpos = sock, b"", 0
        if self._rpos >= len(self._rbuf):
            try:
                data = sock.recv(max(bufsize, CHUNK))
            except ssl.SSLWantReadError as err:
                raise BlockingIOError() from err
            except ssl.SSLWantWriteError as err:
                self._call_socket_register_write()
                raise BlockingIOError() from err
            except AttributeError as err:
                raise ConnectionError() from err
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        self._rpos = start + bufsize
        return self._rbuf[start:start + bufsize]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # select() knows nothing of our buffer: drain it before waiting again.
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rpos < len(self._rbuf):
            rc = super().loop_read(1)
        return rc

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise
