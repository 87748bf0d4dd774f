"""Storage benchmark (SPEC section 9): disk bytes per device and day in `raw` and `rollup`,
the time to recompute an hour of rollups for the whole city, and dashboard queries over
30 days and a year, raw vs rollup.

    .venv/bin/python -m benchmarks.storage [--sites 50] [--raw-days 30] [--rollup-days 365]

It starts its own influxd (temp dir, compaction of cold shards after seconds, not hours),
runs `sanitel influx setup`, writes `--raw-days` of raw readings of a simulated city
(line protocol straight to `/write`), rolls them up with the code `sanitel ingest` uses,
writes the rest of the year's rollup points directly, waits for compaction, then
measures. The dashboard queries are the city overview's, with Grafana's macros filled
in as Grafana fills them (all districts and sites chosen).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import dashboards
from benchmarks.storage_city import DISTRICTS, HOUR_MS, BenchDevice, city, raw_lines, rollup_lines
from ingest.influx_admin import setup
from ingest.influxql_client import AsyncInfluxQL, Credentials
from ingest.rollup_task import DirtyHours, Rollups, open_rollup_writer
from ingest.rollups import BY_SOURCE, touched_hours
from ingest.settings import Settings, load
from sanitel.local_servers import Influxd

DAY_MS = 24 * HOUR_MS
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class BenchInfluxd(Influxd):
    """influxd that snapshots and fully compacts cold shards within seconds."""

    def command(self) -> list[str]:
        command = super().command()
        conf = self.data_dir / "influxdb.conf"
        text = conf.read_text().replace(
            "query-log-enabled = false\n",
            'query-log-enabled = false\n  cache-snapshot-write-cold-duration = "2s"\n'
            '  compact-full-write-cold-duration = "5s"\n  max-series-per-database = 0\n', 1)
        conf.write_text(text)
        return command


@contextlib.contextmanager
def _running(directory: Path) -> Iterator[BenchInfluxd]:
    influxd = BenchInfluxd(directory)
    influxd.start()
    try:
        yield influxd
    finally:
        influxd.stop()


def _write(url: str, lines: list[str], rp: str | None = None) -> None:
    params = {"db": "sanitation", "precision": "ms"} | ({"rp": rp} if rp else {})
    for chunk in range(0, len(lines), 50_000):
        body = "\n".join(lines[chunk:chunk + 50_000]).encode()
        response = httpx.post(f"{url}/write", params=params, content=body, timeout=300)
        response.raise_for_status()


def _batched(chunks: Iterator[list[str]], size: int = 50_000) -> Iterator[list[str]]:
    batch: list[str] = []
    for chunk in chunks:
        batch.extend(chunk)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _settle(influxd: Influxd, timeout: float = 120) -> None:
    """Wait until the data directory stops changing (snapshots and compactions done)."""
    last, stable, deadline = -1, 0, time.monotonic() + timeout
    while stable < 3 and time.monotonic() < deadline:
        time.sleep(5)
        size = _du(influxd.data_dir / "data") + _du(influxd.data_dir / "wal")
        stable = stable + 1 if size == last else 0
        last = size


def _timed(function: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


#: One pooled client for every query (as Grafana keeps its connections): a new httpx
#: client per request would time the loading of a CA bundle, not InfluxDB.
_CLIENT = httpx.Client(timeout=300, verify=False, limits=httpx.Limits(max_connections=32))


def _query(url: str, q: str) -> int:
    response = _CLIENT.post(f"{url}/query", data={"db": "sanitation", "q": q, "epoch": "ms"})
    response.raise_for_status()
    rows = 0
    for result in response.json()["results"]:
        assert "error" not in result, f"{result['error']} in {q}"
        rows += sum(len(s.get("values", [])) for s in result.get("series", []))
    return rows


def _fill(query: str, devices: list[BenchDevice], now: int, span_ms: int,
          interval: str, decide_ms: int | None = None) -> str:
    """Grafana's macros over [now - span, now]; `decide_ms` overrides the range the
    raw-or-rollup condition sees (to run the raw query over a long range)."""
    sites = sorted({d.tags.split("site_id=")[1].split(",")[0] for d in devices})
    decide = span_ms if decide_ms is None else decide_ms
    macros = {
        "$timeFilter": f"time >= {now - span_ms}ms and time <= {now}ms",
        "$__interval": interval, "${__from}": str(now - decide), "${__to}": str(now),
        "$district": "(" + "|".join(DISTRICTS) + ")", "$site": "(" + "|".join(sites) + ")",
    }
    for macro, value in macros.items():
        query = query.replace(macro, value)
    return query


def _overview() -> dict[str, Any]:
    """The city overview as exported (JSON), thresholds from the shipped rules."""
    boards = dashboards.dashboards(Path(__file__).resolve().parents[1] / "config/alerts.yaml")
    return boards["city-overview"]


def _panel_queries(board: dict[str, Any], title: str) -> dict[str, str]:
    (panel,) = [p for p in board["panels"] if p.get("title") == title]
    return {t["refId"]: t["query"] for t in panel["targets"]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    devices = city(args.sites)
    figures: dict[str, Any] = {"sites": args.sites, "devices": len(devices),
                               "raw_days": args.raw_days, "rollup_days": args.rollup_days}
    with tempfile.TemporaryDirectory() as tmp, _running(Path(tmp) / "influxd") as influxd:
        settings = load(None, influx={"url": influxd.url}, data_dir=Path(tmp) / "data")
        setup(settings)
        now = int(time.time() * 1000) // HOUR_MS * HOUR_MS
        raw_start = now - args.raw_days * DAY_MS
        started, points = time.perf_counter(), 0
        for lines in _batched(raw_lines(devices, raw_start, now)):
            _write(influxd.url, lines)
            points += len(lines)
        figures["raw_points"] = points
        figures["raw_write_s"] = round(time.perf_counter() - started, 1)
        print(f"raw: {points:,} points written in {figures['raw_write_s']} s", flush=True)
        figures |= asyncio.run(_rollups(settings, raw_start, now, args.runs))
        year_start = now - args.rollup_days * DAY_MS
        _write_year(influxd.url, devices, year_start, raw_start)
        figures["district_days_s"] = asyncio.run(_district_days(settings, year_start, raw_start))
        _settle(influxd)
        figures |= _disk(influxd, len(devices), args)
        figures |= _queries(influxd.url, devices, now, args.runs)
    figures["replay_hours_ms_per_5000_lines"] = _note_cost(devices, now)
    return figures


async def _rollups(settings: Settings, start: int, end: int, runs: int) -> dict[str, Any]:
    reader = AsyncInfluxQL(settings.influx.url, Credentials(), 300)
    async with open_rollup_writer(settings.influx) as writer:
        rollups = Rollups(settings.influx, reader, writer)
        every = {name: set(range(start, end, HOUR_MS)) for name in BY_SOURCE}
        started = time.perf_counter()
        written = await rollups.recompute(every)
        total = time.perf_counter() - started
        print(f"rollups: {written:,} points for {len(every['odor'])} hours in {total:.1f} s",
              flush=True)
        one_hour = []
        for hour in range(end - runs * HOUR_MS, end, HOUR_MS):
            begun = time.perf_counter()
            await rollups.recompute({name: {hour} for name in BY_SOURCE})
            one_hour.append(time.perf_counter() - begun)
        into = await _select_into_hour(reader, end - 12 * HOUR_MS, runs)
    await reader.aclose()
    return {"rollup_all_hours_s": round(total, 2), "rollup_points": written,
            "recompute_one_hour_s": round(statistics.median(one_hour), 3),
            "select_into_one_hour_s": round(into, 3)}


async def _district_days(settings: Settings, start: int, end: int) -> float:
    """The daily district figures of the generated part of the year, from its hours."""
    reader = AsyncInfluxQL(settings.influx.url, Credentials(), 300)
    started = time.perf_counter()
    async with open_rollup_writer(settings.influx) as writer:
        days = set(range(start - start % DAY_MS, end, DAY_MS))
        await Rollups(settings.influx, reader, writer).recompute_days(days)
    await reader.aclose()
    return round(time.perf_counter() - started, 1)


async def _select_into_hour(reader: AsyncInfluxQL, hour: int, runs: int) -> float:
    """The same hour with server-side `SELECT ... INTO` (no meters), for comparison."""
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        for rollup in BY_SOURCE.values():
            columns = ", ".join(f'{f.select} AS "{f.name}"' for f in rollup.fields)
            await reader.run(
                f'SELECT {columns} INTO "sanitation"."autogen"."{rollup.target}_into" '
                f'FROM "{rollup.source}" WHERE time >= {hour}ms AND time < {hour + HOUR_MS}ms '
                "GROUP BY time(1h), *", "sanitation")
        times.append(time.perf_counter() - begun)
    return statistics.median(times)


def _write_year(url: str, devices: list[BenchDevice], start: int, end: int) -> None:
    started, points = time.perf_counter(), 0
    for lines in _batched(rollup_lines(devices, start, end)):
        _write(url, lines, rp="rollup")
        points += len(lines)
    print(f"rollup: {points:,} more points (the rest of the year) in "
          f"{time.perf_counter() - started:.1f} s", flush=True)


def _disk(influxd: Influxd, devices: int, args: argparse.Namespace) -> dict[str, Any]:
    base = influxd.data_dir
    raw = _du(base / "data/sanitation/raw") + _du(base / "wal/sanitation/raw")
    rollup = _du(base / "data/sanitation/rollup") + _du(base / "wal/sanitation/rollup")
    return {"raw_bytes": raw, "rollup_bytes": rollup,
            "raw_bytes_per_device_day": round(raw / devices / args.raw_days),
            "rollup_bytes_per_device_day": round(rollup / devices / args.rollup_days)}


def _queries(url: str, devices: list[BenchDevice], now: int, runs: int) -> dict[str, Any]:
    """The city overview's "People in per district": `A` raw, `B` hourly rollups, `C`
    daily district figures; each forced over ranges it would not be chosen for, to
    compare."""
    board = _overview()
    panel = _panel_queries(board, "People in per district")
    out: dict[str, Any] = {}
    for label, span, interval in (("30d", 30 * DAY_MS, "1h"), ("1y", 365 * DAY_MS, "12h")):
        variants = {"raw": (panel["A"], HOUR_MS), "hourly": (panel["B"], 30 * DAY_MS),
                    "daily": (panel["C"], 365 * DAY_MS)}
        for name, (query, decide) in variants.items():
            filled = _fill(query, devices, now, span, interval, decide_ms=decide)
            out[f"panel_{label}_{name}_s"], rows = _timed(partial(_query, url, filled), runs)
            out[f"panel_{label}_{name}_rows"] = rows
    titled = [(f'{p["title"]}:{t["refId"]}', _fill(t["query"], devices, now, 365 * DAY_MS, "12h"))
              for p in board["panels"] for t in p.get("targets", [])]
    everything = [query for _title, query in titled]
    alone = sorted(((_timed(partial(_query, url, q), 1)[0], title) for title, q in titled),
                   reverse=True)
    out["city_overview_1y_slowest"] = [f"{title} {seconds:.3f} s" for seconds, title in alone[:3]]

    def all_panels() -> list[int]:  # as Grafana sends them: at once
        with ThreadPoolExecutor(len(everything)) as pool:
            return list(pool.map(lambda q: _query(url, q), everything))

    out["city_overview_1y_s"], _ = _timed(all_panels, runs)
    out["city_overview_queries"] = len(everything)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _note_cost(devices: list[BenchDevice], now: int) -> float:
    """A spool replay's cost of finding the rollup hours in what it wrote (the pipeline's
    own batches carry theirs)."""
    lines = next(raw_lines(devices, now - HOUR_MS, now))[:5000]
    dirty = DirtyHours(None)
    cost, _ = _timed(lambda: dirty.add(touched_hours(lines)), 20)
    return round(cost * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--raw-days", type=int, default=30)
    parser.add_argument("--rollup-days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = measure(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"storage-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
