"""Keeping the hourly rollups right from inside `sanitel ingest` (SPEC section 9).

InfluxDB 1.x continuous queries only ever see the last interval, so a spool replay or a
device back from a week offline would never be rolled up. Instead, `DirtyHours` notes
which hours of which readings measurement were stored: the pipeline collects each
batch's (measurement, hour) pairs as it builds the lines, and the store hands them over
before the batch is acknowledged; a spool replay notes the hours of what it wrote,
parsed from the lines (`rollups.touched_hours`), before the spooled batch is removed.
Every `retention.rollup_every_s` the task recomputes those hours from the raw points (a
query per measurement and span of hours) and writes the rollup points through the write
API, into the `rollup` retention policy (v1) or the `<database>_rollup` bucket (v2).
Hours older than `retention.late_days` are let go. The set of noted hours is kept in
`<data_dir>/state/rollup-hours.json` before the readings are acknowledged (or their
spooled batch removed), so a crash never loses a recompute: what was not acknowledged
comes again from the broker. Every `retention.catchup_every_s` the last two hours are
recomputed whoever wrote them.

Reading with a read-only user and writing with a write-only one works: no statement
needs both rights (a `SELECT ... INTO` would).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from ingest import district_rollups
from ingest.influx_admin import ROLLUP_RP
from ingest.influx_writer import InfluxWriter, V1Writer, V2Writer, WriteRejected, WriteUnavailable
from ingest.influxql_client import AsyncInfluxQL, InfluxQueryError, reader_credentials, rows
from ingest.rollups import BY_SOURCE, HOUR_MS, Rollup, hour_of, points, series_key
from ingest.rollups import spans as hour_spans
from ingest.settings import InfluxSettings, Settings

log = logging.getLogger("sanitel.rollups")


class DirtyHours:
    """(measurement, hour) pairs written since their last recompute, kept on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hours: dict[str, set[int]] = {name: set() for name in BY_SOURCE}
        self._taken: dict[str, set[int]] = {}
        if path is not None and path.exists():
            with contextlib.suppress(OSError, ValueError, TypeError):
                for name, hours in json.loads(path.read_text()).items():
                    if name in self.hours:
                        self.hours[name].update(int(hour) for hour in hours)

    def add(self, touched: Iterable[tuple[str, int]]) -> None:
        """Note (measurement, hour start) pairs, on disk before this returns. The pipeline
        hands over each batch's before acknowledging it; a spool replay, `touched_hours`
        of what it wrote."""
        grew = False
        for name, hour in touched:
            hours = self.hours.get(name)
            if hours is not None and hour not in hours:
                hours.add(hour)
                grew = True
        if grew:
            self.save()

    def take(self) -> dict[str, set[int]]:
        """The hours to recompute now; on disk until `done` (a crash meanwhile keeps them)."""
        self._taken, self.hours = self.hours, {name: set() for name in BY_SOURCE}
        return self._taken

    def done(self) -> None:
        self._taken = {}
        self.save()

    def give_back(self, hours: dict[str, set[int]]) -> None:
        for name, wanted in hours.items():
            self.hours[name].update(wanted)
        self._taken = {}
        self.save()

    def save(self) -> None:
        if self.path is None:
            return
        data = {name: sorted(hours | self._taken.get(name, set()))
                for name, hours in self.hours.items() if hours or self._taken.get(name)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data))
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot keep the rollup hours in %s: %s", self.path, exc)

    def __bool__(self) -> bool:
        return any(self.hours.values())


class _V1RollupWriter(V1Writer):
    def __init__(self, settings: InfluxSettings) -> None:
        super().__init__(settings.model_copy(update={"create_database": False}))
        self._params["rp"] = ROLLUP_RP


def open_rollup_writer(influx: InfluxSettings) -> InfluxWriter:
    """Rollup points go to the `rollup` policy (v1 API) or the `<db>_rollup` bucket (v2)."""
    if influx.api == "v2":
        return V2Writer(influx.model_copy(update={"database": f"{influx.database}_{ROLLUP_RP}"}))
    return _V1RollupWriter(influx)


