"""InfluxQL over HTTP (`/query`): what 1.x serves natively and 2.x / 3.x through their
v1 compatibility API (SPEC section 5). Used by the setup and by the rollup task.

An answer is a list of statement results; a refusal of our credentials or of our rights
is `InfluxRightsMissing`, an unreachable server `InfluxUnreachable`, an InfluxQL error
`InfluxQueryError`, each naming the statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from ingest.settings import InfluxSettings

#: Texts InfluxDB 1.x answers when the user may not do what was asked.
_RIGHTS_WORDS = ("authorization failed", "requires admin privilege", "not authorized",
                 "unable to parse authentication credentials", "user not found")


class InfluxQueryError(Exception):
    """InfluxDB refused an InfluxQL statement; the message names it."""


class InfluxRightsMissing(InfluxQueryError):
    """Our credentials are refused, or lack the rights the statement needs."""


class InfluxUnreachable(InfluxQueryError):
    """No answer from InfluxDB (connection refused, timeout, 5xx)."""


@dataclass(frozen=True)
class Credentials:
    """A user and password, or a token; neither: anonymous."""

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    def params(self) -> dict[str, str]:
        """`u` and `p` as 1.x reads them from a URL (prefer `basic_auth`)."""
        if self.token is None and self.username and self.password is not None:
            return {"u": self.username, "p": self.password.get_secret_value()}
        return {}

    def basic_auth(self) -> tuple[str, str] | None:
        """HTTP Basic: 1.x and the v1 compatibility API take it; no password in a URL."""
        if self.token is None and self.username and self.password is not None:
            return (self.username, self.password.get_secret_value())
        return None

    def headers(self) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Token {self.token.get_secret_value()}"}
        return {}


def reader_credentials(influx: InfluxSettings) -> Credentials:
    """Who reads: the read-only user when configured (SPEC section 8), else ingest's own."""
    if influx.read_username and influx.read_password is not None:
        return Credentials(influx.read_username, influx.read_password)
    return Credentials(influx.username, influx.password, influx.token)


def _statements(response: httpx.Response, query: str) -> list[dict[str, Any]]:
    shown = query if len(query) < 200 else query[:200] + "..."
    text = response.text[:300]
    refused = response.status_code >= 300 and any(w in text.lower() for w in _RIGHTS_WORDS)
    if response.status_code in (401, 403) or refused:
        raise InfluxRightsMissing(f"InfluxDB refused {shown!r} (HTTP {response.status_code}): "
                                  f"{text}")
    if response.status_code >= 500:
        raise InfluxUnreachable(f"InfluxDB answered HTTP {response.status_code} to {shown!r}")
    if response.status_code >= 300:
        raise InfluxQueryError(f"InfluxDB refused {shown!r} (HTTP {response.status_code}): "
                               f"{text}")
    results: list[dict[str, Any]] = response.json().get("results", [])
    for result in results:
        if "error" in result:
            error = str(result["error"])
            kind = InfluxRightsMissing if any(w in error for w in _RIGHTS_WORDS) else (
                InfluxQueryError)
            raise kind(f"InfluxDB refused {shown!r}: {error}")
    return results


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one statement result as dicts, the series' tags merged in."""
    out: list[dict[str, Any]] = []
    for series in result.get("series", []):
        tags = series.get("tags", {})
        columns = series["columns"]
        for values in series.get("values", []):
            out.append({**tags, **dict(zip(columns, values, strict=True))})
    return out


class InfluxQL:
    """Blocking client, for the setup (a command, or a worker thread of ingest)."""

    def __init__(self, url: str, credentials: Credentials, timeout_s: float = 10.0) -> None:
        self.url = url
        self._credentials = credentials
        # Plain http has no certificate to check: no CA bundle to load (~20 ms per client).
        self._client = httpx.Client(base_url=url, timeout=timeout_s,
                                    headers=credentials.headers(), auth=credentials.basic_auth(),
                                    verify=url.startswith("https://"))

    def close(self) -> None:
        self._client.close()

    def run(self, query: str, database: str | None = None) -> list[dict[str, Any]]:
        data = {"q": query, "epoch": "ms"}
        if database:
            data["db"] = database
        try:
            response = self._client.post("/query", data=data)
        except httpx.HTTPError as exc:
            raise InfluxUnreachable(f"InfluxDB at {self.url}: {exc!r}") from None
        return _statements(response, query)


class AsyncInfluxQL:
    """Non-blocking client, for the rollup task inside `sanitel ingest`."""

    def __init__(self, url: str, credentials: Credentials, timeout_s: float = 30.0) -> None:
        self.url = url
        self._credentials = credentials
        self._client = httpx.AsyncClient(base_url=url, timeout=timeout_s,
                                         headers=credentials.headers(),
                                         auth=credentials.basic_auth(),
                                         verify=url.startswith("https://"))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self, query: str, database: str) -> list[dict[str, Any]]:
        data = {"q": query, "epoch": "ms", "db": database}
        try:
            response = await self._client.post("/query", data=data)
        except httpx.HTTPError as exc:
            raise InfluxUnreachable(f"InfluxDB at {self.url}: {exc!r}") from None
        return _statements(response, query)
