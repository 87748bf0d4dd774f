"""A local webhook receiver for the alert tests: `http.server` in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook:
    """A local HTTP server answering POSTs with the given statuses in turn (last one repeats);
    `hang=True`: it holds every request until released."""

    def __init__(self, statuses: list[int], hang: bool = False) -> None:
        self.statuses = statuses
        self.bodies: list[bytes] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append(body)
                hook.arrived.set()
                if hang:
                    hook.release.wait(30)
                status = hook.statuses[min(len(hook.bodies), len(hook.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
