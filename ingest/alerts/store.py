"""The incident store: SQLite in the state directory, so incidents outlive a restart or kill -9.

Written only when an incident changes, in one transaction per engine call, committed
durably (WAL, synchronous=FULL) before the events are handed to the caller.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ingest.alerts.events import RESOLVED, Incident

STORE_FILE = "alerts.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    alert_id TEXT PRIMARY KEY,
    rule TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL,
    site_id TEXT NOT NULL, site_name TEXT NOT NULL,
    device_id TEXT NOT NULL, device_type TEXT NOT NULL, field TEXT,
    value TEXT NOT NULL, threshold TEXT NOT NULL,
    started_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, resolved_ms INTEGER,
    message TEXT NOT NULL, acknowledged_by TEXT
);
-- One open incident per device and rule, whatever happens in the code above.
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident
    ON incidents (device_id, rule) WHERE state != 'resolved';
-- The reading time of each device's last incident change: older readings redelivered
-- after a crash must not reopen or close anything.
CREATE TABLE IF NOT EXISTS device_marks (
    device_id TEXT PRIMARY KEY, ts_ms INTEGER NOT NULL
);
"""

_COLUMNS = ("alert_id", "rule", "severity", "state", "site_id", "site_name", "device_id",
            "device_type", "field", "value", "threshold", "started_ms", "updated_ms",
            "resolved_ms", "message", "acknowledged_by")


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
        except (sqlite3.Error, OSError) as exc:
            raise AlertStoreError(f"alert store {path}: cannot be opened ({exc})") from None

    def open_incidents(self) -> list[Incident]:
        rows = self._db.execute(
            f"SELECT {','.join(_COLUMNS)} FROM incidents WHERE state != ? ORDER BY started_ms",
            (RESOLVED,),
        )
        return [_incident(row) for row in rows]

    def get(self, alert_id: str) -> Incident | None:
        row = self._db.execute(
            f"SELECT {','.join(_COLUMNS)} FROM incidents WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else _incident(row)

    def marks(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT device_id, ts_ms FROM device_marks"))

    def save(self, incidents: Iterable[Incident], marks: dict[str, int]) -> None:
        """Write the changed incidents and device marks in one durable transaction."""
        rows = [_row(incident) for incident in incidents]
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
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise AlertStoreError(f"alert store {self.path}: write failed ({exc})") from None

    def close(self) -> None:
        self._db.close()


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
