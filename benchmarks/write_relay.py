"""A relay in front of influxd that notes when each write is answered: the drain's clock.

Polling `SELECT count(seq)` to see when a consumer's points arrive costs influxd the
most when it can least spare it: with two writers of Sanitel's 50,000 points running,
each count took about 100 ms of influxd's CPU and the writes took 30 to 60 % longer
(0.46-0.60 s without polling, 0.60-0.82 s polled every 25 ms; `benchmarks/README.md`).
So the storing consumers write through this relay instead: it passes every request on to
influxd as it is and answers with influxd's answer, and for each `/write` that influxd
answered 2xx it notes the time of the answer and how many lines of the readings'
measurements (with a `seq` field) the body held. A reading is stored at the moment
InfluxDB says so, which is also the moment its writer learns it.

With `latencies=True` it also notes, for each reading line, the time of the answer less
the line's timestamp (the live run's readings carry their send time): publish -> stored,
as InfluxDB acknowledged it, with no read-back delay and no query load on influxd.

The relay is a threaded HTTP/1.1 server (keep-alive, as the consumers use) with one
connection to influxd per client connection; it only copies bytes and counts lines.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: Request headers passed on to influxd (hop-by-hop ones are not).
_PASSED = ("content-type", "authorization", "content-encoding", "accept", "user-agent")


@dataclass
class Writes:
    """The writes influxd took for one database: (answered at, reading lines)."""

    answered: list[tuple[float, int]] = field(default_factory=list)
    #: With `latencies=True`: answer time - timestamp, in ms, of every reading line.
    latencies_ms: list[float] = field(default_factory=list)
    readings: int = 0


def _readings(body: bytes, measurements: frozenset[bytes]) -> Iterator[bytes]:
    """Lines of `body` whose measurement is one of `measurements` and that have `seq`."""
    for line in body.split(b"\n"):
        name = line.partition(b" ")[0].partition(b",")[0]
        if name in measurements and b"seq=" in line:
            yield line


def reading_lines(body: bytes, measurements: frozenset[bytes]) -> int:
    """How many lines of `body` are readings (`_readings`)."""
    return sum(1 for _ in _readings(body, measurements))


#: Nanoseconds per unit of each `precision` of InfluxDB 1.x's `/write` (default: ns).
_NS_PER_UNIT = {"ns": 1, "n": 1, "u": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                "h": 3600 * 10**9}


def reading_times_ms(body: bytes, measurements: frozenset[bytes], precision: str) -> list[float]:
    """The timestamps, in epoch ms, of the lines `reading_lines` counts (a line without
    one is left out: InfluxDB gives it the time of the write, not a send time)."""
    ns = _NS_PER_UNIT[precision or "ns"]
    times = []
    for line in _readings(body, measurements):
        fields_and_time = line.rsplit(b" ", 2)
        if len(fields_and_time) == 3 and fields_and_time[2].isdigit():
            times.append(int(fields_and_time[2]) * ns / 10**6)  # int / int: exact
    return times


class WriteRelay:
    """`with WriteRelay(influx_url, measurements) as relay:` consumers write to `relay.url`."""

    def __init__(self, upstream: str, measurements: Iterable[str], *,
                 latencies: bool = False) -> None:
        parts = urlsplit(upstream)
        self.latencies = latencies
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 8086)
        self.measurements = frozenset(m.encode() for m in measurements)
        self._writes: dict[str, Writes] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="write-relay")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> WriteRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def writes(self, db: str) -> Writes:
        """A snapshot of the writes answered for `db` so far."""
        with self._lock:
            seen = self._writes.get(db, Writes())
            return Writes(list(seen.answered), list(seen.latencies_ms), seen.readings)

    def readings(self, db: str) -> int:
        """Reading lines InfluxDB took for `db` so far (no copy: cheap to ask often)."""
        with self._lock:
            return self._writes[db].readings if db in self._writes else 0

    def _noted(self, db: str, answered: float, body: bytes, precision: str) -> None:
        if self.latencies:
            times = reading_times_ms(body, self.measurements, precision)
            lines, answered_ms = len(times), answered * 1000
            latencies = [answered_ms - t for t in times]
        else:
            lines, latencies = reading_lines(body, self.measurements), []
        with self._lock:
            writes = self._writes.setdefault(db, Writes())
            writes.answered.append((answered, lines))
            writes.latencies_ms.extend(latencies)
            writes.readings += lines

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._relay()

            def do_POST(self) -> None:
                self._relay()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _relay(self) -> None:
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() in _PASSED}
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(*relay.upstream, timeout=60)
                try:
                    self.upstream.request(self.command, self.path, body, headers)
                    response = self.upstream.getresponse()
                    answer = response.read()
                except (OSError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    self.send_error(502, "influxd did not answer the relay")
                    return
                answered = time.time()
                if self.path.startswith("/write") and response.status < 300:
                    query = parse_qs(urlsplit(self.path).query)
                    relay._noted(query.get("db", [""])[0], answered, body,
                                 query.get("precision", [""])[0])
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length",
                                           "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
