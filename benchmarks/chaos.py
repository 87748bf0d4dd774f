"""A chaos run: a simulated city at a steady rate while, at random times, `sanitel ingest`
is SIGKILLed, mosquitto restarted, influxd stopped for 10-60 s, influxd answering 401
for a while (restarted with auth on: ingest has no credentials), and the disk spool
filling up (a small `spool.max_bytes`). At the end: readings published, stored, lost
(must be 0), stored twice (must be 0), dead letters expected vs seen, alert incidents
expected vs seen (an `offline` LWT sent for chosen devices now and then: one incident
each), peak RSS of ingest. On demand, not a test, not in CI:

    .venv/bin/python -m benchmarks.chaos                      # 1,000 msg/s for 10 minutes
    .venv/bin/python -m benchmarks.chaos --rate 500 --minutes 3

Prints the table and writes JSON to `benchmarks/results/chaos-<time>.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.procs import ROOT, Children, log_problems, sanitel_cmd, sanitel_env
from benchmarks.traffic import (
    MEASUREMENTS,
    Encoder,
    Item,
    Publisher,
    city_registry,
    city_traffic,
    cycle,
)
from devices.sites import Registry
from sanitel.local_servers import Influxd, Mosquitto
from simulators.engine import DUPLICATE, STORED

RESULTS = ROOT / "benchmarks" / "results"
ALERTS = ROOT / "config" / "alerts.yaml"
DB = "chaos"


@dataclass
class Fault:
    at_s: float
    kind: str  # kill, broker, influx_down, influx_401
    length_s: float = 0.0
    done_at_s: float | None = None


def plan(rng: random.Random, duration_s: float) -> list[Fault]:
    """Per 10 minutes: 3 kills, 2 broker restarts, 2 InfluxDB outages (10-60 s), one 401
    spell (20-40 s); never overlapping, spread over the first 85 % of the run."""
    share = duration_s / 600
    kinds = (["kill"] * max(1, round(3 * share)) + ["broker"] * max(1, round(2 * share))
             + ["influx_down"] * max(1, round(2 * share)) + ["influx_401"] * max(1, round(share)))
    rng.shuffle(kinds)
    slot = duration_s * 0.8 / len(kinds)
    faults = []
    for i, kind in enumerate(kinds):
        length = {"influx_down": rng.uniform(10, 60), "influx_401": rng.uniform(20, 40)}.get(
            kind, rng.uniform(1, 3))
        length = min(length, slot * 0.7)
        start = duration_s * 0.05 + i * slot + rng.uniform(0, max(slot - length, 0) * 0.5)
        faults.append(Fault(round(start, 1), kind, round(length, 1)))
    return faults


class Ingest:
    """One `sanitel ingest` at a time (restarted after a kill), its peak RSS watched."""

    def __init__(self, children: Children, env: dict[str, str], log: Path) -> None:
        self.children, self.env, self.log = children, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_rss = 0
        self.starts = 0
        self._watching = True
        threading.Thread(target=self._watch, daemon=True).start()

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = self.children.spawn(sanitel_cmd(), env=self.env, cwd=ROOT,
                                            stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + 60
        while b"sanitel ingest: started" not in self.log.read_bytes()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sanitel ingest did not start (see {self.log})")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.children.stop(self.proc, timeout=10, sig=signal.SIGKILL)

    def stop(self) -> int | None:
        self._watching = False
        return None if self.proc is None else self.children.stop(self.proc, timeout=120)

    def _watch(self) -> None:
        while self._watching:
            proc = self.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(psutil.Error):
                    self.peak_rss = max(self.peak_rss, psutil.Process(proc.pid).memory_info().rss)
            time.sleep(0.2)


class DeadLetterWatch:
    """A persistent QoS 1 session on `_dlq/#`: counts the records by reason."""

    def __init__(self, host: str, port: int) -> None:
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"chaos-dlq-{uuid.uuid4().hex[:6]}",
                                  protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(
            "sanitation/v1/_dlq/#", qos=1)
        self.client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(host, port, clean_start=paho.MQTT_CLEAN_START_FIRST_ONLY,
                            properties=props)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.seen[msg.topic.rsplit("/", 1)[-1]] += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Options:
    rate: float
    minutes: float
    sites: int
    seed: int
    spool_bytes: int
    lwt_every_s: float


@dataclass
class Run:
    opts: Options
    tmp: Path
    children: Children = field(default_factory=Children)
    log: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.log.append(line)
        print(line, flush=True)

    def traffic(self, registry: Registry, total: int) -> list[Item]:
        """The city's readings (3 % bad, no duplicates: redeliveries make those); a
        clock-skew reading stays skewed only if its `ts` is beyond the whole run."""
        base = city_traffic(registry, min(total, 60_000), seed=self.opts.seed,
                            bad_share=0.03, duplicate_share=0.0)
        horizon = time.time() * 1000 + (self.opts.minutes * 60 + 900) * 1000
        return [item for item in base.items if item.expect != "clock_skew"
                or json.loads(item.raw or b"{}").get("ts", 0) > horizon]


def fault_runner(run: Run, faults: list[Fault], started: float, ingest: Ingest,
                 broker: Mosquitto, influx: Influxd, stop: threading.Event) -> None:
    def outage(stop_it: Callable[[], object], start_it: Callable[[], object]
               ) -> Callable[[Fault], None]:
        def run_it(fault: Fault) -> None:
            stop_it()
            time.sleep(fault.length_s)
            start_it()
        return run_it

    actions: dict[str, Callable[[Fault], None]] = {
        "kill": outage(ingest.kill, ingest.start),
        "broker": outage(broker.stop, broker.start),
        "influx_down": outage(influx.stop, influx.start),
        "influx_401": lambda f: _auth_spell(influx, f.length_s),
    }
    for fault in faults:
        while time.monotonic() - started < fault.at_s:
            if stop.wait(0.2):
                return
        run.say(f"fault: {fault.kind} for {fault.length_s} s")
        actions[fault.kind](fault)
        fault.done_at_s = round(time.monotonic() - started, 1)
        run.say(f"fault over: {fault.kind}")


def _auth_spell(influx: Influxd, seconds: float) -> None:
    """InfluxDB restarted with auth on (ingest has no credentials: 401), then off again."""
    influx.stop()
    influx.auth_enabled = True
    influx.start()
    time.sleep(seconds)
    influx.stop()
    influx.auth_enabled = False
    influx.start()


def inject_lwts(run: Run, registry: Registry, host: str, port: int, stop: threading.Event,
                injected: list[tuple[str, int]]) -> None:
    """Now and then an `{"online": false}` (not retained) from a device not used before."""
    rng = random.Random(run.opts.seed + 1)
    devices = sorted(registry.devices.values(), key=lambda d: d.id)
    rng.shuffle(devices)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"chaos-lwt-{uuid.uuid4().hex[:6]}")
    client.reconnect_delay_set(1, 2)
    client.connect(host, port)
    client.loop_start()
    for device in devices:
        if stop.wait(run.opts.lwt_every_s):
            break
        topic = f"sanitation/v1/{device.site.id}/{device.type}/{device.id}/status"
        while not stop.is_set():  # the broker may be restarting: until it takes it
            try:
                client.publish(topic, b'{"online": false}', qos=1).wait_for_publish(30)
                injected.append((device.id, int(time.time() * 1000)))
                break
            except (RuntimeError, ValueError):
                time.sleep(0.5)
    client.disconnect()
    client.loop_stop()


def stored_points(url: str, since_ms: int) -> list[tuple[str, int, int]]:
    out = []
    with httpx.Client(timeout=300) as client:
        for measurement in MEASUREMENTS:
            reply = client.post(f"{url}/query", data={
                "db": DB, "epoch": "ms",
                "q": f'SELECT "seq", "device_id" FROM "{measurement}" WHERE time >= {since_ms}ms'})
            reply.raise_for_status()
            for statement in reply.json()["results"]:
                if "error" in statement:
                    raise RuntimeError(f"query of {measurement}: {statement['error']}")
                for series in statement.get("series", []):
                    cols = series["columns"]
                    for values in series["values"]:
                        row = dict(zip(cols, values, strict=True))
                        out.append((row["device_id"], row["time"], row["seq"]))
    return out


def incidents(url: str, devices: set[str], since_ms: int) -> int:
    reply = httpx.post(f"{url}/query", data={"db": DB, "epoch": "ms", "q": (
        f"SELECT alert_id, device_id FROM alerts WHERE rule = 'offline' AND "
        f"time >= {since_ms - 60_000}ms")}, timeout=60)
    reply.raise_for_status()
    ids = set()
    for statement in reply.json()["results"]:
        for series in statement.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                if row["device_id"] in devices:
                    ids.add(row["alert_id"])
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000, help="messages per second")
    parser.add_argument("--minutes", type=float, default=10, help="how long to publish")
    parser.add_argument("--sites", type=int, default=100, help="sites of the simulated city")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--spool-bytes", type=int, default=2_000_000,
                        help="spool.max_bytes: small, so that outages fill it")
    parser.add_argument("--lwt-every", type=float, default=20,
                        help="seconds between injected offline LWTs")
    args = parser.parse_args(argv)
    opts = Options(args.rate, args.minutes, args.sites, args.seed, args.spool_bytes,
                   args.lwt_every)
    with tempfile.TemporaryDirectory(prefix="sanitel-chaos-") as tmp:
        return chaos(Run(opts, Path(tmp)))


def chaos(run: Run) -> int:
    opts, tmp = run.opts, run.tmp
    duration = opts.minutes * 60
    total = int(opts.rate * duration)
    city = city_registry(opts.sites, opts.seed)
    (tmp / "registry.yaml").write_text(yaml.safe_dump(city))
    registry = Registry.from_dict(city)
    items = run.traffic(registry, total)
    faults = plan(random.Random(opts.seed), duration)
    run.say(f"{len(registry.devices)} devices; {total:,} messages at {opts.rate:.0f}/s for "
            f"{duration:.0f} s; faults: " + ", ".join(f"{f.kind}@{f.at_s}s" for f in faults))
    broker = Mosquitto(tmp / "mosquitto").start()
    influx = Influxd(tmp / "influxd").start()
    influx.query(f'CREATE DATABASE "{DB}"', db="")
    env = sanitel_env(mqtt_port=broker.port, client_id="chaos-ingest", influx_url=influx.url,
                      database=DB, registry=tmp / "registry.yaml", data_dir=tmp / "data",
                      alerts=ALERTS, extra={
                          "SANITEL_SPOOL__MAX_BYTES": str(opts.spool_bytes),
                          "SANITEL_SPOOL__RETRY_MAX_S": "3",
                          "SANITEL_RETENTION__SETUP_ON_START": "false",
                          "SANITEL_RETENTION__ROLLUPS": "false"})
    ingest = Ingest(run.children, env, tmp / "ingest.log")
    try:
        ingest.start()
        return _drive(run, registry, items, faults, total, broker, influx, ingest)
    finally:
        ingest.stop()
        run.children.stop_all()
        for server in (influx, broker):
            server.stop()


def _drive(run: Run, registry: Registry, items: list[Item], faults: list[Fault], total: int,
           broker: Mosquitto, influx: Influxd, ingest: Ingest) -> int:
    opts = run.opts
    dlq = DeadLetterWatch(broker.host, broker.port)
    encoder = Encoder(record=True)
    publisher = Publisher(broker.host, broker.port, client_id="chaos-city")
    since_ms = int(time.time() * 1000) - 1000
    stop, injected = threading.Event(), list[tuple[str, int]]()
    started = time.monotonic()
    threads = [
        threading.Thread(target=fault_runner, daemon=True,
                         args=(run, faults, started, ingest, broker, influx, stop)),
        threading.Thread(target=inject_lwts, daemon=True,
                         args=(run, registry, broker.host, broker.port, stop, injected)),
    ]
    for thread in threads:
        thread.start()
    sent = publisher.send(cycle(items, total), encoder, rate=opts.rate)
    publish_s = time.monotonic() - started
    run.say(f"published {sent:,} in {publish_s:.0f} s; waiting for the broker's PUBACKs")
    publisher.wait_acked(sent, 600)
    stop.set()
    threads[0].join()  # a fault under way finishes
    threads[1].join(130)
    expected_good = set(encoder.sent)
    bad = Counter(items[i % len(items)].expect for i in range(sent))
    expected_dlq = sum(n for kind, n in bad.items() if kind not in (STORED, DUPLICATE))
    stored = _wait_stored(run, influx.url, since_ms, len(expected_good))
    deadline = time.monotonic() + 60
    while sum(dlq.seen.values()) < expected_dlq and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(5)  # late alert points
    seen_incidents = incidents(influx.url, {d for d, _ in injected}, since_ms)
    exit_code = ingest.stop()
    dlq.close()
    publisher.close()
    return _report(run, {
        "published": sent, "good_published": len(expected_good), "stored": stored,
        "expected_good": expected_good, "expected_dlq": expected_dlq,
        "seen_dlq": dict(dlq.seen), "expected_dlq_by_reason": {
            k: v for k, v in bad.items() if k not in (STORED, DUPLICATE)},
        "incidents_expected": len(injected), "incidents_seen": seen_incidents,
        "peak_rss": ingest.peak_rss, "ingest_starts": ingest.starts, "exit_code": exit_code,
        "publish_s": publish_s, "faults": faults,
        "log_problems": [line.replace(str(run.tmp), "<tmp>")
                         for line in log_problems(ingest.log)],
        "spool_full": ingest.log.read_text().count("no longer acknowledging readings"),
        "credentials_logged": ingest.log.read_text().count("refused our credentials"),
    })


def count_stored(url: str, since_ms: int) -> int:
    total = 0
    for measurement in MEASUREMENTS:
        reply = httpx.post(f"{url}/query", data={"db": DB, "q": (
            f'SELECT count("seq") FROM "{measurement}" WHERE time >= {since_ms}ms')},
            timeout=120)
        reply.raise_for_status()
        for statement in reply.json()["results"]:
            if "error" in statement:
                raise RuntimeError(f"count of {measurement}: {statement['error']}")
            for series in statement.get("series", []):
                total += int(series["values"][0][1])
    return total


def _wait_stored(run: Run, url: str, since_ms: int, want: int) -> list[tuple[str, int, int]]:
    """Until every good reading is in InfluxDB, or nothing new came for 120 s."""
    last, last_change = -1, time.monotonic()
    while True:
        count = count_stored(url, since_ms)
        if count != last:
            last, last_change = count, time.monotonic()
            run.say(f"stored so far: {count:,} of {want:,}")
        if count >= want or time.monotonic() - last_change > 120:
            return stored_points(url, since_ms)
        time.sleep(5)


def _report(run: Run, r: dict[str, Any]) -> int:
    rows: list[tuple[str, int, int]] = r["stored"]
    stored_keys = {(d, t) for d, t, _ in rows}
    lost = len(r["expected_good"] - stored_keys)
    twice = len(rows) - len({(d, s) for d, _, s in rows})
    unexpected = len(stored_keys - r["expected_good"])
    seen_dlq = sum(r["seen_dlq"].values())
    figures = {
        "published": r["published"], "good readings published": r["good_published"],
        "stored": len(stored_keys), "lost": lost, "stored twice": twice,
        "stored, not published as good": unexpected,
        "dead letters expected": r["expected_dlq"], "dead letters seen": seen_dlq,
        "alert incidents expected": r["incidents_expected"],
        "alert incidents seen": r["incidents_seen"],
        "peak RSS of ingest (MiB)": round(r["peak_rss"] / 2**20, 1),
        "ingest starts (1 + kills)": r["ingest_starts"], "ingest exit code": r["exit_code"],
        "spool full (acks paused)": r["spool_full"],
        "credentials refused (logged)": r["credentials_logged"],
    }
    width = max(map(len, figures))
    print("\nchaos run: " + ", ".join(f"{f.kind} {f.length_s}s@{f.at_s}s" for f in r["faults"]))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value:>12,}" if isinstance(value, int)
              else f"  {name:<{width}}  {value!s:>12}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"chaos-{stamp}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": stamp, "options": vars(run.opts), "figures": figures,
        "dead_letters_seen_by_reason": r["seen_dlq"],
        "dead_letters_expected_by_reason": r["expected_dlq_by_reason"],
        "faults": [vars(f) for f in r["faults"]], "publish_s": round(r["publish_s"], 1),
        "ingest_log_problems": r["log_problems"], "events": run.log,
        "results_file": str(out.relative_to(ROOT)),
    }, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")
    ok = lost == 0 and twice == 0 and seen_dlq >= r["expected_dlq"] \
        and r["incidents_seen"] == r["incidents_expected"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
