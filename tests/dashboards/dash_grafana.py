"""A recording stand-in for the parts of Grafana's HTTP API that `push` uses.

It keeps state like Grafana does (ids, versions, `secureJsonFields` instead of the
secrets, `meta.folderUid`), so idempotency is observable: a write that Grafana
would turn into a new dashboard version is a recorded POST here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Call:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class GrafanaState:
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    next_id: int = 1
    fail_with: int | None = None

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGrafana:
    def __init__(self) -> None:
        self.state = GrafanaState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def calls(self) -> list[Call]:
        return self.state.calls

    def writes(self) -> list[Call]:
        return [c for c in self.state.calls if c.method != "GET"]


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            body = self._body() if self.command in ("POST", "PUT") else None
            state.calls.append(Call(self.command, self.path, body,
                                    self.headers.get("Authorization")))
            if state.fail_with is not None:
                self._reply(state.fail_with, {"message": "injected failure"})
                return
            status, payload = route(state, self.command, self.path, body)
            self._reply(status, payload)

        do_GET = do_POST = do_PUT = _handle

    return Handler


NOT_FOUND = (404, {"message": "not found"})


def route(state: GrafanaState, method: str, path: str, body: Any) -> tuple[int, Any]:
    if m := re.fullmatch(r"/api/folders/([\w-]+)", path):
        folder = state.folders.get(m[1])
        return (200, folder) if folder and method == "GET" else NOT_FOUND
    if path == "/api/folders" and method == "POST":
        folder = {"id": state.new_id(), "uid": body["uid"], "title": body["title"]}
        state.folders[body["uid"]] = folder
        return 200, folder
    if m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
        return _datasource(state, method, m[1], body)
    if path == "/api/datasources" and method == "POST":
        return _datasource(state, "PUT", body["uid"], body)
    if m := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
        stored = state.dashboards.get(m[1])
        return (200, stored) if stored else NOT_FOUND
    if path == "/api/dashboards/db" and method == "POST":
        return _save_dashboard(state, body)
    return NOT_FOUND


def _datasource(state: GrafanaState, method: str, uid: str, body: Any) -> tuple[int, Any]:
    stored = state.datasources.get(uid)
    if method == "GET":
        shown = {k: v for k, v in (stored or {}).items() if k != "_secrets"}
        return (200, shown) if stored else NOT_FOUND
    if stored is not None and stored.get("readOnly"):
        return 403, {"message": "Cannot update read-only data source"}
    secrets = body.get("secureJsonData") or {}
    record = {k: v for k, v in body.items() if k != "secureJsonData"}
    record |= {"id": stored["id"] if stored else state.new_id(), "orgId": 1, "readOnly": False,
               "version": (stored or {}).get("version", 0) + 1,
               "secureJsonFields": {k: True for k in secrets}, "_secrets": secrets}
    state.datasources[uid] = record
    return 200, {"datasource": record, "id": record["id"], "message": "Datasource saved"}


def _save_dashboard(state: GrafanaState, body: Any) -> tuple[int, Any]:
    board = dict(body["dashboard"])
    uid = board["uid"]
    stored = state.dashboards.get(uid)
    if stored and not body.get("overwrite"):
        return 412, {"status": "version-mismatch"}
    version = stored["dashboard"]["version"] + 1 if stored else 1
    board |= {"id": stored["dashboard"]["id"] if stored else state.new_id(), "version": version}
    meta = {"folderUid": body.get("folderUid", ""), "provisioned": False, "version": version}
    state.dashboards[uid] = {"dashboard": board, "meta": meta}
    return 200, {"status": "success", "uid": uid, "version": version, "id": board["id"]}
