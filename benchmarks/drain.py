"""The drain phase: every consumer takes the same queued QoS 1 backlog, timed the same way.

Every consumer's persistent session is made first, then each reading is published once
while they are all away, so mosquitto queues the same backlog for each. The consumers
then run one after the other, back to back:

  paho311   stock paho subscriber, MQTT 3.1.1, counting only
  paho5     stock paho subscriber, MQTT 5, Sanitel's receive maximum, counting only
  broker    mosquitto_sub (C, MQTT 3.1.1): the broker's own limit
  storage   Sanitel's own points for the backlog posted straight into InfluxDB, two
            writes at a time (`benchmarks/storage_limit.py`): InfluxDB's own limit
  bridge    minimal Python bridge: paho 3.1.1 callback, json.loads, line protocol,
            200 ms batches, no validation
  nodered   Node-RED + node-red-contrib-influxdb (benchmarks/nodered), when npm is there
  sanitel   `sanitel ingest`, once per `--workers` entry (N in one shared group)

A consumer that stores writes through `write_relay.WriteRelay`, and is timed from
InfluxDB's answer to its first write holding readings to its answer to the last
(`measure.watch_written`; polling InfluxDB for a count slowed the writes it timed); one
that only counts, from its first message to its N-th, by its own clock. CPU seconds
(user + sys, psutil over the process tree) of the consumer, mosquitto and influxd are
taken over the same window.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from benchmarks.contenders import create_session, drop_session
from benchmarks.measure import ProcessMonitor, Stored, count_points, sum_field, watch_written
from benchmarks.nodered import NodeRed, NodeRedUnavailable, install
from benchmarks.procs import ROOT, EventReader, PhaseTimeout, contender_cmd
from benchmarks.report import cpu_floor
from benchmarks.storage_limit import BATCH, IN_FLIGHT
from benchmarks.storage_limit import lines as storage_lines
from benchmarks.traffic import (
    MEASUREMENTS,
    TELEMETRY_FILTER,
    BacklogNotQueued,
    Traffic,
    publish_backlog,
)
from benchmarks.write_relay import WriteRelay
from devices.sites import Registry
from sanitel.local_servers import free_port

if TYPE_CHECKING:
    from benchmarks.run import Bench

MB = 1024 * 1024
MQTT311, MQTT5 = 4, 5
REFERENCES = ("paho311", "paho5", "broker", "storage", "bridge", "nodered")
#: References that take no MQTT session.
SESSIONLESS = ("storage",)
SHARED_GROUP = "bench"


@dataclass(frozen=True)
class Window:
    """A consumer's timed window and what it stored."""

    t0: float
    t1: float
    points: int | None = None
    expected: int | None = None


class Servers:
    """CPU of mosquitto and influxd, sampled alongside a consumer."""

    def __init__(self, bench: Bench) -> None:
        self.mosquitto = ProcessMonitor(bench.broker.proc.pid)  # type: ignore[union-attr]
        self.influxd = ProcessMonitor(bench.influx.proc.pid)  # type: ignore[union-attr]

    @contextlib.contextmanager
    def sampling(self) -> Iterator[Servers]:
        with self.mosquitto, self.influxd:
            yield self


def row(name: str, n: int, window: Window, mon: ProcessMonitor, servers: Servers,
        **extra: Any) -> dict[str, Any]:
    """A consumer's figures. Rate: over its window (first to last stored, or first to last
    message). CPU: from its broker connection to the window's end, so that work done
    before its first point is stored counts, and start-up (imports, config) does not."""
    seconds = max(window.t1 - window.t0, 1e-6)
    per_100k = 100_000 / n
    work_t0 = min(mon.connected_at or window.t0, window.t0)

    own, broker, influxd = (m.cpu_between(work_t0, window.t1)
                            for m in (mon, servers.mosquitto, servers.influxd))
    return {
        "name": name, "messages": n, "seconds": round(seconds, 3),
        "msgs_per_s": round(n / seconds),
        "connect_to_last_s": round(window.t1 - work_t0, 3), "points": window.points,
        "expected_points": window.expected,
        "cpu_s": round(own, 2), "cpu_s_per_100k": round(own * per_100k, 2),
        "mosquitto_cpu_s_per_100k": round(broker * per_100k, 2),
        "influxd_cpu_s_per_100k": round(influxd * per_100k, 2),
        "cpu_floor_s": round(cpu_floor(own + broker + influxd, window.t0 - work_t0), 3),
        "peak_rss_mb": round(mon.peak_rss_between(window.t0, window.t1) / MB, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2), **extra,
    }


