"""A local stand-in for the crews' phones: a webhook receiver that keeps what Alertmanager
sends to each receiver (`/crews/<name>`, `/duty-phone`, `/control-room`).

Used by `sanitel demo` (each receiver's notifications appended to `<dir>/<name>.jsonl`)
and by the tests of the routing.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


class CrewInbox:
    """`with CrewInbox(dir) as inbox:` serves on `inbox.url` until the block ends."""

    def __init__(self, directory: Path | None = None, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self.send_response(400)
                else:
                    inbox.keep(self.path, body)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def keep(self, path: str, notification: dict[str, Any]) -> None:
        with self._lock:
            self.received.append((path, notification))
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
                name = path.rstrip("/").rsplit("/", 1)[-1] or "root"
                with (self.directory / f"{name}.jsonl").open("a", encoding="utf-8") as out:
                    out.write(json.dumps(notification, ensure_ascii=False) + "\n")

    def alerts_at(self, path: str) -> list[dict[str, Any]]:
        """Every alert of every notification POSTed to `path`, oldest first."""
        with self._lock:
            return [alert for got, body in self.received if got == path
                    for alert in body.get("alerts", [])]

    def paths(self) -> set[str]:
        with self._lock:
            return {path for path, _ in self.received}

    def counts(self) -> dict[str, int]:
        """Firing alerts notified per receiver name (the last path segment)."""
        counts: dict[str, int] = {}
        with self._lock:
            for path, body in self.received:
                name = path.rstrip("/").rsplit("/", 1)[-1]
                firing = sum(1 for a in body.get("alerts", []) if a.get("status") == "firing")
                counts[name] = counts.get(name, 0) + firing
        return counts

    def __enter__(self) -> CrewInbox:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
