"""What the harness measures with: a process sampler, InfluxDB counters, the write watch.

`ProcessMonitor` samples a contender (and its children) every 100 ms with psutil: peak
RSS and CPU seconds. `count_points` asks InfluxDB how many points a set of measurements
holds; `watch_written` follows a consumer's writes through `write_relay.WriteRelay`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import psutil

if TYPE_CHECKING:
    from benchmarks.write_relay import WriteRelay


class MeasureError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


@dataclass
class Sample:
    t: float
    rss: int
    cpu_s: float


class ProcessMonitor:
    """`with ProcessMonitor(pid, ...) as mon:` ... `mon.peak_rss`, `mon.cpu_s`, `mon.cpu_at`.

    Figures are sums over the processes given and all their children."""

    def __init__(self, *pids: int, every_s: float = 0.1, connects_to: int | None = None) -> None:
        self.roots = [psutil.Process(pid) for pid in pids]
        self.every_s = every_s
        #: With `connects_to` (a port): when one of the processes was first seen with an
        #: established TCP connection to it (the broker's), looked for every `connect_s`
        #: by a thread of its own until seen (the 50-100 ms samples, slower on a busy
        #: machine, saw a connection after a consumer's first write had been answered).
        self.connects_to = connects_to
        self.connect_s = 0.005
        self.connected_at: float | None = None
        self.samples: list[Sample] = []
        self._cpu_done: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="psutil-sampler", daemon=True)
        self._connect_thread = threading.Thread(target=self._watch_connect,
                                                name="connect-watch", daemon=True)

    def __enter__(self) -> ProcessMonitor:
        self._thread.start()
        if self.connects_to is not None:
            self._connect_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._connect_thread):
            if thread.is_alive():
                thread.join(2)

    def _procs(self) -> list[psutil.Process]:
        """The processes given and all their children, as they are now."""
        procs: list[psutil.Process] = []
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                procs += [root, *root.children(recursive=True)]
        return procs

    def sample_now(self) -> Sample | None:
        rss, procs = 0, self._procs()
        if not procs:
            return None
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                with proc.oneshot():
                    times = proc.cpu_times()
                    used = times.user + times.system
                    rss += proc.memory_info().rss
                # A child that has ended keeps counting with the last CPU seen of it.
                self._cpu_done[proc.pid] = used
        cpu = sum(self._cpu_done.values())
        sample = Sample(time.time(), rss, cpu)
        self.samples.append(sample)
        return sample

    def _watch_connect(self) -> None:
        while self.connected_at is None and not self._stop.is_set():
            if any(self._connected(proc) for proc in self._procs()):
                self.connected_at = time.time()
                return
            self._stop.wait(self.connect_s)

    def _connected(self, proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return any(c.raddr and c.raddr.port == self.connects_to
                       and c.status == psutil.CONN_ESTABLISHED
                       for c in proc.net_connections(kind="tcp"))
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_now()
            self._stop.wait(self.every_s)

    @property
    def peak_rss(self) -> int:
        return max((s.rss for s in self.samples), default=0)

    @property
    def last_rss(self) -> int:
        return self.samples[-1].rss if self.samples else 0

    @property
    def cpu_s(self) -> float:
        return self.samples[-1].cpu_s if self.samples else 0.0

    def cpu_at(self, t: float) -> float:
        """CPU seconds used by wall time `t`, interpolated between the samples around it."""
        before = [s for s in self.samples if s.t <= t]
        after = [s for s in self.samples if s.t > t]
        if not before:
            return after[0].cpu_s if after else 0.0
        a = before[-1]
        if not after:
            return a.cpu_s
        b = after[0]
        return a.cpu_s + (b.cpu_s - a.cpu_s) * (t - a.t) / max(b.t - a.t, 1e-9)

    def cpu_between(self, t0: float, t1: float) -> float:
        return max(0.0, self.cpu_at(t1) - self.cpu_at(t0))

    def peak_rss_between(self, t0: float, t1: float) -> int:
        return max((s.rss for s in self.samples if t0 <= s.t <= t1), default=0)


def influx_query(url: str, q: str, db: str, client: httpx.Client | None = None) -> dict[str, Any]:
    http = client or httpx
    response = http.post(f"{url}/query", data={"q": q, "db": db, "epoch": "ms"}, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    for statement in result.get("results", []):
        if "error" in statement:
            raise MeasureError(f"InfluxQL error for {q!r} on {db}: {statement['error']}")
    return result


def count_points(
    url: str, db: str, measurements: Sequence[str], field_name: str = "seq",
    client: httpx.Client | None = None,
) -> int:
    """Points of `measurements` in `db` that have `field_name` (0 while the db is missing)."""
    names = ", ".join(f'"{m}"' for m in measurements)
    try:
        result = influx_query(url, f'SELECT count("{field_name}") FROM {names}', db, client)
    except MeasureError as exc:
        if "database not found" in str(exc):
            return 0
        raise
    total = 0
    for statement in result.get("results", []):
        for series in statement.get("series", []):
            for row in series["values"]:
                total += int(row[1] or 0)
    return total


def sum_field(url: str, db: str, measurement: str, field_name: str) -> int:
    with contextlib.suppress(MeasureError):
        result = influx_query(url, f'SELECT sum("{field_name}") FROM "{measurement}"', db)
        for statement in result.get("results", []):
            for series in statement.get("series", []):
                return int(series["values"][0][1] or 0)
    return 0


def wait_count(
    url: str, db: str, measurements: Sequence[str], expect: int, timeout_s: float,
    on_count: Any = None, fast_from: float = 0.9, fast_s: float = 0.05, slow_s: float = 0.25,
) -> tuple[int, float | None]:
    """Poll until `expect` points are visible: (count, wall time first seen) or (count, None).

    Polls every `slow_s` until `fast_from` of them are there, then every `fast_s`, so the
    end is timed to within about `fast_s` without the polls stealing much CPU before it."""
    deadline = time.monotonic() + timeout_s
    count = 0
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            count = count_points(url, db, measurements, client=client)
            seen = time.time()
            if on_count is not None:
                on_count(count)
            if count >= expect:
                return count, seen
            time.sleep(fast_s if count >= fast_from * expect else slow_s)
    return count, None


@dataclass
class Stored:
    """What `watch_written` saw: the first answered write with readings, and the last."""

    count: int = 0
    first_t: float | None = None
    last_t: float | None = None
    complete: bool = False
    #: (seconds since the first write, readings written so far) at each write.
    timeline: list[tuple[float, int]] = field(default_factory=list)


def watch_written(
    relay: WriteRelay, db: str, *, expect: int | None, at_least: int, timeout_s: float,
    settle_s: float = 1.5, every_s: float = 0.01, on_count: Any = None, alive: Any = None,
) -> Stored:
    """Follow a consumer's writes through `relay`: when InfluxDB answered the first write
    holding readings, and when it answered the one that completed them. No query is put
    to InfluxDB meanwhile (`benchmarks/write_relay.py` says why).

    Done at `expect` readings (a validating consumer: one point per good reading), or, with
    `expect=None`, once at least `at_least` are written and no write has come for
    `settle_s` (a consumer that also stores some bad readings). `last_t` is the answer of
    the last write, so the settling is not timed. Gives up early when `alive()` turns
    false (the consumer died: nothing more will come)."""
    seen = Stored()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answered = [(t, n) for t, n in relay.writes(db).answered if n]
        for t, n in answered[len(seen.timeline):]:
            seen.first_t = seen.first_t or t
            seen.count, seen.last_t = seen.count + n, t
            seen.timeline.append((round(t - seen.first_t, 3), seen.count))
        if on_count is not None:
            on_count(seen.count)
        if expect is not None and seen.count >= expect:
            seen.complete = True
            return seen
        if (expect is None and seen.count >= at_least and seen.last_t is not None
                and time.time() - seen.last_t >= settle_s):
            seen.complete = True
            return seen
        if alive is not None and not alive():
            return seen
        time.sleep(every_s)
    return seen