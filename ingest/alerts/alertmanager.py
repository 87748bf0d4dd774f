"""Alerts to Prometheus Alertmanager (SPEC section 11), beside the webhooks.

Each Alertmanager URL (an HA pair: both) has its own task that brings the Alertmanager to
Sanitel's state: every active incident POSTed to `/api/v2/alerts` every `resend_s` (at
once when one changes), each resolve POSTed with its `endsAt` until taken, a silence for
each acknowledged incident and the end of that silence when the incident is gone. The
truth is read each time from the engine (`active`) and the small state file (`silences`,
`unsent_resolves`), so whatever Alertmanager missed while away, or while Sanitel was
stopped, is sent when it answers again: the final state converges.

`submit` never blocks and never raises; a slow or absent Alertmanager costs ingest nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from devices.sites import Registry
from ingest.alerts.alertmanager_http import AlertmanagerUnavailable, post
from ingest.alerts.alertmanager_payloads import AlertSnapshot, DashboardLinks, postable
from ingest.alerts.alertmanager_silences import SilenceKeeper
from ingest.alerts.alertmanager_state import AlertmanagerState, AlertmanagerStateError
from ingest.alerts.events import RESOLVED, AlertEvent, Incident
from ingest.settings import AlertmanagerSettings, GrafanaSettings

log = logging.getLogger(__name__)

#: Alerts per POST; a whole city offline is sent in several.
CHUNK = 500
#: An active alert ends in Alertmanager this many resends ahead unless sent again.
ACTIVE_FOR_RESENDS = 4
DEBOUNCE_S = 0.2
#: A resolve Alertmanager has not taken within a day is dropped: the alert has long ended
#: there by its own `endsAt` (an Alertmanager gone for good must not grow the state file).
KEEP_RESOLVES_MS = 86_400_000
RETRY_MIN_S = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


class _Target:
    """One Alertmanager: its URL, what changed since its last sync, whether it answers."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.kick = asyncio.Event()
        self.changed: set[str] = set()
        self.down_since: float | None = None


