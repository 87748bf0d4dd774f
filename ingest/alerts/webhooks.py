"""Webhooks: every alert event POSTed as its JSON to each configured URL.

`submit` never blocks and never raises: each delivery is its own task, retried with
exponential backoff and full jitter, capped per URL so that a hanging or failing hook
holds only its own slots and never delays ingest or the other URLs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from types import TracebackType

import httpx

from ingest.alerts.events import AlertEvent
from ingest.settings import WebhookSettings

log = logging.getLogger(__name__)

#: Concurrent deliveries per URL, and deliveries waiting in all (beyond it: dropped, logged).
PER_URL_CONCURRENCY = 8
MAX_PENDING = 10_000
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def backoff_s(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Wait before retry number `attempt` (1 = first retry): full jitter over base * 2^(n-1)."""
    ceiling = min(max_s, base_s * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


class WebhookNotifier:
    """`async with WebhookNotifier(settings.webhooks) as hooks: hooks.submit(event)`."""

    def __init__(self, settings: WebhookSettings, *, backoff_base_s: float = 1.0,
                 grace_s: float = 2.0, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.backoff_base_s = backoff_base_s
        self.grace_s = grace_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._rng = rng or random.Random()
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = {url: asyncio.Semaphore(PER_URL_CONCURRENCY) for url in settings.urls}

    async def __aenter__(self) -> WebhookNotifier:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout_s),
            headers={"Content-Type": "application/json", "User-Agent": "sanitel-alerts"},
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("webhooks: %d deliveries still pending at shutdown were abandoned",
                            len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def submit(self, event: AlertEvent) -> None:
        """Queue `event` for every URL; returns at once. Call from the event loop."""
        if self._client is None or not self._slots:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.error("webhooks: submit() called outside the event loop; alert %s not sent",
                      event.alert_id)
            return
        body = event.payload()
        for url in self._slots:
            if len(self._tasks) >= MAX_PENDING:
                self.dropped += 1
                log.error("webhooks: %d deliveries pending; dropped alert %s for %s",
                          MAX_PENDING, event.alert_id, url)
                continue
            task = loop.create_task(self._deliver(url, body, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, body: bytes, event: AlertEvent) -> None:
        attempts = self.settings.max_attempts
        attempt, detail = 0, ""
        while attempt < attempts:
            attempt += 1
            async with self._slots[url]:
                retry, detail = await self._post(url, body)
            if not detail:
                self.delivered += 1
                return
            if not retry:
                break
            if attempt < attempts:
                await asyncio.sleep(backoff_s(attempt, self.backoff_base_s,
                                              self.settings.backoff_max_s, self._rng))
        self.failed += 1
        log.warning("webhook %s: alert %s (%s %s) not delivered after %d attempts: %s",
                    url, event.alert_id, event.rule, event.state, attempt, detail)

    async def _post(self, url: str, body: bytes) -> tuple[bool, str]:
        """POST once: (worth retrying, what went wrong); an empty detail is success."""
        assert self._client is not None
        try:
            response = await self._client.post(url, content=body)
        except httpx.HTTPError as exc:
            return True, f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return False, ""
        status = response.status_code
        return status in _RETRY_STATUS or status >= 500, f"HTTP {status}"
