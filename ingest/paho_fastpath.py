"""A paho-mqtt client with a lean receive path, for a subscriber that takes tens of
thousands of readings a second.

Measured with py-spy while draining a 50k QoS 1 backlog, stock paho's network thread
spent most of its time on bookkeeping per message: three or four `recv` calls for each
PUBLISH (command byte, each length byte, the rest), a `Properties` object built, filled
and cleared for every MQTT 5 PUBLISH even when it has none, an `MQTTMessage`, a
topic-filter match, and a lock per callback. This subclass reads the socket in 256 KiB
chunks and cuts the packets out of the buffer itself. A QoS 0/1 PUBLISH without
properties (what devices send) is decoded here: topic, packet id, payload; the PUBLISHes
of one read go to `on_publishes` in one call, in order. Everything else (CONNACK,
SUBACK, PUBACK of our own publishes, a PUBLISH with properties or QoS 2, anything
malformed) goes through paho's own `_packet_handle`, exactly as paho would handle it,
after the PUBLISHes before it. The PUBACKs stay manual (`manual_ack=True`): the fast
path is used only then.

It relies on paho 2.1/2.2 internals (`loop_read`, `_in_packet`, `_packet_handle`,
`_loop_rc_handle`, `_handle_on_message`, `_packet_queue`, `_max_inflight_messages`,
`MQTTMessageInfo._published`).
This is the one module that touches paho's private API: the pin in pyproject.toml keeps
it, the test suite runs every delivery guarantee through it, and
`tests/ingest/test_paho_versions.py` runs it against the oldest and newest paho the pin
allows.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from ingest.settings import MqttSettings

#: Bytes asked of the socket per read: about 1,000 readings of a few hundred bytes.
CHUNK = 262144


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


@contextlib.contextmanager
def holding_publishes(client: paho.Client) -> Iterator[None]:
    """Hold paho's lock of outgoing messages (a re-entrant lock) over many `publish` calls.

    paho's network thread takes the same lock for each PUBACK of our publishes (dead
    letters, alert events). Taking it per publish from the event loop's thread made each
    contended publish wait for a GIL hand-over (py-spy: 17 % of the loop thread's samples
    in `publish` while draining a backlog with 3 % bad readings); held over a slice of
    messages, it is taken once, and the network thread handles those PUBACKs after it."""
    with client._out_message_mutex:
        yield


#: The Receive Maximum a broker means by leaving the property out (MQTT 5, 3.2.2.3.3).
DEFAULT_RECEIVE_MAXIMUM = 65_535
#: Our QoS 1 publishes unacknowledged at once, at most (paho's own default). Up to it,
#: `publish` sends from the calling thread (the event loop's: packet, queue, a wake-up
#: write per publish); beyond it paho queues, and its network thread sends as the broker
#: acknowledges. With no limit, 15,000 dead letters published in bursts of 50 took the
#: publishing thread 0.80-0.88 s against 0.41-0.44 s with 20 (two runs each).
INFLIGHT_AT_MOST = 20


def honour_receive_maximum(client: paho.Client, properties: Any) -> int:
    """Send no more QoS 1 publishes unacknowledged than the broker's CONNACK allows.

    paho keeps its own limit whatever the broker says, so a broker allowing fewer than 20
    (its Receive Maximum) was sent too many. Called from `on_connect`, before paho sends
    what it held for the new connection. Returns the limit set."""
    allowed = getattr(properties, "ReceiveMaximum", None) or DEFAULT_RECEIVE_MAXIMUM
    limit = min(allowed, INFLIGHT_AT_MOST)
    client._max_inflight_messages = limit
    return limit


def queue_packets(client: paho.Client, command: int, blob: bytes) -> None:
    """Hand paho's network thread ready-made packets of `command` (several PUBACKs in
    one buffer), sent with one write instead of one queued packet each."""
    client._packet_queue(command, blob, 0, 0)


def drop_queued_packets(client: paho.Client, command: int) -> None:
    """Forget packets of `command` queued and not yet sent. Called in paho's thread from
    `on_pre_connect`, after paho emptied its queue for the new connection: whatever of
    `command` is in it now was queued for the connection that is gone."""
    queue = client._out_packet
    for packet in [p for p in queue if p["command"] & 0xF0 == command]:
        queue.remove(packet)


#: A PUBLISH decoded on the fast path: topic, payload, packet id, QoS.
Publish = tuple[str, bytes, int, int]

try:
    from paho.mqtt.exception import MalformedPacket as _Malformed
except ImportError:  # paho 2.1 raises struct.error and friends instead
    _Malformed = ValueError  # type: ignore[assignment,misc]


def _remaining_length(buf: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(remaining length, offset after it) of the fixed header at `start`; None while the
    buffer does not hold all its bytes. Raises `ValueError` past four length bytes."""
    value, mult, i = 0, 1, start
    while i < end:
        byte = buf[i]
        i += 1
        value += (byte & 127) * mult
        if byte < 128:
            return value, i
        if i - start >= 4:
            raise ValueError("remaining length longer than four bytes")
        mult *= 128
    return None


