"""Incident changes made durable before their events leave, whatever the disk does.

The engine decides what changes; this writes it. Each change goes to the incident store
in one transaction with its events (into the outbox). A failing disk must not stop
ingest: the change stays in memory, is logged once, and is written again on each retry
until it sticks. Confirmations and site-rule marks are kept the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ingest.alerts.events import AlertEvent, Incident
from ingest.alerts.incident_db import AlertStoreError, IncidentStore
from ingest.alerts.site_watch import SiteWatch

log = logging.getLogger("ingest.alerts.engine")


class DurableChanges:
    def __init__(self, store: IncidentStore) -> None:
        self.store = store
        #: Changes the store refused (disk full, I/O error): retried on each `retry`.
        self._unsaved: dict[str, Incident] = {}
        self._unsaved_marks: dict[str, int] = {}
        self._unsaved_events: dict[str, AlertEvent] = {}
        #: Confirmations the store refused: tried again with the next `confirm`.
        self._unconfirmable: set[str] = set()
        #: What site rules must remember (a check-in), and what moved since the last write.
        self.rule_marks: dict[tuple[str, str], int] = store.rule_marks()
        self._moved_marks: dict[tuple[str, str], int] = {}

    @property
    def path(self) -> Path:
        return self.store.path

    def save(self, incidents: list[Incident], marks: dict[str, int],
             events: list[AlertEvent]) -> None:
        """Commit the change and its events (to the outbox) before the events leave; on a
        failing store keep everything in memory for `retry` (events confirmed meanwhile
        are not written again)."""
        failing = self._unsaved or self._unsaved_marks or self._unsaved_events
        if failing:
            self._unsaved.update((incident.alert_id, incident) for incident in incidents)
            for device_id, ts in marks.items():
                self._unsaved_marks[device_id] = max(ts, self._unsaved_marks.get(device_id, ts))
            self._unsaved_events.update((event.event_id, event) for event in events)
            incidents, marks = list(self._unsaved.values()), dict(self._unsaved_marks)
            events = list(self._unsaved_events.values())
        try:
            self.store.save(incidents, marks, events)
        except AlertStoreError as exc:
            if not failing:
                log.error("%s; incident changes are kept in memory and retried", exc)
            self._unsaved = {incident.alert_id: incident for incident in incidents}
            self._unsaved_marks = dict(marks)
            self._unsaved_events = {event.event_id: event for event in events}
            return
        if failing:
            log.warning("alert store %s: writes work again; %d incident changes saved",
                        self.store.path, len(self._unsaved))
        self._unsaved, self._unsaved_marks, self._unsaved_events = {}, {}, {}

    def retry(self) -> None:
        """Write what the store refused before, and the site-rule marks that moved."""
        self.save_marks()
        if self._unsaved or self._unsaved_marks or self._unsaved_events:
            self.save([], {}, [])

    def outbox_size(self) -> int:
        return self.store.outbox_size() + len(self._unsaved_events)

    def unconfirmed(self, held: set[str]) -> list[AlertEvent]:
        """The outbox (and events still only in memory), oldest first, less `held`."""
        held = held | self._unconfirmable
        events = [event for event in self.store.outbox() if event.event_id not in held]
        stored = {event.event_id for event in events}
        events.extend(event for event_id, event in self._unsaved_events.items()
                      if event_id not in stored and event_id not in held)
        return events

    def confirm(self, event_ids: Iterable[str]) -> None:
        """Drop delivered events from the outbox in one transaction; a failing store is
        logged and the ids tried again with the next call."""
        ids = set(event_ids)
        for event_id in ids:
            self._unsaved_events.pop(event_id, None)
        ids |= self._unconfirmable
        if not ids:
            return
        try:
            self.store.confirm(ids)
        except AlertStoreError as exc:
            if not self._unconfirmable:
                log.error("%s; will try again", exc)
            self._unconfirmable = ids
            return
        self._unconfirmable = set()

    def bound_outbox(self, max_events: int, max_age_s: float, now_ms: int) -> int:
        """Keep the outbox within its bounds (`alert_outbox` settings); logs what it drops."""
        try:
            dropped = self.store.trim_outbox(max_events, now_ms - int(max_age_s * 1000))
        except AlertStoreError as exc:
            log.error("%s", exc)
            return 0
        if dropped:
            log.warning("alert outbox %s: dropped the %d oldest undelivered events (beyond "
                        "alert_outbox.max_events %d or max_age_s %.0f); their crews were not "
                        "told of those changes", self.store.path, dropped, max_events,
                        max_age_s)
        return dropped

    def keep_marks(self, watches: list[SiteWatch]) -> None:
        """Note a site rule's mark when it moves; written with the next `retry` (each
        second) or on close. Written at once, every terminal's first reading after a
        start cost a durable SQLite write (py-spy: a third of the loop thread while
        draining a backlog); a crash loses at most a second of marks, and a lost mark only
        makes a rule count from the first reading after it."""
        for watch in watches:
            mark = watch.mark()
            key = (watch.owner.id, watch.rule.name)
            if mark is not None and self.rule_marks.get(key) != mark:
                self.rule_marks[key] = self._moved_marks[key] = mark

    def save_marks(self) -> None:
        moved, self._moved_marks = self._moved_marks, {}
        if not moved:
            return
        try:
            self.store.save_rule_marks(moved)
        except AlertStoreError as exc:
            log.error("%s; a restart will count %s from its start", exc, ", ".join(
                sorted({rule for _, rule in moved})))

    def close(self) -> None:
        self.save_marks()
        self.store.close()
