"""The processes the harness starts, and how it stops every one of them.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only the
harness, which then stops them in order); `Children` remembers them all and
`stop_all` ends any that are still running, SIGTERM first, SIGKILL after a grace.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


class PhaseTimeout(RuntimeError):
    """A phase did not finish in its time; the message names the phase and what it waited for."""


@dataclass
class Children:
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 30,
             sig: int = signal.SIGTERM) -> int | None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, timeout=10)


class EventReader:
    """Reads a contender's JSON lines from its stdout on a thread."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                self.on_event(json.loads(line))

    def on_event(self, event: dict[str, Any]) -> None:
        self.events.put(event)

    def wait_for(self, name: str, timeout: float) -> dict[str, Any] | None:
        for event in self.seen:
            if event.get("event") == name:
                return event
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.seen.append(event)
            if event.get("event") == name:
                return event
        return None


class PublisherFeed(EventReader):
    """The live publisher's stdout: `expected` grows with the (device_id, ts) it sent."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.expected: list[tuple[str, int]] = []
        self.sent = 0
        super().__init__(stream)

    def on_event(self, event: dict[str, Any]) -> None:
        if "good" in event and "event" not in event:
            self.expected.extend((device_id, ts) for device_id, ts in event["good"])
            self.sent = event["sent"]
        else:
            self.events.put(event)


def contender_cmd(kind: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.contenders", kind, *args]


# sanitel ingest -------------------------------------------------------------------

LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
STOPPED = re.compile(r"stopped; (\d+) received, (\d+) stored, (\d+) rejected")


def sanitel_env(
    *, mqtt_port: int, client_id: str, influx_url: str, database: str, registry: Path,
    data_dir: Path, alerts: Path, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env.update({
        "SANITEL_MQTT__HOST": "127.0.0.1",
        "SANITEL_MQTT__PORT": str(mqtt_port),
        "SANITEL_MQTT__CLIENT_ID": client_id,
        "SANITEL_INFLUX__URL": influx_url,
        "SANITEL_INFLUX__DATABASE": database,
        "SANITEL_REGISTRY": str(registry),
        "SANITEL_ALERTS": str(alerts),
        "SANITEL_DATA_DIR": str(data_dir),
        "SANITEL_PIPELINE__INSTANCE": client_id,
        "SANITEL_HTTP__PORT": "0",  # several workers on one host: any free port each
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra or {})
    return env


def sanitel_cmd() -> list[str]:
    return [sys.executable, "-m", "sanitel.cli", "ingest"]


def log_time(line: str) -> float | None:
    """The epoch time of a `sanitel ingest` log line (its asctime, local time, ms)."""
    match = LOG_TIME.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def wait_log(log: Path, needle: str, timeout: float, proc: subprocess.Popen[bytes],
             what: str) -> str:
    """The first line of `log` containing `needle`; raises when it does not come in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in log.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
        if proc.poll() is not None:
            raise PhaseTimeout(f"{what}: sanitel ingest exited with {proc.returncode} before "
                               f"logging {needle!r}; last lines:\n{tail(log)}")
        time.sleep(0.02)
    raise PhaseTimeout(f"{what}: no {needle!r} in the sanitel ingest log within {timeout:.0f} s;"
                       f" last lines:\n{tail(log)}")


def stopped_figures(log: Path) -> dict[str, int] | None:
    with contextlib.suppress(OSError):
        for match in STOPPED.finditer(log.read_text(errors="replace")):
            received, stored, rejected = (int(g) for g in match.groups())
            return {"received": received, "stored": stored, "rejected": rejected}
    return None


def log_problems(log: Path) -> list[str]:
    with contextlib.suppress(OSError):
        return [line for line in log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " WARNING " in line or "Traceback" in line][:20]
    return []


def tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
