"""A small HTTP/1.1 server on the event loop for `/healthz`, `/readyz`, `/metrics` and
`POST /-/reload` (SPEC section 10).

On the loop rather than in a thread (prometheus-client's `start_http_server`) on purpose:
`/healthz` answers only while the loop turns, so a stuck loop fails the liveness probe, and
handlers read the pipeline's figures from the thread that writes them, without locks. Each
request is a few plain reads and one short response; one connection per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

log = logging.getLogger("sanitel.http")

MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
REQUEST_TIMEOUT_S = 10.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            413: "Content Too Large", 422: "Unprocessable Content", 500: "Internal Server Error",
            503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


Handler = Callable[[], Awaitable[Response]]


class HttpEndpointError(OSError):
    """The HTTP port cannot be opened; the message names the address and the setting."""


class HttpEndpoints:
    """`async with HttpEndpoints(host, port, {("GET", "/healthz"): handler}) as http:`;
    `http.port` is the bound port (useful with port 0)."""

    def __init__(self, host: str, port: int, routes: dict[tuple[str, str], Handler]) -> None:
        self.host = host
        self.port = port
        self._routes = routes
        self._paths = {path for _, path in routes}
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.host, self.port, limit=MAX_HEADER_BYTES)
        except OSError as exc:
            raise HttpEndpointError(
                f"cannot serve HTTP on {self.host}:{self.port} ({exc.strerror}); "
                "set http.host / http.port (SANITEL_HTTP__PORT), or http.enabled: false"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                response = await self._answer(reader)
                writer.write(_encode(response))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> Response:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return Response(413, b'{"error": "request headers too large"}')
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return Response(400, b'{"error": "not an HTTP request line"}')
        method, path = parts[0], parts[1].split("?", 1)[0]
        length = _content_length(lines[1:])
        if length is None or length < 0 or length > MAX_BODY_BYTES:
            return Response(413 if length and length > 0 else 400,
                            b'{"error": "bad or too large body"}')
        if length:
            await reader.readexactly(length)  # no endpoint takes a body
        handler = self._routes.get((method, path))
        if handler is None:
            return Response(405 if path in self._paths else 404,
                            b'{"error": "no such endpoint"}')
        try:
            return await handler()
        except Exception:
            log.exception("HTTP %s %s failed", method, path)
            return Response(500, b'{"error": "internal error; see the log"}')


def _content_length(headers: list[str]) -> int | None:
    for header in headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return 0


def _encode(response: Response) -> bytes:
    reason = _REASONS.get(response.status, "")
    head = (f"HTTP/1.1 {response.status} {reason}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + response.body