class Rollups:
    """Recomputes hours: `await rollups.recompute({"odor": {hour, ...}})` -> points written."""

    def __init__(self, influx: InfluxSettings, reader: AsyncInfluxQL, writer: InfluxWriter,
                 max_span_h: int = 24) -> None:
        self.database = influx.database
        self._reader = reader
        self._writer = writer
        self._max_span_h = max_span_h

    async def recompute(self, hours: dict[str, set[int]]) -> int:
        written = 0
        for name, wanted in hours.items():
            rollup = BY_SOURCE[name]
            if rollup.meters:  # an hour's meter use starts from the hour before's last reading
                wanted = wanted | {hour + HOUR_MS for hour in wanted}
            for start, end in hour_spans(wanted, self._max_span_h):
                written += await self._span(rollup, start, end)
        return written + await self.recompute_days(district_rollups.days_of(hours))

    async def recompute_days(self, days: set[int]) -> int:
        """The daily district figures of `days` (UTC day starts), from the hourly rollups."""
        written = 0
        for day in sorted(days):
            for figures, query in district_rollups.selects(day):
                result = await self._reader.run(query, self.database)
                lines = district_rollups.points(figures, rows(result[0]))
                if lines:
                    await self._writer.write("\n".join(lines).encode())
                written += len(lines)
        return written

    async def _span(self, rollup: Rollup, start: int, end: int) -> int:
        result = await self._reader.run(rollup.select(start, end), self.database)
        before = {}
        if (query := rollup.meters_before(start)) is not None:
            answer = await self._reader.run(query, self.database)
            before = {series_key(row): row for row in rows(answer[0])}
        lines = points(rollup, rows(result[0]), before)
        for chunk in range(0, len(lines), 5000):
            await self._writer.write("\n".join(lines[chunk:chunk + 5000]).encode())
        return len(lines)


class RollupTask:
    """`run()` forever inside the pipeline's task group: recompute touched hours."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dirty = DirtyHours(settings.state_dir / "rollup-hours.json")
        self.recomputed_hours = 0
        self.points_written = 0
        self._complained: set[str] = set()
        self._said_slow = False  # said once until a recompute is quick again

    async def run(self) -> None:
        retention = self.settings.retention
        reader = AsyncInfluxQL(self.settings.influx.url, reader_credentials(self.settings.influx),
                               max(30.0, self.settings.influx.timeout_s))
        next_catchup = time.monotonic()
        try:
            async with open_rollup_writer(self.settings.influx) as writer:
                rollups = Rollups(self.settings.influx, reader, writer)
                while True:
                    await asyncio.sleep(retention.rollup_every_s)
                    if time.monotonic() >= next_catchup:
                        self._catch_up()
                        next_catchup = time.monotonic() + retention.catchup_every_s
                    await self.cycle(rollups)
        finally:
            await reader.aclose()

    def _catch_up(self) -> None:
        now = hour_of(int(time.time() * 1000))
        self.dirty.give_back({name: {now - HOUR_MS, now} for name in BY_SOURCE})

    async def cycle(self, rollups: Rollups) -> None:
        if not self.dirty:
            return
        oldest = hour_of(int(time.time() * 1000)) - self.settings.retention.late_days * 24 * HOUR_MS
        hours = {name: {h for h in wanted if h >= oldest}
                 for name, wanted in self.dirty.take().items()}
        started = time.monotonic()
        try:
            written = await rollups.recompute(hours)
        except (InfluxQueryError, WriteUnavailable, WriteRejected) as exc:
            self.dirty.give_back(hours)
            self._complain_once(type(exc).__name__, f"rollups wait: {exc}")
            return
        except asyncio.CancelledError:  # stopping: the next start does them
            self.dirty.give_back(hours)
            raise
        self.dirty.done()
        self._complained.clear()
        count = sum(len(wanted) for wanted in hours.values())
        self.recomputed_hours += count
        self.points_written += written
        took = time.monotonic() - started
        # Live traffic touches an hour or two per cycle; more is a replay or late devices.
        level = logging.INFO if count > 2 * len(hours) or took > 10 else logging.DEBUG
        log.log(level, "rollups: %d measurement-hours recomputed, %d points, %.2f s",
                count, written, took)
        slow = took > self.settings.retention.rollup_every_s
        if slow and not self._said_slow:
            log.warning("rollups: a recompute took %.1f s, longer than retention.rollup_every_s "
                        "(%.0f s): late readings reach the rollups later than that", took,
                        self.settings.retention.rollup_every_s)
        self._said_slow = slow

    def _complain_once(self, kind: str, message: str) -> None:
        if kind not in self._complained:
            self._complained.add(kind)
            log.warning("%s (kept; retried every %.0f s)", message,
                        self.settings.retention.rollup_every_s)
