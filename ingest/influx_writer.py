"""Writing line protocol to InfluxDB, through the 1.x API or the v2 write API (SPEC section 5).

A writer answers a body of points in one of these ways: written; `WriteUnavailable`
(connection refused, timeout, 5xx, 408, 429: try again later, keep the points), of which
`CredentialsRefused` (401/403: kept until an operator fixes the credential); or
`WriteRejected` (400, 422 and any other 4xx: these points will never be taken as they
are), of which `BodyTooLarge` (413: split the body until it fits).
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Protocol, Self

import httpx

from ingest.settings import InfluxSettings

log = logging.getLogger("sanitel.sink")


class WriteUnavailable(Exception):
    """InfluxDB cannot take the points now; they are kept and retried."""


class CredentialsRefused(WriteUnavailable):
    """InfluxDB refuses our credentials (HTTP 401/403); the points wait until they are fixed."""


class WriteRejected(Exception):
    """InfluxDB refuses these points (HTTP 400, 422, other 4xx); retrying would not help."""


class BodyTooLarge(WriteRejected):
    """InfluxDB refuses the body as too large (HTTP 413); a smaller one may be taken."""


class InfluxWriter(Protocol):
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def write(self, body: bytes) -> None: ...


#: 4xx answers about the server or the connection, not about the points in the body:
#: every body would get them (404: no such database or endpoint), so retry, keeping them.
_RETRIED_4XX = frozenset({404, 408, 425, 429})


def _raise_for(status: int, text: str, where: str, size: int) -> None:
    if status < 300:
        return
    if status == 413:
        raise BodyTooLarge(f"{where} refused a body of {size} bytes as too large (HTTP 413)")
    if status in (401, 403):
        raise CredentialsRefused(f"{where} refused our credentials (HTTP {status}): {text[:200]}")
    if 400 <= status < 500 and status not in _RETRIED_4XX:
        raise WriteRejected(f"{where} refused the points (HTTP {status}): {text[:300]}")
    raise WriteUnavailable(f"{where} answered HTTP {status}: {text[:300]}")


class V1Writer:
    """`POST /write` of InfluxDB 1.x, or the v1 compatibility API of 2.x / 3.x."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._settings = settings
        self._params = {"db": settings.database, "precision": "ms"}
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if settings.token is not None:
            self._headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username and settings.password is not None:
            self._params |= {"u": settings.username, "p": settings.password.get_secret_value()}
        # Plain http has no certificate to check; skipping the CA bundle saves ~70 ms at start.
        self._client = httpx.AsyncClient(
            base_url=settings.url, timeout=settings.timeout_s, headers=self._headers,
            verify=settings.url.startswith("https://"),
        )

    async def __aenter__(self) -> Self:
        if self._settings.create_database:
            await self._create_database()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def _create_database(self) -> None:
        params = {k: v for k, v in self._params.items() if k in ("u", "p")}
        params["q"] = f'CREATE DATABASE "{self._settings.database}"'
        try:
            response = await self._client.post("/query", params=params)
        except httpx.HTTPError as exc:
            log.warning("cannot create database %r yet: %s", self._settings.database, exc)
            return
        if response.status_code >= 300:
            log.warning("CREATE DATABASE answered HTTP %s: %s", response.status_code,
                        response.text[:200])

    async def write(self, body: bytes) -> None:
        try:
            response = await self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise WriteUnavailable(f"InfluxDB at {self._settings.url}: {exc!r}") from None
        if response.status_code == 404 and "database not found" in response.text:
            await self._create_database()
            raise WriteUnavailable(f"database {self._settings.database!r} was missing")
        _raise_for(response.status_code, response.text, f"InfluxDB at {self._settings.url}",
                   len(body))


class V2Writer:
    """The v2 write API (`POST /api/v2/write`) through `influxdb-client`, in a worker thread."""

    def __init__(self, settings: InfluxSettings) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._settings = settings
        token = settings.token.get_secret_value() if settings.token else None
        if token is None and settings.username and settings.password is not None:
            token = f"{settings.username}:{settings.password.get_secret_value()}"
        self._client = InfluxDBClient(
            url=settings.url, token=token or "", org=settings.org,
            timeout=int(settings.timeout_s * 1000), retries=0,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self._client.close)

    async def write(self, body: bytes) -> None:
        await asyncio.to_thread(self._write, body)

    def _write(self, body: bytes) -> None:
        import urllib3
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        where = f"InfluxDB v2 API at {self._settings.url}"
        try:
            self._api.write(
                bucket=self._settings.database, org=self._settings.org, record=body,
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            _raise_for(exc.status or 500, str(exc.body or exc.reason), where, len(body))
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # connection errors, timeouts
            raise WriteUnavailable(f"{where}: {exc!r}") from None


def open_writer(settings: InfluxSettings) -> InfluxWriter:
    return V2Writer(settings) if settings.api == "v2" else V1Writer(settings)
