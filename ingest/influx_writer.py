"""Writing line protocol to InfluxDB, through the 1.x API or the v2 write API (SPEC section 5).

A writer answers a body of points in one of three ways: written; `WriteUnavailable`
(connection refused, timeout, 5xx, 429: try again later, keep the points); or
`WriteRejected` (HTTP 400: InfluxDB refuses the points as invalid; retrying will not help).
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


class WriteRejected(Exception):
    """InfluxDB refuses the points as invalid (HTTP 400); retrying would not help."""


class InfluxWriter(Protocol):
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def write(self, body: bytes) -> None: ...


def _raise_for(status: int, text: str, where: str) -> None:
    if status < 300:
        return
    if status in (400, 422):
        raise WriteRejected(f"{where} refused the points (HTTP {status}): {text[:300]}")
    if status in (401, 403):
        # A credentials problem is an operator's to fix; keep the points meanwhile.
        log.error("%s refused our credentials (HTTP %s): %s", where, status, text[:200])
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
        _raise_for(response.status_code, response.text, f"InfluxDB at {self._settings.url}")


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
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        where = f"InfluxDB v2 API at {self._settings.url}"
        try:
            self._api.write(
                bucket=self._settings.database, org=self._settings.org, record=body,
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            _raise_for(exc.status or 500, str(exc.body or exc.reason), where)
        except Exception as exc:  # urllib3 connection errors, timeouts
            raise WriteUnavailable(f"{where}: {exc!r}") from None


def open_writer(settings: InfluxSettings) -> InfluxWriter:
    return V2Writer(settings) if settings.api == "v2" else V1Writer(settings)