class Drain:
    def __init__(self, bench: Bench, traffic: Traffic, registry_yaml: Path) -> None:
        self.bench = bench
        self.traffic = traffic
        self.registry_yaml = registry_yaml
        self.n = len(traffic.items)
        opts = bench.opts
        self.wanted = [p for p in REFERENCES if p in opts.phases]
        self.workers = list(opts.workers) if "sanitel" in opts.phases else []
        self.nodered: NodeRed | None = None
        self.results: dict[str, Any] = {}
        self.round_index = 0
        self.databases: list[str] = []
        self.relay: WriteRelay | None = None
        self._storage_lines: Path | None = None

    def monitor(self, *pids: int, connects_to: int | None = None) -> ProcessMonitor:
        """CPU and RSS of a consumer, and when it connected to the broker (or to the port
        `connects_to`)."""
        return ProcessMonitor(*pids, every_s=0.05,
                              connects_to=connects_to or self.bench.broker.port)

    def log(self, text: str) -> None:
        self.bench.console.log(text)

    # sessions, backlog ----------------------------------------------------------

    def sessions(self) -> dict[str, tuple[list[str], list[str], int]]:
        """consumer key -> (client ids, topic filters, protocol)."""
        out: dict[str, tuple[list[str], list[str], int]] = {}
        for key in (k for k in self.wanted if k not in SESSIONLESS):
            out[key] = ([f"bench-{key}"], [TELEMETRY_FILTER], MQTT5 if key == "paho5"
                        else MQTT311)
        for n in self.workers:
            key = f"sanitel{n}"
            shared = f"$share/{SHARED_GROUP}-{key}/" if n > 1 else ""
            out[key] = (self.bench.sanitel_ids(key, n), [shared + TELEMETRY_FILTER], MQTT5)
        return out

    def run(self) -> dict[str, Any]:
        """`--rounds` rounds; in each, a fresh backlog and every consumer in turn, the order
        rotated by one each round so that none always drains first (on a warm influxd) or
        last. A consumer's row is its median round; every round's figures are kept."""
        if "nodered" in self.wanted:
            with self.bench.task("Node-RED: installing into the cache "
                                 "(benchmarks/nodered/setup.sh)", None):
                try:
                    self.nodered = install()
                except NodeRedUnavailable as exc:
                    self.wanted.remove("nodered")
                    self.results["nodered"] = {"name": "Node-RED", "error": str(exc)}
        with WriteRelay(self.bench.influx.url, MEASUREMENTS) as self.relay:
            rounds = [self.round(r) for r in range(self.bench.opts.rounds)]
        self.results.update(median_rows(rounds))
        return self.results

    def round(self, index: int) -> dict[str, dict[str, Any]]:
        """One round: sessions, the backlog, every consumer drains it; then its databases
        are dropped, so that each round meets an influxd holding the same data."""
        bench, self.round_index = self.bench, index
        sessions = self.sessions()
        for ids, topics, protocol in sessions.values():
            for client_id in ids:
                create_session(bench.broker.host, bench.broker.port, client_id, topics,
                               protocol=protocol)
        self.publish(len(sessions))
        keys = [*self.wanted, *(f"sanitel{n}" for n in self.workers)]
        shift = index % len(keys) if keys else 0
        out: dict[str, dict[str, Any]] = {}
        for key in keys[shift:] + keys[:shift]:
            if key.startswith("sanitel"):
                out[key] = self.drain_sanitel(int(key[7:]))
            elif key in SESSIONLESS:
                out[key] = getattr(self, f"drain_{key}")()
            else:
                out[key] = getattr(self, f"drain_{key}")(sessions[key][0][0])
                drop_session(bench.broker.host, bench.broker.port, sessions[key][0][0])
            out[key]["round"] = index + 1
        for db in self.databases:
            bench.influx.query(f'DROP DATABASE "{db}"', db="")
        self.databases.clear()
        return out

    def publish(self, consumers: int) -> None:
        bench, n = self.bench, self.n
        with bench.task(f"publish {n:,} readings (queued for {consumers} consumers)", n) as upd:
            t0 = time.time()
            try:
                sent = publish_backlog(bench.broker.host, bench.broker.port, self.traffic.items,
                                       progress=upd)
            except BacklogNotQueued as exc:
                raise PhaseTimeout(f"publish: {exc}") from None
            publish_s = time.time() - t0
        bench.results["publish"] = {"messages": sent, "seconds": round(publish_s, 3),
                                    "msgs_per_s": round(sent / publish_s)}
        self.log(f"published {sent:,} readings in {publish_s:.1f} s ({sent / publish_s:,.0f}/s),"
                 f" queued for {consumers} consumers")

    # counting consumers ---------------------------------------------------------

    def drain_paho311(self, client_id: str) -> dict[str, Any]:
        return self._counting("paho311", client_id, "paho 3.1.1, counting only")

    def drain_paho5(self, client_id: str) -> dict[str, Any]:
        rm = self.receive_maximum()
        return self._counting("paho5", client_id,
                              f"paho 5 (receive max {rm:,}), counting only",
                              "--receive-maximum", str(rm))

    def receive_maximum(self) -> int:
        from ingest.settings import MqttSettings

        value = self.bench.opts.sanitel_env.get("SANITEL_MQTT__RECEIVE_MAXIMUM")
        return int(value) if value else MqttSettings().receive_maximum

    def _counting(self, kind: str, client_id: str, name: str, *args: str) -> dict[str, Any]:
        bench = self.bench
        cmd = contender_cmd(kind, "--port", str(bench.broker.port), "--client-id", client_id,
                            "--expect", str(self.n), *args)
        with bench.task(f"{name}: drains the backlog", None), Servers(bench).sampling() as srv:
            proc = bench.children.spawn(cmd, cwd=ROOT, stdout=subprocess.PIPE)
            assert proc.stdout is not None
            events = EventReader(proc.stdout)
            with self.monitor(proc.pid) as mon:
                first = events.wait_for("first", 30)
                done = events.wait_for("done", 180) if first else None
                mon.sample_now()
            bench.children.stop(proc, 10)
        if first is None or done is None:
            raise PhaseTimeout(f"{name}: " + ("no message in 30 s" if first is None
                                              else "did not count all in 180 s"))
        out = row(name, self.n, Window(first["t"], done["t"]), mon, srv)
        self.log(f"{name}: {out['msgs_per_s']:,} msg/s, {out['cpu_s_per_100k']} CPU s/100k")
        return out

    def drain_broker(self, client_id: str) -> dict[str, Any]:
        """mosquitto_sub (C) prints each message's arrival time; first to N-th."""
        bench, name = self.bench, "broker limit: mosquitto_sub (C)"
        binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
        if not Path(binary).exists():
            return {"name": name, "error": "mosquitto_sub missing (apt-get install "
                    "mosquitto-clients)"}
        cmd = [binary, "-h", bench.broker.host, "-p", str(bench.broker.port), "-V", "mqttv311",
               "-c", "-i", client_id, "-q", "1", "-t", TELEMETRY_FILTER, "-C", str(self.n),
               "-F", "%U"]
        with bench.task(f"{name}: drains the backlog", None), Servers(bench).sampling() as srv:
            proc = bench.children.spawn(cmd, stdout=subprocess.PIPE)
            assert proc.stdout is not None
            stamps = _FirstLast(proc.stdout)
            with self.monitor(proc.pid) as mon:
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    bench.children.stop(proc, 5)
                    raise PhaseTimeout(f"{name}: did not take the backlog in 120 s") from None
            stamps.join()
        if stamps.first is None or stamps.last is None or stamps.count < self.n:
            raise PhaseTimeout(f"{name}: printed {stamps.count} of {self.n} messages")
        out = row(name, self.n, Window(stamps.first, stamps.last), mon, srv,
                  exit_code=proc.returncode)
        self.log(f"{name}: {out['msgs_per_s']:,} msg/s")
        return out

    # storing consumers ----------------------------------------------------------

    def _database(self, key: str) -> str:
        db = f"bench_{key}_r{self.round_index + 1}"
        self.bench.influx.query(f'CREATE DATABASE "{db}"', db="")
        self.databases.append(db)
        return db

    @property
    def write_url(self) -> str:
        """Where the storing consumers write: the relay that times their writes."""
        assert self.relay is not None
        return self.relay.url

    def _watch(self, db: str, expect: int | None, on_count: Any,
               alive: Any = None) -> Stored:
        assert self.relay is not None
        return watch_written(self.relay, db, expect=expect, at_least=self.traffic.good,
                             timeout_s=240, on_count=on_count, alive=alive)

    def _stored_window(self, name: str, db: str, seen: Stored) -> Window:
        """The window of the writes; its points are counted in InfluxDB once it is over."""
        if seen.first_t is None or seen.last_t is None or not seen.complete:
            raise PhaseTimeout(f"{name}: {seen.count:,} readings written, "
                               f"{self.traffic.good:,} expected, in its time")
        points = count_points(self.bench.influx.url, db, MEASUREMENTS)
        return Window(seen.first_t, seen.last_t, points, self.traffic.good)

    def drain_bridge(self, client_id: str) -> dict[str, Any]:
        bench, name = self.bench, "Python bridge (json.loads, 200 ms)"
        db = self._database("bridge")
        cmd = contender_cmd("bridge", "--port", str(bench.broker.port), "--client-id",
                            client_id, "--influx", self.write_url, "--database", db)
        proc = bench.children.spawn(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        return self._storing(name, db, proc, expect=None)

    def drain_nodered(self, client_id: str) -> dict[str, Any]:
        bench = self.bench
        assert self.nodered is not None
        name = "Node-RED + influxdb batch"
        db = self._database("nodered")
        host, _, port = self.write_url.removeprefix("http://").rpartition(":")
        env = {**_plain_env(), **NodeRed.env(bench.broker.host, bench.broker.port, client_id,
                                              host, int(port), db)}
        user_dir = bench.tmp / "nodered"
        log = (user_dir / "node-red.log")
        user_dir.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = bench.children.spawn(self.nodered.command(user_dir, free_port()), env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
        return self._storing(name, db, proc, expect=None, version=self.nodered.version())

    def drain_storage(self) -> dict[str, Any]:
        """Sanitel's points for this backlog, built once, posted straight into InfluxDB."""
        name = f"storage limit: Sanitel's points, {IN_FLIGHT} writes in flight"
        if self._storage_lines is None:
            with self.bench.task("storage limit: Sanitel's lines for the backlog", None):
                points = storage_lines(self.traffic, Registry.load(self.registry_yaml),
                                       int(time.time() * 1000))
                self._storage_lines = self.bench.tmp / "storage-limit.lp"
                self._storage_lines.write_text("\n".join(points))
        db = self._database("storage")
        # Sanitel's batch size, also when `--set SANITEL_INFLUX__BATCH_SIZE=N` changes it
        batch = self.bench.opts.sanitel_env.get("SANITEL_INFLUX__BATCH_SIZE", str(BATCH))
        proc = self.bench.children.spawn(
            [sys.executable, "-m", "benchmarks.storage_limit", "--influx", self.write_url,
             "--database", db, "--lines", str(self._storage_lines), "--batch", batch],
            cwd=ROOT, stdout=subprocess.DEVNULL)
        assert self.relay is not None
        return self._storing(name, db, proc, expect=None, connects_to=self.relay.port)

    def _storing(self, name: str, db: str, proc: subprocess.Popen[bytes], expect: int | None,
                 connects_to: int | None = None, **extra: Any) -> dict[str, Any]:
        bench, good = self.bench, self.traffic.good
        with bench.task(f"{name}: drains the backlog", good) as upd, \
                Servers(bench).sampling() as srv, \
                self.monitor(proc.pid, connects_to=connects_to) as mon:
            seen = self._watch(db, expect, upd)
            mon.sample_now()
        bench.children.stop(proc, 15)
        out = row(name, self.n, self._stored_window(name, db, seen), mon, srv,
                  stored_timeline=seen.timeline, **extra)
        self.log(f"{name}: {out['msgs_per_s']:,} msg/s, {out['cpu_s_per_100k']} CPU s/100k, "
                 f"{out['points']:,} points")
        return out

    def drain_sanitel(self, n: int) -> dict[str, Any]:
        bench, traffic, key = self.bench, self.traffic, f"sanitel{n}"
        name = f"sanitel ingest x{n} (shared group)" if n > 1 else "sanitel ingest"
        db = self._database(key)
        workers = bench.start_sanitel(key, self.registry_yaml, db, n,
                                      data_tag=f"-r{self.round_index + 1}",
                                      influx_url=self.write_url)
        spy, profile = (self._profile(workers.pids[0])
                        if n == self.workers[0] and self.round_index == 0 else (None, None))
        with bench.task(f"{name}: drains the backlog", traffic.good) as upd, \
                Servers(bench).sampling() as srv, \
                self.monitor(*workers.pids) as mon:
            seen = self._watch(db, traffic.good, upd,
                               alive=lambda: all(p.poll() is None for p in workers.procs))
            mon.sample_now()
        dead = [log for proc, log in zip(workers.procs, workers.logs, strict=True)
                if proc.poll() is not None]
        if dead and not seen.complete:
            tail = dead[0].read_text(errors="replace").strip().splitlines()[-3:]
            raise PhaseTimeout(f"{name}: a worker exited early; its log ends: " + " | ".join(tail))
        window = self._stored_window(name, db, seen)
        rejects = 0
        deadline = time.monotonic() + 30  # rejects are counted in their own points
        while time.monotonic() < deadline:
            rejects = sum_field(bench.influx.url, db, "rejects", "count")
            if rejects >= traffic.bad:
                break
            time.sleep(0.2)
        if spy is not None:
            bench.children.stop(spy, 30, sig=signal.SIGINT)
        stopped = bench.stop_sanitel(workers)
        after = count_points(bench.influx.url, db, MEASUREMENTS)
        out = row(name, self.n, window, mon, srv, workers=n, points_after=after,
                  stored_equals_good=after == traffic.good, rejects_counted=rejects,
                  expected_rejects=traffic.bad, startup_s=round(window.t0 - workers.spawned, 3),
                  sanitel=stopped, profile=relative(profile), stored_timeline=seen.timeline)
        self.log(f"{name}: {out['msgs_per_s']:,} msg/s, {out['cpu_s_per_100k']} CPU s/100k; "
                 f"{seen.count:,} points of {traffic.good:,}; rejects {rejects:,} of "
                 f"{traffic.bad:,}")
        return out

    def _profile(self, pid: int) -> tuple[subprocess.Popen[bytes] | None, Path | None]:
        opts = self.bench.opts
        if not opts.profile:
            return None, None
        ext = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[opts.profile_format]
        path = opts.out / f"{self.bench.results['stamp']}-sanitel-drain.{ext}"
        spy = self.bench.children.spawn(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
             "--rate", "200", "--nonblocking", "--threads",
             "--gil" if opts.profile_gil else "--idle", "--format", opts.profile_format,
             "--output", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return spy, path


def median_rows(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per consumer, its median round by msg/s (the lower middle of an even count), with
    every round's rate and time from connect alongside, in round order."""
    out: dict[str, dict[str, Any]] = {}
    for key in rounds[0] if rounds else {}:
        rows = [r[key] for r in rounds if key in r]
        chosen = sorted(rows, key=lambda x: x["msgs_per_s"])[(len(rows) - 1) // 2]
        out[key] = {**chosen, "rounds_msgs_per_s": [x["msgs_per_s"] for x in rows],
                    "rounds_connect_to_last_s": [x["connect_to_last_s"] for x in rows],
                    "rounds_cpu_s_per_100k": [x["cpu_s_per_100k"] for x in rows],
                    "rounds_seconds": [x["seconds"] for x in rows],
                    "rounds_cpu_floor_s": [x.get("cpu_floor_s") for x in rows],
                    "rounds_load_avg_1m": [x["load_avg_1m"] for x in rows]}
    return out


class _FirstLast:
    """Reads `%U` timestamps line by line: the first, the last, and how many."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        last = b""
        for line in stream:
            if self.count == 0:
                self.first = float(line)
            self.count += 1
            last = line
        if last:
            self.last = float(last)

    def join(self) -> None:
        self._thread.join(10)


def relative(path: Path | None) -> str | None:
    """A path as the results JSON holds it: relative to the repository when inside it."""
    if path is None:
        return None
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
