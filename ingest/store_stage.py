"""The store stage: batches of points into InfluxDB, or into the spool while it is away.

A batch's messages are acknowledged to the broker only once its points are in InfluxDB
or durably in the spool. A batch is written in pieces bounded by points and by bytes.
Points that InfluxDB refuses (400, other 4xx, 413 for one point alone) are found by
halving the piece and dead-lettered one by one as `storage_rejected`, never retried
forever, so that they never hold up the batches behind them. When InfluxDB goes away
part way, only what is not yet stored or dead-lettered goes to the spool. Refused
credentials (401/403) keep the points in the spool, logged once per outage and shown
in `figures` until a write succeeds. The hours of a batch's readings are told to the
rollups (`noted`) before it is acknowledged, those of a spool replay before its batch is
removed (SPEC section 9).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.client import MQTTMessageInfo

from ingest import spool_record
from ingest.deadletter import DeadLetterList, until_published
from ingest.durations import DurationHistogram
from ingest.influx_writer import (
    BodyTooLarge,
    CredentialsRefused,
    InfluxWriter,
    WriteRejected,
    WriteUnavailable,
)
from ingest.lineproto import join_lines
from ingest.receiver import Arrival
from ingest.rejects import RejectReason
from ingest.rollups import touched_hours
from ingest.settings import SpoolSettings
from ingest.spool import Spool, SpoolFull
from ingest.write_pieces import pieces

#: Batches written to InfluxDB at the same time (acknowledged in order all the same).
WRITES_IN_FLIGHT = 2

log = logging.getLogger("sanitel.store")

#: Dead-letters a point InfluxDB refused; returns the dead letter's publish.
RejectPoint = Callable[[str, Arrival | None], MQTTMessageInfo | None]
#: Told the (measurement, hour) pairs now stored (or spooled), before they are acknowledged.
Noted = Callable[[set[tuple[str, int]]], None]


@dataclass
class Batch:
    """Points to write and the messages to acknowledge once they are safe."""

    lines: list[str] = field(default_factory=list)
    #: The message each line came from (None for the pipeline's own points).
    origins: list[Arrival | None] = field(default_factory=list)
    #: Every message this batch answers for, stored or rejected.
    arrivals: list[Arrival] = field(default_factory=list)
    #: Alert events whose `alerts` points are in this batch, with their MQTT publish.
    events: list[tuple[str, MQTTMessageInfo]] = field(default_factory=list)
    #: Dead letters of rejected arrivals: those are acknowledged once the broker has these.
    dead_letters: DeadLetterList = field(default_factory=list)
    #: (measurement, hour start) of its readings, for the rollups (SPEC section 9).
    hours: set[tuple[str, int]] = field(default_factory=set)
    opened: float = field(default_factory=time.monotonic)

    def add(self, line: str, origin: Arrival | None = None) -> None:
        self.lines.append(line)
        self.origins.append(origin)

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class StoreFigures:
    stored: int = 0
    spooled: int = 0
    storage_rejected: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    paused: bool = False
    #: InfluxDB refuses our credentials (401/403) now; readings wait in the spool.
    credentials_refused: bool = False
    #: Writes refused for credentials, since start.
    credentials_refusals: int = 0
    #: Points written from the spool after an outage (SPEC section 10: the replay rate).
    replayed: int = 0
    write_seconds: DurationHistogram = field(default_factory=DurationHistogram)
    #: The latest write that failed (InfluxDB away or refusing), and when (epoch seconds).
    last_error: str = ""
    last_error_at: float = 0.0
    #: Why the spool cannot be written (disk full, read-only), while it cannot.
    spool_error: str = ""


class Store:
    """`run()` takes batches from `queue`; `replay()` drains the spool in order."""

    def __init__(
        self, writer: InfluxWriter, spool: Spool, settings: SpoolSettings,
        ack: Callable[[list[Arrival]], None], reject_point: RejectPoint, max_pending: int,
        stored: Callable[[Batch], None] = lambda batch: None,
        max_points: int = 5_000, max_bytes: int = 5_000_000, noted: Noted | None = None,
    ) -> None:
        self._writer = writer
        self._noted = noted
        self.spool = spool
        self._settings = settings
        self._ack = ack
        self._stored = stored
        self._reject_point = reject_point
        self.queue: asyncio.Queue[Batch | None] = asyncio.Queue(max_pending)
        self.figures = StoreFigures()
        self._spooled = asyncio.Event()
        self._drained = asyncio.Event()
        self._appending = asyncio.Lock()
        self.max_points, self.max_bytes = max_points, max_bytes
        #: What kind of outage was last logged ("down", "credentials"), None while writing.
        self._outage: str | None = None
        if spool:
            log.info("spool holds %d batches (%d bytes) from before; replaying",
                     spool.batches, spool.bytes)
            self._spooled.set()

    async def run(self) -> None:
        """Until a `None` arrives in the queue (end of input).

        Up to WRITES_IN_FLIGHT batches are written at once (InfluxDB works on one while
        the next travels; one at a time, a drain waited for each write in turn); each is
        acknowledged only once it and every batch before it are done, in order."""
        inflight: deque[tuple[Batch, asyncio.Task[None]]] = deque()
        try:
            while (batch := await self.queue.get()) is not None:
                inflight.append((batch, asyncio.create_task(self._deliver(batch))))
                if len(inflight) >= WRITES_IN_FLIGHT:
                    await self._finish(*inflight.popleft())
            while inflight:
                await self._finish(*inflight.popleft())
        finally:
            for _, task in inflight:
                task.cancel()

    async def _finish(self, batch: Batch, delivering: asyncio.Task[None]) -> None:
        await delivering
        if batch.hours and self._noted is not None:  # stored or spooled (a replay notes
            self._noted(batch.hours)  # them again): on disk before the ack
        unsent = await until_published(batch.dead_letters)
        self._ack([a for a in batch.arrivals if id(a) not in unsent] if unsent
                  else batch.arrivals)
        self._stored(batch)

    @property
    def credentials_refused(self) -> bool:
        """InfluxDB refuses our credentials now (401/403; `/readyz` says so)."""
        return self.figures.credentials_refused

    async def _deliver(self, batch: Batch) -> None:
        if not batch.lines:
            return
        done = 0
        if not self.spool:
            done = await self._write_all(batch.lines, batch.origins, batch.dead_letters)
            if done == len(batch.lines):
                return
        lines, origins = batch.lines[done:], batch.origins[done:]
        await self._spool_append(spool_record.encode(lines, origins), len(lines))

    async def _write_all(
        self, lines: list[str], origins: list[Arrival | None], dead: DeadLetterList
    ) -> int:
        """Write in bounded pieces, halving a refused piece until each refused point stands
        alone (and is dead-lettered, its publish added to `dead`). Returns how many lines,
        from the start, are done: all unless InfluxDB became unavailable (logged)."""
        todo = pieces(lines, self.max_points, self.max_bytes)[::-1]
        while todo:
            start, end = todo.pop()
            body = join_lines(lines[start:end])
            began = time.monotonic()
            try:
                await self._writer.write(body)
            except WriteUnavailable as exc:
                self._unavailable(exc)
                return start
            except WriteRejected as exc:
                if isinstance(exc, BodyTooLarge):
                    self._lower_max_bytes(len(body))
                if end - start == 1:
                    self.figures.storage_rejected += 1
                    info = self._reject_point(f"{exc} (point: {lines[start][:200]})",
                                              origins[start])
                    if info is not None:
                        dead.append((info, origins[start]))
                else:
                    middle = (start + end) // 2
                    todo += [(middle, end), (start, middle)]
                continue
            self._written(end - start, began)
        return len(lines)

    def _written(self, count: int, began: float) -> None:
        figures = self.figures
        elapsed = time.monotonic() - began
        figures.latencies_ms.append(elapsed * 1000)
        figures.write_seconds.observe(elapsed)
        figures.stored += count
        if self._outage is not None:
            log.info("InfluxDB takes writes again")
            self._outage = None
            figures.credentials_refused = False

    def _lower_max_bytes(self, refused: int) -> None:
        limit = max(refused // 2, 1)
        if limit < self.max_bytes:
            log.warning("InfluxDB refused a body of %d bytes as too large (HTTP 413); writing "
                        "at most %d bytes per request from now on (set influx.max_body_bytes "
                        "below the server's limit)", refused, limit)
            self.max_bytes = limit

    async def _spool_append(self, body: bytes, count: int) -> None:
        async with self._appending:  # batches written at once may fail at once
            await self._spool_append_now(body, count)

    async def _spool_append_now(self, body: bytes, count: int) -> None:
        while True:
            try:
                await asyncio.to_thread(self.spool.append, body)
                break
            except SpoolFull as exc:
                if not self.figures.paused:
                    log.error("%s: no longer acknowledging readings until InfluxDB takes "
                              "writes again (the broker keeps them)", exc)
                    self.figures.paused = True
                self._drained.clear()
                await self._drained.wait()
            except OSError as exc:  # disk full, read-only: the broker keeps the readings
                self.figures.spool_error = str(exc)
                if not self.figures.paused:
                    log.error("cannot write the spool %s (%s): no longer acknowledging "
                              "readings until it can be written", self.spool.directory, exc)
                    self.figures.paused = True
                await asyncio.sleep(self._settings.retry_max_s)
        self.figures.spool_error = ""
        if self.figures.paused:
            log.info("spool has room again; acknowledging readings")
            self.figures.paused = False
        self.figures.spooled += count
        self._spooled.set()

    async def replay(self) -> None:
        """Forever: write the oldest spooled batch when InfluxDB answers, with backoff."""
        delay = self._settings.retry_min_s
        while True:
            await self._spooled.wait()
            try:
                oldest = await asyncio.to_thread(self.spool.oldest)
            except OSError as exc:
                log.error("cannot read the spool %s (%s); retrying", self.spool.directory, exc)
                await asyncio.sleep(self._settings.retry_max_s)
                continue
            if oldest is None:
                self._spooled.clear()
                self._drained.set()
                continue
            path, body = oldest
            if await self._replay_one(path, body):
                delay = self._settings.retry_min_s
                continue
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._settings.retry_max_s)

    async def _replay_one(self, path: Path, body: bytes) -> bool:
        """Write one spooled batch; False (keeping what is left of it) if InfluxDB is away."""
        try:
            lines, origins = spool_record.decode(body, str(path))
        except spool_record.SpoolRecordError as exc:
            aside = await asyncio.to_thread(self.spool.set_aside, path)
            log.error("%s; moved it aside to %s and went on with the next", exc, aside)
            return True
        dead: DeadLetterList = []
        done = await self._write_all(lines, origins, dead)
        if done and self._noted is not None:  # before the spooled batch is removed or cut
            self._noted(touched_hours(lines[:done]))
        if await until_published(dead):
            return False  # a dead letter never left: keep the batch, and so its points
        if done < len(lines):
            if done:  # keep only what is not yet stored or dead-lettered
                rest = spool_record.encode(lines[done:], origins[done:])
                await asyncio.to_thread(self.spool.replace, path, rest)
            return False
        self.figures.replayed += len(lines)
        await asyncio.to_thread(self.spool.remove, path)
        self._drained.set()
        if not self.spool:
            log.info("spool replayed; writing directly again")
        return True

    @property
    def influx_unavailable(self) -> bool:
        """Since the last failed write, no write has succeeded."""
        return self._outage is not None

    def _unavailable(self, exc: WriteUnavailable) -> None:
        """Said once per outage, and again when its kind changes (down, credentials)."""
        figures = self.figures
        figures.last_error, figures.last_error_at = str(exc), time.time()
        refused = isinstance(exc, CredentialsRefused)
        figures.credentials_refused = refused
        figures.credentials_refusals += refused
        kind = "credentials" if refused else "down"
        if self._outage == kind:
            return
        self._outage = kind
        if refused:
            log.error("%s; keeping readings in the spool %s until the credential "
                      "(influx.username/password or token) is fixed", exc, self.spool.directory)
        else:
            log.warning("InfluxDB unavailable (%s); spooling to %s", exc, self.spool.directory)


__all__ = ["Batch", "RejectReason", "Store", "StoreFigures"]
