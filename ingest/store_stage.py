"""The store stage: batches of points into InfluxDB, or into the spool while it is away.

A batch's messages are acknowledged to the broker only once its points are in InfluxDB
or durably in the spool. Points that InfluxDB refuses as invalid are found by halving
the batch and dead-lettered one by one as `storage_rejected`, never retried forever.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paho.mqtt.client import MQTTMessageInfo

from ingest.durations import DurationHistogram
from ingest.influx_writer import InfluxWriter, WriteRejected, WriteUnavailable
from ingest.lineproto import join_lines
from ingest.receiver import Arrival
from ingest.rejects import RejectReason
from ingest.settings import SpoolSettings
from ingest.spool import Spool, SpoolFull

log = logging.getLogger("sanitel.store")

RejectPoint = Callable[[str, Arrival | None], None]


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
    ) -> None:
        self._writer = writer
        self.spool = spool
        self._settings = settings
        self._ack = ack
        self._stored = stored
        self._reject_point = reject_point
        self.queue: asyncio.Queue[Batch | None] = asyncio.Queue(max_pending)
        self.figures = StoreFigures()
        self._spooled = asyncio.Event()
        self._drained = asyncio.Event()
        self._outage_logged = False
        if spool:
            log.info("spool holds %d batches (%d bytes) from before; replaying",
                     spool.batches, spool.bytes)
            self._spooled.set()

    async def run(self) -> None:
        """Until a `None` arrives in the queue (end of input)."""
        while (batch := await self.queue.get()) is not None:
            await self._deliver(batch)
            self._ack(batch.arrivals)
            self._stored(batch)

    async def _deliver(self, batch: Batch) -> None:
        if not batch.lines:
            return
        if not self.spool:
            try:
                await self._write_checked(batch.lines, batch.origins)
                return
            except WriteUnavailable as exc:
                self._log_outage(exc)
        await self._spool_append(join_lines(batch.lines), len(batch.lines))

    async def _write_checked(self, lines: list[str], origins: list[Arrival | None]) -> None:
        """Write, halving on HTTP 400 until each refused point stands alone."""
        started = time.monotonic()
        try:
            await self._writer.write(join_lines(lines))
        except WriteRejected as exc:
            if len(lines) == 1:
                self.figures.storage_rejected += 1
                self._reject_point(f"{exc} (point: {lines[0][:200]})", origins[0])
                return
            half = len(lines) // 2
            await self._write_checked(lines[:half], origins[:half])
            await self._write_checked(lines[half:], origins[half:])
            return
        elapsed = time.monotonic() - started
        self.figures.latencies_ms.append(elapsed * 1000)
        self.figures.write_seconds.observe(elapsed)
        self.figures.stored += len(lines)
        if self._outage_logged:
            log.info("InfluxDB takes writes again")
            self._outage_logged = False

    async def _spool_append(self, body: bytes, count: int) -> None:
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
            lines = body.decode().split("\n")
            try:
                await self._write_checked(lines, [None] * len(lines))
            except WriteUnavailable as exc:
                self._log_outage(exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._settings.retry_max_s)
                continue
            delay = self._settings.retry_min_s
            self.figures.replayed += len(lines)
            await asyncio.to_thread(self.spool.remove, path)
            self._drained.set()
            if not self.spool:
                log.info("spool replayed; writing directly again")

    @property
    def influx_unavailable(self) -> bool:
        """Since the last failed write, no write has succeeded."""
        return self._outage_logged

    def _log_outage(self, exc: Exception) -> None:
        self.figures.last_error, self.figures.last_error_at = str(exc), time.time()
        if not self._outage_logged:
            log.warning("InfluxDB unavailable (%s); spooling to %s", exc, self.spool.directory)
            self._outage_logged = True


__all__ = ["Batch", "RejectReason", "Store", "StoreFigures"]
