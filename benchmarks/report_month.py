"""How long `sanitel report` takes over a month of a city's raw readings (SPEC section 9).

Writes a month of readings shaped like the simulators' (`benchmarks.storage_city`: people
counter and odor every 60 s, sprayer and toilet terminal every 300 s, one site in five a
transfer station) straight into a throwaway influxd, with a registry of the same city,
then runs the real `sanitel report` and prints the figures:

    .venv/bin/python -m benchmarks.report_month --sites 40 --days 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.storage_city import DISTRICTS, city, raw_lines
from sanitel.local_servers import Influxd

DAY_MS = 86_400_000
START = "2026-10-01"  # 2026-10-01T00:00 in Asia/Shanghai
START_MS = 1_790_784_000_000
TYPES = {"people_flow": "people_counter", "odor": "odor", "sprayer": "sprayer",
         "toilet": "toilet_terminal", "station": "station_terminal"}


def registry(sites: int) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {}
    for device in city(sites):
        tags = dict(part.split("=") for part in device.tags.split(","))
        site = out.setdefault(tags["site_id"], {
            "id": tags["site_id"], "kind": tags["site_kind"], "district": tags["district"],
            "name": f"{tags['district']} {tags['site_id']}", "lat": 30.6, "lon": 104.0,
            "devices": []})
        site["devices"].append({"id": tags["device_id"], "type": TYPES[device.measurement],
                                "interval_s": device.interval_s})
    return {"sites": list(out.values())}


def write_month(url: str, sites: int, days: int) -> int:
    points, batch = 0, []
    for lines in raw_lines(city(sites), START_MS, START_MS + days * DAY_MS):
        batch += lines
        if len(batch) >= 50_000:
            points += _post(url, batch)
            batch = []
    return points + (_post(url, batch) if batch else 0)


def _post(url: str, lines: list[str]) -> int:
    response = httpx.post(f"{url}/write", params={"db": "sanitation", "precision": "ms"},
                          content="\n".join(lines).encode(), timeout=300)
    response.raise_for_status()
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=40, help="sites of the city (demo: 40)")
    parser.add_argument("--days", type=int, default=30, help="days of readings, from 2026-10-01")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sanitel-report-bench-") as tmp:
        root = Path(tmp)
        with Influxd(root / "influxd") as influxd:
            httpx.post(f"{influxd.url}/query", data={"q": 'CREATE DATABASE "sanitation"'})
            started = time.perf_counter()
            points = write_month(influxd.url, args.sites, args.days)
            wrote_s = time.perf_counter() - started
            (root / "city.yaml").write_text(yaml.safe_dump(registry(args.sites)))
            env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
            env |= {"SANITEL_INFLUX__URL": influxd.url, "SANITEL_REGISTRY": str(
                root / "city.yaml"), "SANITEL_TIMEZONE": "Asia/Shanghai"}
            end = (date.fromisoformat(START) + timedelta(days=args.days)).isoformat()
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sanitel.cli", "report", "--from", START, "--to", end,
                 "--out", str(root / "out"), "--quiet"], env=env, capture_output=True, text=True)
            report_s = time.perf_counter() - started
            if done.returncode:
                sys.exit(done.stderr)
    print(f"city: {args.sites} sites ({len(city(args.sites))} devices, districts "
          f"{len(DISTRICTS)}), {args.days} days, {points:,} raw points (written in "
          f"{wrote_s:.0f} s)")
    print(f"sanitel report --from {START} --to {end}: {report_s:.1f} s "
          f"({points / report_s:,.0f} raw points/s)")


if __name__ == "__main__":
    main()
