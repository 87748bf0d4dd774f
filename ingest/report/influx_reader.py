"""InfluxQL over the 1.x `/query` API (served by InfluxDB 1.x, and by 2.x and 3.x as their
v1 compatibility API), answers streamed in chunks (`chunked=true`) so a month of raw
readings never has to fit one response; `ingest.influxql_client` answers whole."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from ingest.influxql_client import reader_credentials
from ingest.settings import InfluxSettings

Row = dict[str, Any]


class ReportQueryError(RuntimeError):
    """InfluxDB could not answer one of the report's queries; the message names it."""


class InfluxReader:
    """Runs InfluxQL SELECTs against the configured database; rows as dicts, tags merged in."""

    def __init__(self, settings: InfluxSettings, chunk_size: int = 10_000) -> None:
        self._where = f"InfluxDB at {settings.url} (database {settings.database!r})"
        params: dict[str, str] = {"db": settings.database, "epoch": "ms", "chunked": "true",
                                  "chunk_size": str(chunk_size)}
        credentials = reader_credentials(settings)  # the read-only user, when there is one
        self._params = params | credentials.params()
        self._client = httpx.Client(
            base_url=settings.url, headers=credentials.headers(),
            timeout=max(settings.timeout_s, 120.0),
            verify=settings.url.startswith("https://"),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._client.close()

    def rows(self, query: str) -> Iterator[Row]:
        """Every row of the statement's series, in the order InfluxDB gives them."""
        try:
            with self._client.stream("POST", "/query", data={**self._params, "q": query}
                                     ) as response:
                if response.status_code in (401, 403):
                    raise ReportQueryError(
                        f"{self._where} refused our credentials (HTTP {response.status_code}); "
                        "set SANITEL_INFLUX__TOKEN or SANITEL_INFLUX__USERNAME/__PASSWORD")
                if response.status_code >= 300 and response.status_code != 400:
                    response.read()
                    raise ReportQueryError(f"{self._where} answered HTTP {response.status_code}"
                                           f" to {query!r}: {response.text[:300]}")
                yield from self._answer_rows(response.iter_lines(), query)
        except httpx.HTTPError as exc:
            raise ReportQueryError(f"{self._where} cannot be reached for {query!r}: {exc}"
                                   ) from None

    def _answer_rows(self, lines: Iterator[str], query: str) -> Iterator[Row]:
        """One JSON document per line when chunked; a server that ignores `chunked` (or
        pretty-prints) answers one document over many lines: then it is read whole."""
        for line in lines:
            if not line.strip():
                continue
            try:
                chunk = orjson.loads(line)
            except orjson.JSONDecodeError:
                rest = "\n".join([line, *lines])
                try:
                    chunk = orjson.loads(rest)
                except orjson.JSONDecodeError:
                    raise ReportQueryError(f"{self._where} answered {query!r} with what is "
                                           f"not JSON: {rest[:200]!r}") from None
            yield from self._chunk_rows(chunk, query)

    def _chunk_rows(self, chunk: Any, query: str) -> Iterator[Row]:
        if "error" in chunk:
            raise ReportQueryError(f"{self._where}: {chunk['error']} (query {query!r})")
        for statement in chunk.get("results", []):
            error = statement.get("error")
            if error and "database not found" in error:
                raise ReportQueryError(f"{self._where}: the database does not exist; check "
                                       "influx.database / SANITEL_INFLUX__DATABASE")
            if error:
                raise ReportQueryError(f"{self._where}: {error} (query {query!r})")
            for series in statement.get("series", []):
                tags = series.get("tags") or {}
                columns = series["columns"]
                for values in series.get("values", []):
                    yield {**tags, **dict(zip(columns, values, strict=True))}
