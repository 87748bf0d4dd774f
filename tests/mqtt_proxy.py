"""A TCP proxy in front of a real broker that holds back what the broker sends by a fixed
delay and watches the QoS 1 PUBLISHes the client sends and the PUBACKs the broker answers
them with, as the client sees them: how many of its publishes were unacknowledged at once."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from ingest.paho_fastpath import _remaining_length

PUBLISH, PUBACK = 3, 4


class PacketCutter:
    """Cuts MQTT packets out of a byte stream and reports each packet's first byte."""

    def __init__(self, on_packet: Callable[[int], None]) -> None:
        self._buf = b""
        self._on_packet = on_packet

    def feed(self, data: bytes) -> None:
        self._buf += data
        while (header := _remaining_length(self._buf, 1, len(self._buf))) is not None:
            length, start = header
            if len(self._buf) < start + length:
                return
            self._on_packet(self._buf[0])
            self._buf = self._buf[start + length:]


class DelayingProxy:
    """`with DelayingProxy(host, port, delay_s) as proxy:` clients connect to `proxy.port`."""

    def __init__(self, host: str, port: int, delay_s: float) -> None:
        self.upstream = (host, port)
        self.delay_s = delay_s
        self.host = "127.0.0.1"
        self.outstanding = 0
        self.max_outstanding = 0
        self.publishes = 0
        self._lock = threading.Lock()
        self._server = socket.create_server((self.host, 0))
        self.port: int = self._server.getsockname()[1]
        self._sockets: list[socket.socket] = [self._server]

    def __enter__(self) -> DelayingProxy:
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._sockets:
            sock.close()

    @staticmethod
    def _start(target: Callable[..., None], *args: object) -> None:
        threading.Thread(target=target, args=args, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            broker = socket.create_connection(self.upstream)
            self._sockets += [client, broker]
            self._start(self._pump, client, broker, PacketCutter(self._client_sent), 0.0)
            self._start(self._pump, broker, client, PacketCutter(self._broker_sent),
                        self.delay_s)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, cutter: PacketCutter,
              delay_s: float) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if delay_s:
                    time.sleep(delay_s)
                cutter.feed(data)  # counted as the other side gets it
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _client_sent(self, first_byte: int) -> None:
        if first_byte >> 4 == PUBLISH and (first_byte >> 1) & 3 == 1:
            with self._lock:
                self.publishes += 1
                self.outstanding += 1
                self.max_outstanding = max(self.max_outstanding, self.outstanding)

    def _broker_sent(self, first_byte: int) -> None:
        if first_byte >> 4 == PUBACK:  # a broker sends PUBACK only for a client's PUBLISH
            with self._lock:
                self.outstanding -= 1
