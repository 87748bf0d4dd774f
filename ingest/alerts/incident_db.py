"""The incident store: SQLite in the state directory, so incidents outlive a restart or kill -9.

Written only when an incident changes, in one transaction per engine call, committed
durably (WAL, synchronous=FULL) before the events are handed to the caller. The same
transaction puts those events in the `outbox`; they stay there until the caller confirms
them delivered, so a crash between the commit and the delivery loses none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ingest.alerts.events import RESOLVED, AlertEvent, Incident

log = logging.getLogger(__name__)

STORE_FILE = "alerts.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    alert_id TEXT PRIMARY KEY,
    rule TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
    site_id TEXT NOT NULL, site_name TEXT NOT NULL,
    device_id TEXT NOT NULL, device_type TEXT NOT NULL, field TEXT,
    value TEXT NOT NULL, threshold TEXT NOT NULL,
    started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, resolved_ms INTEGER,
    message TEXT NOT NULL, acknowledged_by TEXT,
    events INTEGER NOT NULL DEFAULT 0
);
-- One open incident per device and rule, whatever happens in the code above.
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident
    ON incidents (device_id, rule) WHERE state != 'resolved';
-- The reading time of each device's last incident change: older readings redelivered
-- after a crash must not reopen or close anything.
CREATE TABLE IF NOT EXISTS device_marks (
    device_id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL
);
-- What a site rule keeps across restarts per device, e.g. the last cleaning check-in.
CREATE TABLE IF NOT EXISTS rule_marks (
    device_id TEXT NOT NULL, rule TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, rule)
);
-- Events handed out and not yet confirmed delivered (published and stored), oldest first.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL
);
"""
#: Columns added since the first release: (table, column, definition).
_ADDED = (("incidents", "events", "INTEGER NOT NULL DEFAULT 0"),
          ("outbox", "ts_ms", "INTEGER NOT NULL DEFAULT 0"))

_COLUMNS = ("alert_id", "rule", "severity", "state", "site_id", "site_name", "device_id",
            "device_type", "field", "value", "threshold", "started_ms", "updated_ms",
            "resolved_ms", "message", "acknowledged_by", "events")
_EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(AlertEvent))


class AlertStoreError(RuntimeError):
    """The incident store cannot be opened or written; the message names the file."""


def store_path(state_dir: Path) -> Path:
    return state_dir / STORE_FILE


