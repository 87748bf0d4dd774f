"""What the Alertmanager notifier must remember across a restart, per Alertmanager URL:
the silences it created (only those are ever changed or expired: a crew's own silences are
not ours), and the resolves that Alertmanager has not taken yet.

SQLite in the state directory, beside the incident store but in a file of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import orjson

from ingest.alerts.alertmanager_payloads import AlertSnapshot

STATE_FILE = "alertmanager.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS silences (
    url TEXT NOT NULL, alert_id TEXT NOT NULL, silence_id TEXT NOT NULL,
    ends_ms INTEGER NOT NULL,
    -- 1: someone expired our silence in Alertmanager; we leave it expired.
    released INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (url, alert_id)
);
CREATE TABLE IF NOT EXISTS unsent_resolves (
    url TEXT NOT NULL, alert_id TEXT NOT NULL, severity TEXT NOT NULL, alert TEXT NOT NULL,
    PRIMARY KEY (url, alert_id, severity)
);
"""


class AlertmanagerStateError(RuntimeError):
    """The notifier's state file cannot be opened or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class OurSilence:
    alert_id: str
    silence_id: str
    ends_ms: int
    released: bool


class AlertmanagerState:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STATE_FILE
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise AlertmanagerStateError(
                f"alertmanager state {self.path}: cannot be opened ({exc})") from None

    def _write(self, sql: str, *args: object) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise AlertmanagerStateError(
                f"alertmanager state {self.path}: write failed ({exc})") from None

    def forget_urls_except(self, urls: list[str]) -> None:
        """Drop what belongs to Alertmanagers no longer configured."""
        marks = ",".join("?" * len(urls)) or "''"
        for table in ("silences", "unsent_resolves"):
            self._write(f"DELETE FROM {table} WHERE url NOT IN ({marks})", *urls)

    # -- silences ---------------------------------------------------------------------------

    def silences(self, url: str) -> dict[str, OurSilence]:
        rows = self._db.execute(
            "SELECT alert_id, silence_id, ends_ms, released FROM silences WHERE url = ?", (url,))
        return {row[0]: OurSilence(row[0], row[1], row[2], bool(row[3])) for row in rows}

    def keep_silence(self, url: str, silence: OurSilence) -> None:
        self._write("INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?)", url,
                    silence.alert_id, silence.silence_id, silence.ends_ms, int(silence.released))

    def drop_silence(self, url: str, alert_id: str) -> None:
        self._write("DELETE FROM silences WHERE url = ? AND alert_id = ?", url, alert_id)

    # -- resolves ---------------------------------------------------------------------------

    def add_resolve(self, url: str, alert: AlertSnapshot) -> None:
        self._write("INSERT OR REPLACE INTO unsent_resolves VALUES (?, ?, ?, ?)", url,
                    alert.alert_id, alert.severity,
                    orjson.dumps(dataclasses.asdict(alert)).decode())

    def resolves(self, url: str) -> list[AlertSnapshot]:
        rows = self._db.execute("SELECT alert FROM unsent_resolves WHERE url = ? ORDER BY rowid",
                                (url,))
        return [AlertSnapshot(**orjson.loads(row[0])) for row in rows]

    def drop_resolves(self, url: str, alerts: list[AlertSnapshot]) -> None:
        try:
            self._db.executemany(
                "DELETE FROM unsent_resolves WHERE url = ? AND alert_id = ? AND severity = ?",
                [(url, alert.alert_id, alert.severity) for alert in alerts])
        except sqlite3.Error as exc:
            raise AlertmanagerStateError(
                f"alertmanager state {self.path}: write failed ({exc})") from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
