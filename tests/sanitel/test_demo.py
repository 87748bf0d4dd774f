"""`sanitel demo`: starts everything, data flows into InfluxDB within 30 s, SIGINT exits 0,
and a second run resumes the same city."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]


def demo(directory: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sanitel.cli", "demo", "--dir", str(directory), "--mqtt-port", "0",
         "--influx-port", "0", "--no-live", "--sites", "12", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )


def points(url: str) -> int:
    response = httpx.post(f"{url}/query", data={
        "db": "sanitation",
        "q": "SELECT count(nh3_ppm) FROM odor; SELECT count(entries) FROM people_flow",
    }, timeout=5)
    total = 0
    for result in response.json().get("results", []):
        for series in result.get("series", []):
            total += series["values"][0][1]
    return total


def test_demo_flows_within_30s_stops_on_sigint_and_resumes(tmp_path: Path) -> None:
    directory = tmp_path / "sanitel-demo"
    proc = demo(directory)
    try:
        deadline = time.monotonic() + 30
        stored = 0
        while time.monotonic() < deadline and stored == 0:
            time.sleep(0.5)
            config = directory / "sanitel.yaml"
            if config.exists():
                url = yaml.safe_load(config.read_text())["influx"]["url"]
                try:
                    stored = points(url)
                except httpx.HTTPError:
                    stored = 0
        assert stored > 0, "no reading reached InfluxDB within 30 s"
        port = yaml.safe_load((directory / "sanitel.yaml").read_text())["http"]["port"]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        received = next(line for line in metrics.splitlines()
                        if line.startswith("sanitel_messages_received_total "))
        assert float(received.split()[1]) > 0
        # SPEC 9: retention policies, and the replayed (late) readings in the rollups.
        policies = httpx.post(f"{url}/query", data={
            "q": 'SHOW RETENTION POLICIES ON "sanitation"'}).json()["results"][0]["series"][0]
        defaults = {row[0]: row[-1] for row in policies["values"]}
        assert defaults["raw"] is True and defaults["rollup"] is False
        rolled, deadline = 0, time.monotonic() + 40
        while not rolled and time.monotonic() < deadline:
            time.sleep(1)
            series = httpx.post(f"{url}/query", data={
                "db": "sanitation",
                "q": 'SELECT count(entries_sum) FROM "rollup"."people_flow_1h"',
            }).json()["results"][0].get("series", [])
            rolled = series[0]["values"][0][1] if series else 0
        assert rolled > 0, "no hourly rollup within 40 s"
        # The demo's city has toilet terminals (v1.1), and their readings land.
        city = yaml.safe_load((directory / "registry.yaml").read_text())
        assert any(d["type"] == "toilet_terminal" for site in city["sites"]
                   for d in site["devices"])
        series = httpx.post(f"{url}/query", data={
            "db": "sanitation", "q": "SELECT count(stalls_free) FROM toilet"}).json()
        assert series["results"][0]["series"][0]["values"][0][1] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    assert "generated a city of 12 sites" in output and "stopped; data kept" in output
    assert f"Prometheus metrics http://127.0.0.1:{port}/metrics" in " ".join(output.split())
    assert (directory / "grafana").is_dir()
    assert "sanitel ingest: stopped" in (directory / "ingest.log").read_text()

    again = demo(directory, "--duration", "3")
    output, _ = again.communicate(timeout=90)
    assert again.returncode == 0, output
    assert "resuming the city" in output
    assert "session present: True" in (directory / "ingest.log").read_text()