class IncidentStore:
    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10,
                                           isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=10, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._migrate()
            present = {row[1] for row in self._db.execute("PRAGMA table_info(incidents)")}
        except (sqlite3.Error, OSError) as exc:
            raise AlertStoreError(f"alert store {path}: cannot be opened ({exc})") from None
        #: A store written by an older release, read-only: its missing columns read as default.
        self._columns = ",".join(c if c in present else "0" for c in _COLUMNS)

    def _migrate(self) -> None:
        for table, column, definition in _ADDED:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def open_incidents(self) -> list[Incident]:
        rows = self._db.execute(
            f"SELECT {self._columns} FROM incidents WHERE state != ? ORDER BY started_ms",
            (RESOLVED,),
        )
        return [_incident(row) for row in rows]

    def get(self, alert_id: str) -> Incident | None:
        row = self._db.execute(
            f"SELECT {self._columns} FROM incidents WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else _incident(row)

    def marks(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT device_id, ts_ms FROM device_marks"))

    def rule_marks(self) -> dict[tuple[str, str], int]:
        try:
            rows = self._db.execute("SELECT device_id, rule, ts_ms FROM rule_marks").fetchall()
        except sqlite3.Error:
            return {}  # a store of an older release, opened read-only
        return {(device_id, rule): ts for device_id, rule, ts in rows}

    def save_rule_marks(self, marks: dict[tuple[str, str], int]) -> None:
        """All of them in one transaction (autocommit would make each row its own, with
        its own fsync)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO rule_marks (device_id, rule, ts_ms) VALUES (?, ?, ?) ON CONFLICT"
                "(device_id, rule) DO UPDATE SET ts_ms = max(ts_ms, excluded.ts_ms)",
                [(device_id, rule, ts) for (device_id, rule), ts in marks.items()])
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise AlertStoreError(f"alert store {self.path}: write failed ({exc})") from None

    def save(self, incidents: Iterable[Incident], marks: dict[str, int],
             events: Iterable[AlertEvent] = ()) -> None:
        """Write the changed incidents, device marks and the events they gave (into the
        outbox) in one durable transaction."""
        rows = [_row(incident) for incident in incidents]
        outbox = [(event.event_id, orjson.dumps(event).decode(), event.ts_ms)
                  for event in events]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                f"INSERT OR REPLACE INTO incidents ({','.join(_COLUMNS)}) "
                f"VALUES ({','.join('?' * len(_COLUMNS))})",
                rows,
            )
            self._db.executemany(
                "INSERT INTO device_marks (device_id, ts_ms) VALUES (?, ?) ON CONFLICT"
                "(device_id) DO UPDATE SET ts_ms = max(ts_ms, excluded.ts_ms)",
                marks.items(),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, event, ts_ms) VALUES (?, ?, ?)",
                outbox)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise AlertStoreError(f"alert store {self.path}: write failed ({exc})") from None

    def outbox(self) -> list[AlertEvent]:
        """The events not yet confirmed delivered, oldest first."""
        try:
            rows = self._db.execute("SELECT event_id, event FROM outbox ORDER BY seq").fetchall()
        except sqlite3.Error as exc:
            raise AlertStoreError(f"alert store {self.path}: outbox cannot be read ({exc})"
                                  ) from None
        events = []
        for event_id, text in rows:
            try:
                data = orjson.loads(text)
                events.append(AlertEvent(**{k: v for k, v in data.items()
                                            if k in _EVENT_FIELDS}))
            except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
                log.error("alert store %s: outbox event %s cannot be read (%s); skipped",
                          self.path, event_id, exc)
        return events

    def outbox_size(self) -> int:
        try:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.Error:
            return 0

    def trim_outbox(self, max_events: int, oldest_ms: int) -> int:
        """Drop events older than `oldest_ms` (those of an older release, without a time,
        are kept), then all but the newest `max_events`; returns how many were dropped."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            aged = self._db.execute(
                "DELETE FROM outbox WHERE ts_ms > 0 AND ts_ms < ?", (oldest_ms,)).rowcount
            over = self._db.execute(
                "DELETE FROM outbox WHERE seq <= (SELECT seq FROM outbox ORDER BY seq DESC "
                "LIMIT 1 OFFSET ?)", (max_events,)).rowcount
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise AlertStoreError(f"alert store {self.path}: trim failed ({exc})") from None
        return int(aged) + int(over)

    def confirm(self, event_ids: Iterable[str]) -> None:
        """Remove these events from the outbox, in one transaction; unknown ids are ignored."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE event_id = ?",
                                 ((event_id,) for event_id in event_ids))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise AlertStoreError(f"alert store {self.path}: confirm failed ({exc})") from None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


def read_open_incidents(state_dir: Path) -> list[Incident]:
    """The open incidents of the store in `state_dir`, read-only (for `alerts list`, the demo);
    none when there is no store yet."""
    path = store_path(state_dir)
    if not path.exists():
        return []
    store = IncidentStore(path, readonly=True)
    try:
        return store.open_incidents()
    finally:
        store.close()


def _row(incident: Incident) -> tuple[Any, ...]:
    return tuple(
        orjson.dumps(getattr(incident, col)).decode() if col in ("value", "threshold")
        else getattr(incident, col)
        for col in _COLUMNS
    )


def _incident(row: tuple[Any, ...]) -> Incident:
    data = dict(zip(_COLUMNS, row, strict=True))
    data["value"] = orjson.loads(data["value"])
    data["threshold"] = orjson.loads(data["threshold"])
    return Incident(**data)
