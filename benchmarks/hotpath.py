"""The per-message work of the event loop's thread, in process, without network.

    .venv/bin/python -m benchmarks.hotpath [--messages 50000] [--sites 1200] [--callgrind]

Builds the simulated city and backlog of `benchmarks.run` (`benchmarks.traffic`: ~3 %
bad, 0.5 % duplicates, every device type, toilet terminals included; alerts on with the
shipped rules) and pushes the messages through the production code of a drain: the
pipeline's `_handle_slice` (validation, alert engine with its site watches and a real
SQLite incident store in a temp dir, line protocol, the rollup hours, dead letters), its
`_flush` and the `Store` (`Pipeline.open_store`, noting each batch's hours in the rollups'
`DirtyHours` before its acknowledgement). The MQTT edge is a loopback (dead letters and
alert events collected, acks counted) and the InfluxDB writer keeps the bodies: no
network, no second thread.

The same messages then go through each stage alone, on fresh state: `Validator.check`,
`AlertEngine.on_reading` (of the accepted readings) and `reading_line`. "the rest" is the
drain less those stages: the pipeline's own per-message work (the rollup hours among
it), batches, the store, the event loop.

Wall clock: microseconds per message (noisy on a shared machine). `--callgrind` runs
itself under valgrind (callgrind; collection only inside the measured loops, each loop
its own dump) and prints instructions per message, which does not depend on the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode

from benchmarks.traffic import Encoder, city_registry, city_traffic
from devices.common import Reading
from devices.sites import Device, Registry
from ingest import lineproto
from ingest.alerts import AlertEngine
from ingest.alerts.incident_db import IncidentStore, store_path
from ingest.alerts.rules import load_rules
from ingest.deadletter import DeadLetters
from ingest.lineproto import reading_line
from ingest.pipeline import SLICE, Pipeline
from ingest.receiver import Arrival
from ingest.rejects import Rejected
from ingest.rollup_task import RollupTask
from ingest.settings import Settings
from ingest.spool import Spool
from ingest.validation import Validator

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ALERTS = ROOT / "config" / "alerts.yaml"  # as benchmarks/run.py
STAGES = ("validation", "alerts", "line protocol")
T = TypeVar("T")


@dataclass
class Scenario:
    registry: Registry
    arrivals: list[Arrival]


def scenario(sites: int, messages: int, seed: int) -> Scenario:
    """The drain backlog of `benchmarks.run`: sent at ~20,000 msg/s, received 2 s later."""
    registry = Registry.from_dict(city_registry(sites, seed))
    traffic = city_traffic(registry, messages, seed=seed)
    encoder, start = Encoder(), int(time.time() * 1000)
    arrivals = []
    for i, item in enumerate(traffic.items):
        sent = start + i // 20
        arrivals.append(Arrival(item.topic, encoder.encode(item, sent), i % 65535 + 1, 1, 1,
                                sent + 2000))
    return Scenario(registry, arrivals)


class Loopback:
    """The MQTT edge the pipeline sees (`inbox`, `publish`, `ack`), with no broker: every
    publish is acknowledged at once and collected."""

    def __init__(self) -> None:
        self.inbox: deque[Arrival] = deque()
        self.published: list[tuple[str, bytes]] = []
        self.acked = 0

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
                ) -> MQTTMessageInfo:
        self.published.append((topic, payload))
        info = MQTTMessageInfo(len(self.published))
        info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        info._published = True
        return info

    def publishing(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def ack(self, arrivals: list[Arrival]) -> None:
        self.acked += len(arrivals)


class KeptBodies:
    """An `InfluxWriter` that keeps what it is given."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __aenter__(self) -> KeptBodies:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def write(self, body: bytes) -> None:
        self.bodies.append(body)


def settings_in(tmp: Path) -> Settings:
    return Settings(data_dir=tmp, alerts=SHIPPED_ALERTS)


def engine_in(tmp: Path, registry: Registry, settings: Settings) -> AlertEngine:
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    return AlertEngine(load_rules(SHIPPED_ALERTS), registry, IncidentStore(store_path(state)),
                       settings.zone)


@dataclass
class Drain:
    pipeline: Pipeline
    rx: Loopback
    kept: KeptBodies


