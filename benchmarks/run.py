"""Sanitel benchmark: Sanitel against reference consumers of the same backlog.

    .venv/bin/python -m benchmarks.run [--quick] [--messages N] [--workers 1,2] [--profile] ...

Starts its own mosquitto and influxd on free loopback ports (temp dirs), builds a
simulated city (simulators.generate_city: thousands of devices of all four types,
~3 % bad messages of every reject kind, ~0.5 % duplicates) and its readings, then:

  drain    (benchmarks/drain.py) every consumer's persistent QoS 1 session is made first,
           every reading is published once while they are away, then each consumer
           drains the same backlog in turn, back to back: stock paho 3.1.1 and 5
           (counting only), mosquitto_sub (the broker limit), Sanitel's own points
           posted straight into InfluxDB (the storage limit), a minimal Python bridge,
           Node-RED + node-red-contrib-influxdb (when npm is there), and `sanitel ingest`
           with each --workers count in one shared group. A storing consumer is timed
           from its first stored reading to its last (its writes pass a relay that notes
           InfluxDB's answers), a counting one
           from its first message to its last; CPU seconds per 100,000 readings of the
           consumer, mosquitto and influxd over the same window.
  live     Sanitel at --live-rate msg/s for --live-seconds, writing through the relay:
           latency = InfluxDB's answer to the write - the reading's ts (send time).
  scale    Sanitel with a --scale-devices registry, one reading from each: peak RSS.
  alerts   tests/ingest/alerts/alert_latency.py (publish -> alert event), p50/p99.

Prints a table (Sanitel as x Node-RED, x the broker limit and x the storage limit), writes
benchmarks/results/<UTC>.json (+ latest.json) and a PNG (skipped without matplotlib).
Every phase has a timeout; every process started is stopped, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks import report
from benchmarks.contenders import drop_session
from benchmarks.drain import REFERENCES, SHARED_GROUP, Drain
from benchmarks.measure import ProcessMonitor, count_points, wait_count
from benchmarks.procs import (
    ROOT,
    Children,
    PhaseTimeout,
    PublisherFeed,
    log_problems,
    log_time,
    sanitel_cmd,
    sanitel_env,
    stopped_figures,
    wait_log,
)
from benchmarks.traffic import (
    MEASUREMENTS,
    Encoder,
    Publisher,
    Traffic,
    city_registry,
    city_traffic,
    one_reading_each,
)
from benchmarks.write_relay import WriteRelay
from devices.sites import Registry
from sanitel.local_servers import Influxd, Mosquitto
from simulators import write_registry

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED_ALERTS = ROOT / "config" / "alerts.yaml"
ALERT_SCRIPT = ROOT / "tests" / "ingest" / "alerts" / "alert_latency.py"
PHASES = (*REFERENCES, "sanitel", "live", "scale", "alerts")
MB = 1024 * 1024

console = Console()
if not console.is_terminal:
    console.width = 160


@dataclass
class Options:
    messages: int
    sites: int
    seed: int
    live_rate: float
    live_seconds: float
    scale_devices: int
    alert_count: int
    phases: tuple[str, ...]
    profile: bool
    profile_format: str
    profile_gil: bool
    workers: tuple[int, ...]
    sanitel_env: dict[str, str]
    keep: bool
    out: Path
    quick: bool
    rounds: int = 1


@dataclass
class Workers:
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    client_ids: list[str]
    spawned: float

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]


@dataclass
class Bench:
    opts: Options
    tmp: Path
    broker: Mosquitto
    influx: Influxd
    children: Children
    progress: Progress
    results: dict[str, Any] = field(default_factory=dict)
    console: Console = field(default_factory=lambda: console)

    # helpers --------------------------------------------------------------------

    @contextlib.contextmanager
    def task(self, description: str, total: float | None) -> Iterator[Callable[[float], None]]:
        task_id = self.progress.add_task(description, total=total)

        def update(done: float) -> None:
            self.progress.update(task_id, completed=done)

        try:
            yield update
        finally:
            self.progress.update(task_id, total=total or 1, completed=total or 1)
            self.progress.stop_task(task_id)

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far of mosquitto, influxd, this harness, and the whole machine."""
        out: dict[str, float] = {}
        procs = {"mosquitto": self.broker.proc, "influxd": self.influx.proc}
        for name, proc in procs.items():
            with contextlib.suppress(psutil.Error, AttributeError):
                times = psutil.Process(proc.pid).cpu_times()  # type: ignore[union-attr]
                out[name] = times.user + times.system
        harness = psutil.Process().cpu_times()
        out["harness"] = harness.user + harness.system
        machine = psutil.cpu_times()
        out["machine_busy"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
        out["wall"] = time.time() * (os.cpu_count() or 1)
        return out

    @staticmethod
    def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
        """CPU seconds used between two snapshots, and how busy the machine's cores were."""
        used = {k: round(after[k] - before[k], 2) for k in before if k in after and k != "wall"}
        capacity = after["wall"] - before["wall"]
        used["machine_busy_pct"] = round(100 * used.pop("machine_busy") / max(capacity, 1e-6), 1)
        return used

    @staticmethod
    def sanitel_ids(name: str, n: int = 1) -> list[str]:
        return [f"bench-{name}"] if n == 1 else [f"bench-{name}-{i}" for i in range(n)]

    def start_sanitel(self, name: str, registry: Path, database: str, n: int = 1,
                      data_tag: str = "", influx_url: str | None = None) -> Workers:
        """`n` processes of `sanitel ingest` (one shared subscription group if > 1), each
        with a data directory of its own (`data_tag` makes a fresh one per drain round),
        writing to `influx_url` (the drain's write relay) or straight to influxd."""
        extra = dict(self.opts.sanitel_env)
        if n > 1:
            extra["SANITEL_MQTT__SHARED_GROUP"] = f"{SHARED_GROUP}-{name}"
        workers = Workers([], [], self.sanitel_ids(name, n), time.time())
        for client_id in workers.client_ids:
            data_dir = self.tmp / f"{client_id}{data_tag}"
            data_dir.mkdir(parents=True, exist_ok=True)
            log = data_dir / "ingest.log"
            env = sanitel_env(
                mqtt_port=self.broker.port, client_id=client_id,
                influx_url=influx_url or self.influx.url,
                database=database, registry=registry, data_dir=data_dir, alerts=SHIPPED_ALERTS,
                extra=extra,
            )
            with log.open("wb") as out:
                workers.procs.append(self.children.spawn(
                    sanitel_cmd(), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
            workers.logs.append(log)
        return workers

    def wait_workers(self, workers: Workers, needle: str, timeout: float, what: str) -> float:
        """Until every worker logged `needle`; the earliest time they logged it."""
        times = [log_time(wait_log(log, needle, timeout, proc, what)) or time.time()
                 for proc, log in zip(workers.procs, workers.logs, strict=True)]
        return min(times)

    def stop_sanitel(self, workers: Workers) -> dict[str, Any]:
        """Stop the workers, then end their sessions: an offline persistent session would
        go on queueing (and, in a shared group, taking its share of) later phases' traffic."""
        out: dict[str, Any] = {"workers": len(workers.procs), "exit_codes": [], "logs": [],
                               "figures": {}, "log_problems": []}
        for proc, log, client_id in zip(workers.procs, workers.logs, workers.client_ids,
                                        strict=True):
            out["exit_codes"].append(self.children.stop(proc, timeout=60))
            drop_session(self.broker.host, self.broker.port, client_id)
            if self.opts.keep:  # otherwise the temp dir is gone when the JSON is read
                out["logs"].append(str(log))
            for key, value in (stopped_figures(log) or {}).items():
                out["figures"][key] = out["figures"].get(key, 0) + value
            out["log_problems"].extend(log_problems(log))
        return out

    # drain ----------------------------------------------------------------------

    def drain(self, traffic: Traffic, registry_yaml: Path) -> None:
        self.results["drain"] = Drain(self, traffic, registry_yaml).run()

    # live -----------------------------------------------------------------------

    def live(self, traffic: Traffic, registry_yaml: Path) -> None:
        opts, db = self.opts, "bench_live"
        total = int(opts.live_rate * opts.live_seconds)
        relay = WriteRelay(self.influx.url, MEASUREMENTS, latencies=True)
        with relay:
            workers = self.start_sanitel("sanitel-live", registry_yaml, db,
                                         influx_url=relay.url)
            self._live(traffic, db, total, workers, relay)

    def _live(self, traffic: Traffic, db: str, total: int, workers: Workers,
              relay: WriteRelay) -> None:
        opts = self.opts
        with ProcessMonitor(*workers.pids) as mon:
            self.wait_workers(workers, "sanitel ingest: started", 60, "Sanitel live")
            cmd = [sys.executable, "-m", "benchmarks.publisher", "--port", str(self.broker.port),
                   "--sites", str(opts.sites), "--seed", str(opts.seed), "--messages",
                   str(len(traffic.items)), "--count", str(total), "--rate", str(opts.live_rate),
                   "--max-seconds", str(opts.live_seconds + 30)]
            publisher = self.children.spawn(cmd, cwd=ROOT, stdout=subprocess.PIPE)
            assert publisher.stdout is not None
            feed = PublisherFeed(publisher.stdout)
            try:
                with self.task(f"live: Sanitel at {opts.live_rate:,.0f} msg/s for "
                               f"{opts.live_seconds:g} s", total) as upd:
                    started = feed.wait_for("start", 60)
                    if started is None:
                        raise PhaseTimeout("live: the publisher did not start in 60 s")
                    cpu0 = self.cpu_snapshot()
                    deadline = time.monotonic() + opts.live_seconds + 60
                    done = None
                    while done is None and time.monotonic() < deadline:
                        done = feed.wait_for("done", 0.25)
                        upd(feed.sent)
                    others = self.cpu_used(cpu0, self.cpu_snapshot())
                    if done is None:
                        raise PhaseTimeout(f"live: the publisher sent {feed.sent:,} of "
                                           f"{total:,} in {opts.live_seconds + 60:g} s")
                sent, good = done["sent"], done["good"]
                with self.task("live: waiting for the last points", good) as upd:
                    # Duplicates are written again (the same point): lines >= good readings.
                    deadline = time.monotonic() + 30
                    while relay.readings(db) < good and time.monotonic() < deadline:
                        upd(relay.readings(db))
                        time.sleep(0.1)
            finally:
                self.children.stop(publisher, 10)
            mon.sample_now()
        # Counted once Sanitel has stopped (it stores all it has first): the wait above ends
        # at as many reading lines as good readings, and duplicates' lines count there.
        stopped = self.stop_sanitel(workers)
        stored = count_points(self.influx.url, db, MEASUREMENTS)
        written = relay.writes(db)
        lat = written.latencies_ms
        t0_wall, t1_wall = started["t"], done["t"]
        publish_s = t1_wall - t0_wall
        cpu_during = mon.cpu_at(t1_wall) - mon.cpu_at(t0_wall)
        self.results["live"] = {
            "name": f"Sanitel live {opts.live_rate:,.0f} msg/s", "messages": sent,
            "seconds": round(publish_s, 3), "msgs_per_s": round(sent / publish_s),
            "target_rate": opts.live_rate, "points": stored, "expected_points": good,
            "reading_lines_written": written.readings, "writes": len(written.answered),
            "latency_ms": {f"p{p}": _round(report.percentile(lat, p)) for p in (50, 90, 99)}
            | {"max": _round(max(lat) if lat else None), "mean": _round(sum(lat) / len(lat)
                                                                       if lat else None)},
            "latency_samples_ms": [round(x, 1) for x in lat],
            "peak_rss_mb": round(mon.peak_rss / MB, 1), "cpu_s": round(mon.cpu_s, 2),
            "cpu_pct_while_publishing": round(100 * cpu_during / max(publish_s, 1e-6), 1),
            "cpu_s_others": others,
            "publisher_acked_after_s": round(done["acked_t"] - done["t"], 3),
            "sanitel": stopped,
        }
        live = self.results["live"]
        console.log(f"live: {sent:,} messages at {sent / publish_s:,.0f}/s; latency p50 "
                    f"{live['latency_ms']['p50']} ms, p99 {live['latency_ms']['p99']} ms; "
                    f"{stored:,} of {good:,} points stored")

    # scale ----------------------------------------------------------------------

    def scale(self) -> None:
        opts, db = self.opts, "bench_scale"
        sites = math.ceil(opts.scale_devices / 2.5)
        city = city_registry(sites, opts.seed + 1, max_devices=opts.scale_devices)
        path = write_registry(city, self.tmp / "registry-scale.yaml")
        registry = Registry.from_dict(city)
        traffic = one_reading_each(registry, opts.seed + 1)
        workers = self.start_sanitel("sanitel-scale", path, db)
        with ProcessMonitor(*workers.pids) as mon:
            self.wait_workers(workers, "sanitel ingest: started", 90, "Sanitel scale")
            time.sleep(0.5)
            idle_rss = mon.sample_now()
            with self.task(f"scale: {len(registry.devices):,} devices, one reading each",
                           traffic.good) as upd:
                pub = Publisher(self.broker.host, self.broker.port, "bench-scale-publisher")
                try:
                    t0 = time.time()
                    sent = pub.send(traffic.items, Encoder())
                    pub.wait_acked(sent, 30)
                finally:
                    pub.close()
                points, t_end = wait_count(self.influx.url, db, MEASUREMENTS, traffic.good,
                                           120, on_count=upd)
            time.sleep(2)  # let alert state and buffers settle, still sampling
            mon.sample_now()
        stopped = self.stop_sanitel(workers)
        if t_end is None:
            raise PhaseTimeout(f"scale: {points:,} of {traffic.good:,} points stored in 120 s")
        self.results["scale"] = {
            "name": f"Sanitel {len(registry.devices):,} devices", "devices": len(
                registry.devices), "messages": sent, "seconds": round(t_end - t0, 3),
            "msgs_per_s": round(sent / (t_end - t0)), "points": points,
            "expected_points": traffic.good,
            "idle_rss_mb": round((idle_rss.rss if idle_rss else 0) / MB, 1),
            "peak_rss_mb": round(mon.peak_rss / MB, 1), "final_rss_mb": round(
                mon.last_rss / MB, 1), "cpu_s": round(mon.cpu_s, 2), "sanitel": stopped,
        }
        console.log(f"scale: {len(registry.devices):,} devices, peak RSS "
                    f"{mon.peak_rss / MB:.0f} MB (idle {self.results['scale']['idle_rss_mb']} MB)")

    # alerts ---------------------------------------------------------------------

    def alerts(self) -> None:
        count = self.opts.alert_count
        out: dict[str, Any] = {"name": "alert latency (alert_latency.py)", "script":
                               str(ALERT_SCRIPT.relative_to(ROOT)), "alerts": count}
        self.results["alerts"] = out
        if not ALERT_SCRIPT.exists():
            out["error"] = f"{ALERT_SCRIPT} is missing"
            return
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.task(f"alerts: {count:,} alerts at 500 readings/s (alert_latency.py)", None):
            proc = self.children.spawn(
                [sys.executable, str(ALERT_SCRIPT), "--alerts", str(count), "--rate", "500"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                text, _ = proc.communicate(timeout=count / 500 + 120)
            except subprocess.TimeoutExpired:
                self.children.stop(proc, 10)
                out["error"] = "alert_latency.py did not finish in time"
                return
        output = text.decode(errors="replace")
        out["output"] = output.strip().splitlines()[-8:]
        for line in output.splitlines():
            key, _, value = line.partition(":")
            if key in ("p50", "p90", "p99", "max") and value.strip().endswith("ms"):
                out[f"{key}_ms"] = float(value.strip().removesuffix("ms"))
            if key == "alerts":
                out["received"] = value.strip()
        if proc.returncode != 0 or "p99_ms" not in out:
            out["error"] = f"alert_latency.py exited {proc.returncode}: {output[-300:]}"
        else:
            console.log(f"alerts: p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smaller run: 20,000 messages, live 15 s, "
                             "300 alerts (explicit options still win)")
    parser.add_argument("--messages", type=int, help="readings in the drain backlog "
                        "(default 50,000; --quick 20,000)")
    parser.add_argument("--sites", type=int, default=1200,
                        help="sites of the simulated city (default 1200: about 3,400 devices)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live-rate", type=float, default=5000, help="msg/s in the live run")
    parser.add_argument("--live-seconds", type=float, help="live run length "
                        "(default 60; --quick 15)")
    parser.add_argument("--scale-devices", type=int, default=10_000,
                        help="devices in the scale run's registry (default 10,000)")
    parser.add_argument("--alerts", type=int, dest="alert_count",
                        help="alerts in the alert latency run (default 2,000; --quick 300)")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    parser.add_argument("--profile", action="store_true",
                        help="record a py-spy flame graph of Sanitel in the drain phase "
                             "(results/<stamp>-sanitel-drain.svg; --nonblocking, a little load)")
    parser.add_argument("--profile-format", choices=["flamegraph", "raw", "speedscope"],
                        default="flamegraph", help="py-spy output format for --profile")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL (py-spy "
                             "--gil), where a GIL-bound process spends its time; without it "
                             "every thread's samples, waits included (--idle)")
    parser.add_argument("--workers", default="1,2",
                        help="comma-separated: one drain of sanitel ingest per entry, with that "
                             "many processes in one MQTT shared subscription group "
                             "(default 1,2; live and scale use one)")
    parser.add_argument("--rounds", type=int,
                        help="drain rounds: a fresh backlog each, the consumers' order rotated; "
                             "each row is its median round (default 5; --quick 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        dest="sanitel_env",
                        help="extra environment for sanitel ingest, e.g. "
                             "--set SANITEL_INFLUX__BATCH_SIZE=10000 (repeatable)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (server data, sanitel logs) and print its path")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"--phases: unknown {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    quick = args.quick
    sanitel_extra = {}
    for spec in args.sanitel_env:
        key, sep, value = spec.partition("=")
        if not sep or not key.startswith("SANITEL_"):
            parser.error(f"--set {spec!r}: write SANITEL_SECTION__KEY=VALUE")
        sanitel_extra[key] = value
    try:
        workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    except ValueError:
        parser.error(f"--workers {args.workers!r}: write counts such as 1,2")
    if not workers or min(workers) < 1:
        parser.error("--workers: at least 1")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: at least 1")

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else (short if quick else full)

    return Options(
        messages=pick(args.messages, 50_000, 20_000), sites=args.sites, seed=args.seed,
        live_rate=args.live_rate,
        live_seconds=pick(args.live_seconds, 60.0, 15.0), scale_devices=args.scale_devices,
        alert_count=pick(args.alert_count, 2000, 300), phases=phases, profile=args.profile,
        profile_format=args.profile_format, profile_gil=args.profile_gil,
        workers=workers, sanitel_env=sanitel_extra,
        keep=args.keep, out=args.out, quick=quick, rounds=pick(args.rounds, 5, 1),
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: dict[str, Any] = {
        "stamp": stamp, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "platform": platform.platform()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
    }
    results["host"]["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    busy = _pytest_running()
    if busy:
        console.print(f"[yellow]note: {busy} pytest process(es) running: figures will be low")
        results["host"]["pytest_running"] = busy
    opts.out.mkdir(parents=True, exist_ok=True)
    with console.status("building the city and its readings"):
        city = city_registry(opts.sites, opts.seed)
        registry = Registry.from_dict(city)
        traffic = city_traffic(registry, opts.messages, seed=opts.seed)
    results["traffic"] = {
        "messages": len(traffic.items), "good": traffic.good, "bad": traffic.bad,
        "duplicates": traffic.counts.get("duplicate", 0), "devices": traffic.devices,
        "sites": traffic.sites, "by_expect": dict(traffic.counts), "by_type": dict(
            traffic.types()),
    }
    console.log(f"city: {traffic.sites:,} sites, {traffic.devices:,} devices; "
                f"{len(traffic.items):,} readings, {traffic.good:,} good, {traffic.bad:,} bad, "
                f"{results['traffic']['duplicates']} duplicates")
    tmp = Path(tempfile.mkdtemp(prefix="sanitel-bench-"))
    children = Children()
    failed: str | None = None
    try:
        registry_yaml = write_registry(city, tmp / "registry.yaml")
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        with console.status("starting mosquitto and influxd"):
            broker = Mosquitto(tmp / "mosquitto")
            broker.start()
        try:
            influx = Influxd(tmp / "influxd")
            influx.start()
            try:
                bench = Bench(opts, tmp, broker, influx, children, progress, results)
                with progress:
                    failed = _phases(bench, traffic, registry_yaml)
            finally:
                influx.stop()
        finally:
            broker.stop()
        if "alerts" in opts.phases:
            # Its own servers and sanitel ingest; ours are stopped so they cost no CPU.
            bench.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=console)
            with bench.progress:
                try:
                    bench.alerts()
                except (OSError, RuntimeError, ValueError) as exc:
                    results["alerts"] = {"error": f"{type(exc).__name__}: {exc}"}
    except KeyboardInterrupt:
        console.print("[red]interrupted: stopping everything it started")
        children.stop_all()
        return 130
    finally:
        children.stop_all()
        if opts.keep:
            console.print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["host"]["load"] += " -> " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    if failed:
        results["failed"] = failed
    report.finish(results, opts.out, console)
    return 1 if failed else 0


def _phases(bench: Bench, traffic: Traffic, registry_yaml: Path) -> str | None:
    """Run the phases; a failing phase is reported and the rest still run."""
    opts, failures = bench.opts, []
    steps: list[tuple[str, Callable[[], None]]] = []
    if any(p in opts.phases for p in (*REFERENCES, "sanitel")):
        steps.append(("drain", lambda: bench.drain(traffic, registry_yaml)))
    if "live" in opts.phases:
        steps.append(("live", lambda: bench.live(traffic, registry_yaml)))
    if "scale" in opts.phases:
        steps.append(("scale", bench.scale))
    for name, step in steps:
        try:
            step()
        except (PhaseTimeout, RuntimeError, OSError) as exc:
            console.print(f"[red]{name} failed: {exc}")
            failures.append(f"{name}: {exc}")
            bench.results.setdefault("errors", {})[name] = str(exc)
    return "; ".join(failures) or None


def _pytest_running() -> int:
    try:
        import psutil

        return sum(1 for p in psutil.process_iter(["cmdline"])
                   if any("pytest" in part for part in (p.info["cmdline"] or []))
                   and p.pid != os.getpid())
    except Exception:
        return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