def decode_publish(buf: bytes, cmd: int, start: int, end: int, v5: bool) -> Publish | None:
    """A QoS 0/1 PUBLISH without properties, from its variable header at `start` to `end`;
    None for anything else (QoS 2, properties, a topic alias, bad UTF-8, too short)."""
    qos = (cmd >> 1) & 3
    if qos > 1 or end - start < 2:
        return None
    topic_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
    at, mid = topic_end, 0
    if qos:
        at += 2
        if at > end:
            return None
        mid = (buf[topic_end] << 8) | buf[topic_end + 1]
    if v5:
        if at >= end or buf[at] != 0:  # property length 0: no properties
            return None
        at += 1
    if at > end or topic_end == start + 2:
        return None
    try:
        topic = buf[start + 2:topic_end].decode()
    except UnicodeDecodeError:
        return None
    return topic, buf[at:end], mid, qos


class BufferedClient(paho.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rsock: Any = None
        #: Called on paho's thread with the plain PUBLISHes of one read, in order
        #: (with manual_ack only); the others reach `on_message` as usual.
        self.on_publishes: Callable[[list[Publish]], None] | None = None
        # paho 2.2 notes the last bytes received for its keepalive, 2.1 the last message.
        self._seen_attr = ("_last_bytes_received" if hasattr(self, "_last_bytes_received")
                           else "_last_msg_in")

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if sock is not self._rsock:  # a new connection: nothing buffered belongs to it
            self._rsock, self._rbuf = sock, b""
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, ssl.SSLWantReadError):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except ssl.SSLWantWriteError:
            self._call_socket_register_write()
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except (OSError, AttributeError) as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            setattr(self, self._seen_attr, paho.time_func())
        buf = self._rbuf + data if self._rbuf else data
        rc, used = self._packets(sock, buf)
        self._rbuf = buf[used:] if self._sock is sock else b""
        return self._loop_rc_handle(rc) if rc else MQTTErrorCode.MQTT_ERR_SUCCESS

    def _packets(self, sock: Any, buf: bytes) -> tuple[MQTTErrorCode, int]:
        """Handle every whole packet in `buf`: (paho's rc, bytes used)."""
        deliver = self.on_publishes if self._manual_ack else None
        v5 = self._protocol == paho.MQTTv5
        batch: list[Publish] = []
        pos, size = 0, len(buf)
        while pos + 1 < size:
            cmd = buf[pos]
            try:
                header = _remaining_length(buf, pos + 1, size)
            except ValueError:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL, pos
            if header is None or header[1] + header[0] > size:
                break
            length, start = header
            end = start + length
            if deliver is not None and cmd & 0xF0 == paho.PUBLISH:
                publish = decode_publish(buf, cmd, start, end, v5)
                if publish is not None:
                    batch.append(publish)
                    pos = end
                    continue
            if batch:
                self._deliver(deliver, batch)
                batch = []
            rc = self._handle_packet(cmd, length, buf[start:end])
            pos = end
            if rc or self._sock is not sock:
                return rc, pos
        if batch:
            self._deliver(deliver, batch)
        return MQTTErrorCode.MQTT_ERR_SUCCESS, pos

    def _handle_packet(self, cmd: int, length: int, body: bytes) -> MQTTErrorCode:
        """One packet through paho's own handling, as its `_packet_read` would pass it."""
        self._in_packet = {
            "command": cmd, "have_remaining": 1, "remaining_count": [],
            "remaining_mult": 1, "remaining_length": length, "packet": bytearray(body),
            "to_process": 0, "pos": 0,
        }
        try:
            rc: MQTTErrorCode = self._packet_handle()
        except _Malformed as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {
                "command": 0, "have_remaining": 0, "remaining_count": [],
                "remaining_mult": 1, "remaining_length": 0, "packet": bytearray(b""),
                "to_process": 0, "pos": 0,
            }
        return rc

    def _deliver(self, deliver: Callable[[list[Publish]], None] | None,
                 batch: list[Publish]) -> None:
        if deliver is None:
            return
        with self._in_callback_mutex:
            try:
                deliver(batch)
            except Exception as err:
                self._easy_log(paho.MQTT_LOG_ERR, "Caught exception in on_publishes: %s", err)
                if not self.suppress_exceptions:
                    raise

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