def drain_setup(tmp: Path, registry: Registry) -> Drain:
    s = settings_in(tmp)
    pipeline = Pipeline(s, registry, engine_in(tmp, registry, s))
    rx, kept = Loopback(), KeptBodies()
    pipeline.rollups = RollupTask(s)
    pipeline.rx = rx  # type: ignore[assignment]
    pipeline.dlq = DeadLetters(rx.publish)
    pipeline.store = pipeline.open_store(kept, Spool(s.spool_dir, s.spool.max_bytes))
    return Drain(pipeline, rx, kept)


async def drain(d: Drain, arrivals: list[Arrival]) -> None:
    """Slices as `Pipeline._receive` takes them; a batch goes when it is full (as while a
    backlog waits) or the inbox is empty; one alert sweep (a drain lasts a second or two)."""
    pipeline, rx = d.pipeline, d.rx
    writing = asyncio.create_task(pipeline.store.run())
    rx.inbox.extend(arrivals)
    batch_size = pipeline.settings.influx.batch_size
    while rx.inbox:  # a slice takes no more than the open batch has room for, as there
        pipeline._handle_slice(max(1, min(SLICE, batch_size - pipeline._batch_points())))
        if pipeline._batch_points() >= batch_size or not rx.inbox:
            await pipeline._flush()
        await asyncio.sleep(0)
    assert pipeline.alerts is not None
    pipeline._emit(pipeline.alerts.sweep(arrivals[-1].received_ms))
    await pipeline._flush()
    await pipeline.store.queue.put(None)
    await writing


#: A good reading as the stages after validation take it: device, reading, ts, received.
Good = tuple[Device, Reading, int, int]


def validate_all(validator: Validator, arrivals: list[Arrival]) -> list[Good]:
    accepted: list[Good] = []
    for a in arrivals:
        try:
            ok = validator.check(a.topic, a.payload, a.received_ms)
        except Rejected:
            continue
        if ok.kind == "telemetry":
            accepted.append((ok.device, ok.message, ok.ts_ms, a.received_ms))  # type: ignore[arg-type]
    return accepted


def alert_all(engine: AlertEngine, accepted: list[Good]) -> int:
    events = 0
    for device, reading, ts_ms, received_ms in accepted:
        events += len(engine.on_reading(device, reading, ts_ms, received_ms))
    return events


def lines_all(accepted: list[Good]) -> int:
    return sum(len(reading_line(device, reading, ts)) for device, reading, ts, _ in accepted)


# -- measuring ----------------------------------------------------------------------------

#: Client requests around a measured loop (no-ops outside valgrind): instrumentation and
#: collection on, then off and the loop's counts dumped under its name.
_REGION_C = r"""
#include <valgrind/callgrind.h>
void region_begin(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void region_end(const char *name) {
    CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT(name); CALLGRIND_STOP_INSTRUMENTATION;
}
"""