class AlertmanagerNotifier:
    """`async with AlertmanagerNotifier(...) as am: am.submit(event)`; `active` gives the
    engine's open incidents, `registry` the registry in force (district, site kind)."""

    def __init__(self, settings: AlertmanagerSettings, grafana: GrafanaSettings,
                 registry: Callable[[], Registry], active: Callable[[], list[Incident]],
                 state_dir: Path, *, grace_s: float = 2.0) -> None:
        self.settings = settings
        self.links = DashboardLinks(grafana.url, dict(grafana.site_dashboards))
        self._registry = registry
        self._active = active
        self._state_dir = state_dir
        self.grace_s = grace_s
        self.sent = 0
        self.failures = 0
        self._targets = [_Target(url) for url in settings.urls]
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._state: AlertmanagerState | None = None

    async def __aenter__(self) -> AlertmanagerNotifier:
        self._state = AlertmanagerState(self._state_dir)
        self._state.forget_urls_except([t.url for t in self._targets])
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout_s), follow_redirects=False,
            headers={"User-Agent": "sanitel-alerts"})
        self._tasks = [asyncio.create_task(self._run(t)) for t in self._targets]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # The resolves of the drain, once, briefly; what does not go now goes after a restart.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(
                *(self._sync(t, full=False) for t in self._targets), return_exceptions=True),
                self.grace_s)
        if self._client is not None:
            await self._client.aclose()
        if self._state is not None:
            self._state.close()

    def submit(self, event: AlertEvent) -> None:
        """Note the incident's change for every Alertmanager; returns at once."""
        if self._state is None:
            return
        resolved: list[AlertSnapshot] = []
        if event.state == RESOLVED:
            resolved.append(AlertSnapshot.of_event(event))
        if event.previous_severity and event.previous_severity != event.severity:
            resolved.append(AlertSnapshot.of_event(event, event.previous_severity))
        for target in self._targets:
            try:
                for alert in resolved:
                    self._state.add_resolve(target.url, alert)
            except AlertmanagerStateError as exc:
                log.error("%s; the resolve of alert %s reaches %s only by Alertmanager's "
                          "own timeout", exc, event.alert_id, target.url)
            target.changed.add(event.alert_id)
            target.kick.set()

    # -- one Alertmanager -------------------------------------------------------------------

    async def _run(self, target: _Target) -> None:
        resend_s = self.settings.resend_s
        next_full, retry_s = 0.0, 0.0
        while True:
            wait_s = retry_s or max(0.0, next_full - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(target.kick.wait(), wait_s)
                await asyncio.sleep(DEBOUNCE_S)  # a burst of changes goes in one POST
            target.kick.clear()
            full = retry_s > 0 or time.monotonic() >= next_full
            if await self._guarded_sync(target, full):
                retry_s = 0.0
                if full:
                    next_full = time.monotonic() + resend_s
            else:
                retry_s = min(resend_s, max(RETRY_MIN_S, retry_s * 2))

    async def _guarded_sync(self, target: _Target, full: bool) -> bool:
        """`_sync`, and whatever it did not foresee logged and retried, never the end of the
        sender: its Alertmanager would get nothing more until a restart."""
        try:
            return await self._sync(target, full)
        except Exception:
            log.exception("alertmanager %s: unexpected error; tried again later", target.url)
            self.failures += 1
            return False

    async def _sync(self, target: _Target, full: bool) -> bool:
        """Bring one Alertmanager to our state (`full`: every active alert, else the
        changed ones); False when it did not answer (then all is tried again later)."""
        assert self._state is not None
        changed, target.changed = target.changed, set()
        active = [AlertSnapshot.of_incident(i) for i in self._active()]
        try:
            resolves = self._pending_resolves(target, active)
            sending = [a for a in active if full or a.alert_id in changed]
            await self._post_alerts(target, resolves + sending)
            self._state.drop_resolves(target.url, resolves)
            keeper = SilenceKeeper(self._client_or_fail(), target.url, self._state,
                                   self.settings.silence_s)
            await keeper.reconcile(active, now_ms())
        except (AlertmanagerUnavailable, AlertmanagerStateError) as exc:
            target.changed |= changed
            self.failures += 1
            if target.down_since is None:
                target.down_since = time.monotonic()
                log.warning("%s; alerts and silences are kept and sent when it answers", exc)
            return False
        if target.down_since is not None:
            log.info("alertmanager %s: answers again after %.0f s; %d alerts sent", target.url,
                     time.monotonic() - target.down_since, len(resolves) + len(sending))
            target.down_since = None
        return True

    def _pending_resolves(self, target: _Target, active: list[AlertSnapshot]
                          ) -> list[AlertSnapshot]:
        """The resolves not taken yet, except those an active incident under the same labels
        supersedes (a late resolve would end it in Alertmanager) and those too old."""
        assert self._state is not None
        live = {(a.key, a.severity) for a in active}
        too_old = now_ms() - KEEP_RESOLVES_MS
        resolves = self._state.resolves(target.url)
        dropped = [a for a in resolves
                   if (a.key, a.severity) in live or (a.resolved_ms or 0) < too_old]
        if dropped:
            self._state.drop_resolves(target.url, dropped)
        return [a for a in resolves if a not in dropped]

    async def _post_alerts(self, target: _Target, alerts: list[AlertSnapshot]) -> None:
        if not alerts:
            return
        registry, now = self._registry(), now_ms()
        active_for_ms = int(ACTIVE_FOR_RESENDS * self.settings.resend_s * 1000)
        bodies = [postable(a, registry, self.links, now, active_for_ms) for a in alerts]
        for start in range(0, len(bodies), CHUNK):
            await post(self._client_or_fail(), f"{target.url}/api/v2/alerts",
                       bodies[start:start + CHUNK])
        self.sent += len(bodies)

    def _client_or_fail(self) -> httpx.AsyncClient:
        if self._client is None:
            raise AlertmanagerUnavailable("alertmanager notifier: used outside `async with`")
        return self._client

