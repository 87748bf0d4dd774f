"""Acknowledgements as Alertmanager silences, on one Alertmanager.

An acknowledged incident gets a silence (rule, site, device; created by the crew) that
ends `silence_s` ahead and is extended while the incident lasts; when the incident
resolves or is gone, the silence is expired. Only silences we created (their ids are in
the state file) are ever touched: a crew's own silence is theirs, and one of ours that
someone expired early in Alertmanager's UI stays expired.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from ingest.alerts.alertmanager_http import expire_silence, get_silence, post
from ingest.alerts.alertmanager_payloads import AlertSnapshot, ms_of, silence
from ingest.alerts.alertmanager_state import AlertmanagerState, OurSilence

log = logging.getLogger(__name__)

#: A silence that ended this much before the end we gave it was ended by someone.
EARLY_MS = 5_000


class SilenceKeeper:
    def __init__(self, client: httpx.AsyncClient, url: str, state: AlertmanagerState,
                 silence_s: float) -> None:
        self._client = client
        self._url = url
        self._state = state
        self._ahead_ms = int(silence_s * 1000)

    async def reconcile(self, active: list[AlertSnapshot], now_ms: int) -> None:
        """Raises `AlertmanagerUnavailable` when Alertmanager does not answer."""
        ours = self._state.silences(self._url)
        live = {alert.alert_id: alert for alert in active}
        for alert_id, mine in ours.items():
            if alert_id not in live:
                if not mine.released:
                    await self._expire(mine)
                self._state.drop_silence(self._url, alert_id)
        for alert in active:
            if not alert.acknowledged_by:
                continue
            kept = ours.get(alert.alert_id)
            if kept is None:
                await self._create(alert, now_ms, None)
            elif not kept.released and kept.ends_ms - now_ms < self._ahead_ms // 2:
                await self._extend(alert, kept, now_ms)

    async def _create(self, alert: AlertSnapshot, now_ms: int, update: dict[str, Any] | None
                      ) -> None:
        ends_ms = now_ms + self._ahead_ms
        starts_ms = ms_of(update["startsAt"]) if update else now_ms
        body = silence(alert, starts_ms, ends_ms, update["id"] if update else None)
        answer = await post(self._client, f"{self._url}/api/v2/silences", body)
        if not isinstance(answer, dict) or "silenceID" not in answer:
            return  # refused (logged by `post`); tried again on the next sync
        self._state.keep_silence(self._url, OurSilence(alert.alert_id, answer["silenceID"],
                                                       ends_ms, False))
        if update is None:
            log.info("alertmanager %s: silence %s for alert %s (%s on %s), by %s", self._url,
                     answer["silenceID"], alert.alert_id, alert.rule, alert.device_id,
                     alert.acknowledged_by)

    async def _extend(self, alert: AlertSnapshot, mine: OurSilence, now_ms: int) -> None:
        current = await get_silence(self._client, self._url, mine.silence_id)
        if current is None:  # Alertmanager lost it (its storage is gone): make it again
            await self._create(alert, now_ms, None)
        elif current["status"]["state"] == "expired":
            if ms_of(current["endsAt"]) < mine.ends_ms - EARLY_MS:
                log.info("alertmanager %s: silence %s of alert %s was ended in Alertmanager; "
                         "left so", self._url, mine.silence_id, alert.alert_id)
                self._state.keep_silence(self._url, OurSilence(
                    mine.alert_id, mine.silence_id, mine.ends_ms, True))
            else:  # it ran out while we were away
                await self._create(alert, now_ms, None)
        else:
            await self._create(alert, now_ms, current)

    async def _expire(self, mine: OurSilence) -> None:
        current = await get_silence(self._client, self._url, mine.silence_id)
        if current is None or current["status"]["state"] == "expired":
            return
        await expire_silence(self._client, self._url, mine.silence_id)
        log.info("alertmanager %s: silence %s of alert %s expired (the alert ended)",
                 self._url, mine.silence_id, mine.alert_id)