def build_region_helper(directory: Path) -> Path:
    """Compile the client requests (valgrind's `callgrind.h`) into a shared library."""
    source, library = directory / "region.c", directory / "region.so"
    source.write_text(_REGION_C)
    try:
        subprocess.run(["cc", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("hotpath: --callgrind needs a C compiler (cc) for valgrind's client requests")
    except subprocess.CalledProcessError as exc:
        sys.exit(f"hotpath: cannot build the callgrind helper: {exc.stderr.strip()}")
    return library


class Regions:
    """Measured loops: the seconds each name took in all, and with `helper` (under
    valgrind) a callgrind dump of each loop named after it."""

    def __init__(self, helper: Path | None) -> None:
        self.seconds: dict[str, float] = {}
        self._lib = None if helper is None else ctypes.CDLL(str(helper))

    def run(self, name: str, fn: Callable[[], T]) -> T:
        gc.collect()  # every loop starts from the same heap, not the last one's garbage
        lib = self._lib
        began = time.perf_counter()
        if lib is not None:
            lib.region_begin()
        result = fn()
        if lib is not None:
            lib.region_end(name.encode())
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
        return result


def run_all(opts: argparse.Namespace) -> Regions:
    """The drain, then each stage alone on the same messages, slice by slice (holding every
    reading at once would make the collector's passes, not the stages, the figure)."""
    s = scenario(opts.sites, opts.messages, opts.seed)
    arrivals, registry = s.arrivals, s.registry
    regions = Regions(opts.inside)
    with tempfile.TemporaryDirectory(prefix="sanitel-hotpath-") as tmp:
        d = drain_setup(Path(tmp) / "drain", registry)
        regions.run("drain", lambda: asyncio.run(drain(d, arrivals)))
        validator = Validator(registry, int(d.pipeline.settings.pipeline.max_future_s * 1000))
        state = Path(tmp) / "stages"
        engine = engine_in(state, registry, settings_in(state))
        lineproto._FLOAT_TEXT.clear()  # the texts the drain's lines left: start cold as it did
        good = 0
        for start in range(0, len(arrivals), SLICE):
            part = arrivals[start:start + SLICE]
            accepted = regions.run("validation", partial(validate_all, validator, part))
            regions.run("alerts", partial(alert_all, engine, accepted))
            regions.run("line protocol", partial(lines_all, accepted))
            good += len(accepted)
        engine.close()
        assert d.pipeline.alerts is not None
        d.pipeline.alerts.close()
    stats = d.pipeline.stats
    print(f"{len(arrivals):,} messages ({good:,} good readings, {stats.rejected:,} dead "
          f"letters, {stats.alerts:,} alert events, {d.pipeline.store.figures.stored:,} points "
          f"stored, {d.rx.acked:,} acknowledged), {len(registry.devices):,} devices",
          file=sys.stderr)
    return regions


def table(per_message: dict[str, float], unit: str, digits: int) -> str:
    rest = per_message["drain"] - sum(per_message[stage] for stage in STAGES)
    rows = [(stage, per_message[stage]) for stage in STAGES]
    rows += [("the rest", rest), ("drain (all of it)", per_message["drain"])]
    return "\n".join(f"  {name:<18} {value:>12,.{digits}f} {unit}" for name, value in rows)


def under_callgrind(argv: list[str], keep: Path | None) -> dict[str, int]:
    """Run this module under callgrind, instrumenting only the measured loops; the
    instructions of each loop name, summed. `keep`: copy the dumps there."""
    if shutil.which("valgrind") is None:
        sys.exit("hotpath: --callgrind needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="sanitel-callgrind-") as tmp:
        helper, out = build_region_helper(Path(tmp)), Path(tmp) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.hotpath",
               *argv, "--inside", str(helper)]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        counts: dict[str, int] = {}
        for path in Path(tmp).glob("cg.out.*"):
            text = path.read_text()
            name = re.search(r"^desc: Trigger: Client Request: (.+)$", text, re.MULTILINE)
            total = re.search(r"^totals: (\d+)", text, re.MULTILINE)
            if name is None or total is None:
                sys.exit(f"hotpath: cannot read the callgrind dump {path.name}")
            counts[name[1]] = counts.get(name[1], 0) + int(total[1])
        if keep is not None:
            shutil.copytree(tmp, keep, dirs_exist_ok=True)
    if set(counts) != {"drain", *STAGES}:
        sys.exit(f"hotpath: callgrind dumped {sorted(counts)}, not the drain and each stage")
    return counts


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--sites", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per message with valgrind (slow: minutes)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="with --callgrind: keep the dumps (one per measured loop) in DIR, "
                        "for callgrind_annotate")
    parser.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    opts = options(sys.argv[1:] if argv is None else argv)
    if opts.callgrind:
        inner = ["--messages", str(opts.messages), "--sites", str(opts.sites),
                 "--seed", str(opts.seed)]
        counts = under_callgrind(inner, opts.keep)
        print(f"instructions per message (callgrind), {opts.messages:,} messages:")
        print(table({k: v / opts.messages for k, v in counts.items()}, "Ir", 0))
        return
    regions = run_all(opts)
    if opts.inside is not None:
        return
    print(f"microseconds per message (wall clock: noisy on a shared machine), "
          f"{opts.messages:,} messages:")
    print(table({k: v * 1e6 / opts.messages for k, v in regions.seconds.items()}, "us", 2))


if __name__ == "__main__":
    main()
