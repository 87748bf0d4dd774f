"""`sanitel ingest` as a service (SPEC section 10): what a service manager and a monitoring
system see of the running pipeline.

`async with ServiceEdge(settings, pipeline, stop, started):` around `pipeline.run` serves
HTTP (`/healthz`, `/readyz`, `/metrics`, `POST /-/reload`), reloads the registry and rules on
SIGHUP, tells systemd `READY=1` once subscribed, `WATCHDOG=1` from the loop and `STOPPING=1`
when a stop begins, and keeps a pid file in the data directory for `sanitel reload`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from prometheus_client import CONTENT_TYPE_LATEST

from ingest import systemd
from ingest.http_endpoints import HttpEndpoints, Response
from ingest.metrics import exposition, metrics_registry
from ingest.pipeline import Pipeline
from ingest.readiness import Conditions, assess
from ingest.reload import ConfigReloader
from ingest.settings import Settings

log = logging.getLogger("sanitel.service")

PID_FILE = "ingest.pid"


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / PID_FILE


class ServiceEdge:
    def __init__(self, settings: Settings, pipeline: Pipeline, stop: asyncio.Event,
                 started: asyncio.Event) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._stop = stop
        self._started = started
        self.reloader = ConfigReloader(pipeline, settings.registry, settings.alerts,
                                       settings.crews)
        self._metrics = metrics_registry(pipeline, self.reloader)
        self._http: HttpEndpoints | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._pid_file = pid_file(settings)
        self._stopping_said = False

    async def __aenter__(self) -> Self:
        http = self._settings.http
        if http.enabled:
            self._http = await HttpEndpoints(http.host, http.port, {
                ("GET", "/healthz"): self._healthz,
                ("GET", "/readyz"): self._readyz,
                ("GET", "/metrics"): self._metrics_page,
                ("POST", "/-/reload"): self._reload_page,
            }).__aenter__()
            log.info("serving http://%s:%d (/healthz /readyz /metrics, POST /-/reload)",
                     http.host, self._http.port)
        self._write_pid_file()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._spawn(self._announce_ready())
        self._spawn(self._announce_stopping())
        interval = systemd.watchdog_interval_s()
        if interval is not None:
            log.info("systemd watchdog: pinging every %.1f s", interval)
            self._spawn(systemd.keep_watchdog(interval))
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._say_stopping()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.__aexit__(et, e, tb)
        with contextlib.suppress(OSError):
            if self._pid_file.read_text().strip() == str(os.getpid()):
                self._pid_file.unlink()

    @property
    def http_port(self) -> int | None:
        return None if self._http is None else self._http.port

    # systemd and signals --------------------------------------------------------------

    async def _announce_ready(self) -> None:
        await self._started.wait()
        await self._pipeline.rx.connected.wait()
        systemd.notify("READY=1")

    async def _announce_stopping(self) -> None:
        await self._stop.wait()
        self._say_stopping()

    def _say_stopping(self) -> None:
        """Once: when SIGTERM/SIGINT starts the drain, or when the pipeline ends otherwise."""
        if not self._stopping_said:
            self._stopping_said = True
            systemd.notify("STOPPING=1")

    def _on_sighup(self) -> None:
        log.info("SIGHUP: reloading %s and %s", self._settings.registry, self._settings.alerts)
        self._spawn(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        await self.reloader.reload()  # logs its outcome

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write_pid_file(self) -> None:
        try:
            self._pid_file.parent.mkdir(parents=True, exist_ok=True)
            self._pid_file.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            log.warning("cannot write the pid file %s (%s); `sanitel reload` will need the "
                        "HTTP port", self._pid_file, exc.strerror)

    # HTTP -------------------------------------------------------------------------------

    async def _healthz(self) -> Response:
        return Response(200, b'{"alive": true}')

    async def _readyz(self) -> Response:
        verdict = assess(self._conditions())
        return Response(200 if verdict.ready else 503, verdict.body())

    async def _metrics_page(self) -> Response:
        return Response(200, exposition(self._metrics), CONTENT_TYPE_LATEST)

    async def _reload_page(self) -> Response:
        outcome = await self.reloader.reload()
        body = orjson.dumps({"ok": outcome.ok, "summary": outcome.summary,
                             "errors": outcome.errors})
        return Response(200 if outcome.ok else 422, body)

    def _conditions(self) -> Conditions:
        p = self._pipeline
        error = self.reloader.last_error
        if not self._started.is_set() or not hasattr(p, "store"):
            return Conditions(started=False, reload_error=error)
        store = p.store
        return Conditions(
            started=True,
            stopping=self._stop.is_set(),
            subscribed=p.rx.connected.is_set(),
            influx_unavailable=store.influx_unavailable,
            credentials_refused=store.credentials_refused,
            spool_bytes=store.spool.bytes,
            spool_max_bytes=store.spool.max_bytes,
            paused=store.figures.paused,
            spool_error=store.figures.spool_error,
            reload_error=error,
        )
