"""The three calls of Alertmanager's v2 API that the notifier makes, and how they fail."""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


class AlertmanagerUnavailable(RuntimeError):
    """One Alertmanager did not take a request; the message names the URL and the cause."""


async def post(client: httpx.AsyncClient, url: str, body: Any) -> Any:
    """POST JSON; the answer's JSON (None when empty). A refusal of the body itself (4xx) is
    logged and not retried: sending it again would not change the answer."""
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise AlertmanagerUnavailable(
            f"alertmanager {url}: unreachable ({type(exc).__name__}: {exc})") from None
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise AlertmanagerUnavailable(f"alertmanager {url}: HTTP {response.status_code} "
                                      f"({response.text[:200]})")
    if not response.is_success:
        log.error("alertmanager %s refused the request: HTTP %d %s", url,
                  response.status_code, response.text[:300])
        return None
    return _json(response, url) if response.content else None


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AlertmanagerUnavailable(
            f"alertmanager {url}: answered HTTP {response.status_code} with something that is "
            f"not JSON ({response.text[:100]!r}); is this URL an Alertmanager?") from None


async def get_silence(client: httpx.AsyncClient, base_url: str, silence_id: str
                      ) -> dict[str, Any] | None:
    """GET /api/v2/silence/{id}; None when Alertmanager does not know it."""
    url = f"{base_url}/api/v2/silence/{silence_id}"
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        raise AlertmanagerUnavailable(f"alertmanager {url}: unreachable ({exc})") from None
    if response.status_code == 404:
        return None
    if not response.is_success:
        raise AlertmanagerUnavailable(f"alertmanager {url}: HTTP {response.status_code}")
    found = _json(response, url)
    if not isinstance(found, dict) or not isinstance(found.get("status"), dict):
        raise AlertmanagerUnavailable(f"alertmanager {url}: not a silence: {found!r:.100}")
    return found


async def expire_silence(client: httpx.AsyncClient, base_url: str, silence_id: str) -> None:
    """DELETE /api/v2/silence/{id} (Alertmanager expires it)."""
    url = f"{base_url}/api/v2/silence/{silence_id}"
    try:
        response = await client.delete(url)
    except httpx.HTTPError as exc:
        raise AlertmanagerUnavailable(f"alertmanager {url}: unreachable ({exc})") from None
    if not response.is_success:
        raise AlertmanagerUnavailable(f"alertmanager {url}: HTTP {response.status_code} "
                                      f"({response.text[:200]})")
