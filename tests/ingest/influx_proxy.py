"""An HTTP proxy in front of a real influxd that can answer for it: a status of our choosing
for chosen bodies, or 503 after a number of writes (InfluxDB going away mid-batch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class InfluxProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        #: A status to answer instead of InfluxDB for a write body (None: forward it).
        self.refuse: Callable[[bytes], int | None] = lambda body: None
        #: Writes still forwarded before every request is answered 503 (None: no limit).
        self.writes_left: int | None = None
        self.bodies: list[tuple[int, int]] = []  # (size, status) of every write
        #: Seconds each write waits before it is forwarded (a slow InfluxDB).
        self.delay_s = 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, reply = proxy.answer(self.path, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if path.startswith("/write"):
            time.sleep(self.delay_s)
            if self.writes_left is not None and self.writes_left <= 0:
                self.bodies.append((len(body), 503))
                return 503, b'{"error":"going away"}'
            refused = self.refuse(body)
            if refused is not None:
                self.bodies.append((len(body), refused))
                return refused, b'{"error":"refused by the test proxy"}'
            if self.writes_left is not None:
                self.writes_left -= 1
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type",)}
        response = httpx.post(self.upstream + path, content=body, headers=keep, timeout=30)
        if path.startswith("/write"):
            self.bodies.append((len(body), response.status_code))
        return response.status_code, response.content

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
