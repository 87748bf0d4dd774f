"""What running as a service costs (SPEC section 10), on a real `sanitel ingest` with a
large city: the time of a `/metrics` scrape, of a reload of the registry and rules, and
how long the event loop stalls meanwhile (the worst `/healthz` answer time while the
reload runs, polled every 5 ms). The loop only swaps the new configuration in; the
registry is parsed in a child process and checked in a thread (pydantic's validator
holds the GIL for one call, the rest of the stall). Figures vary with the machine's
load: run it on a quiet one.

    .venv/bin/python -m benchmarks.service_overhead [--sites 1200] [--scrapes 50]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from sanitel.local_servers import Influxd, Mosquitto
from simulators import generate_city, write_registry

ROOT = Path(__file__).resolve().parent.parent


def _start_ingest(tmp: Path, broker: Mosquitto, influx: Influxd, registry: Path
                  ) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env.update({"SANITEL_MQTT__PORT": str(broker.port), "SANITEL_INFLUX__URL": influx.url,
                "SANITEL_REGISTRY": str(registry), "SANITEL_DATA_DIR": str(tmp / "data"),
                "SANITEL_HTTP__PORT": "0", "SANITEL_MQTT__CLIENT_ID": "bench-service"})
    log = tmp / "ingest.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sanitel.cli", "ingest"], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log.read_text()
        port = re.search(r"serving http://[\d.]+:(\d+)", text)
        if port and "sanitel ingest: started" in text:
            return proc, int(port.group(1))
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"ingest did not start; see {log}")


def _stalls(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(f"{url}/healthz")
            out.append(time.perf_counter() - started)
            time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1200)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        city = generate_city(args.sites)
        registry = write_registry(city, tmp / "registry.yaml")
        devices = sum(len(site["devices"]) for site in city["sites"])
        broker, influx = Mosquitto(tmp / "mosquitto"), Influxd(tmp / "influxd")
        with broker, influx:
            proc, port = _start_ingest(tmp, broker, influx, registry)
            url = f"http://127.0.0.1:{port}"
            try:
                scrape_ms = []
                with httpx.Client(timeout=30) as client:
                    for _ in range(args.scrapes):
                        started = time.perf_counter()
                        body = client.get(f"{url}/metrics").content
                        scrape_ms.append((time.perf_counter() - started) * 1000)
                print(f"SERVICE /metrics: {len(body)} bytes, p50 "
                      f"{statistics.median(scrape_ms):.1f} ms, max {max(scrape_ms):.1f} ms over "
                      f"{args.scrapes} scrapes")
                city["sites"][0]["devices"].append({"id": "BENCH-NEW-1", "type": "odor"})
                write_registry(city, registry)
                answers: list[float] = []
                stop = threading.Event()
                poller = threading.Thread(target=_stalls, args=(url, stop, answers))
                poller.start()
                time.sleep(0.5)
                baseline = max(answers) * 1000
                started = time.perf_counter()
                outcome = httpx.post(f"{url}/-/reload", timeout=120).json()
                reload_s = time.perf_counter() - started
                time.sleep(0.5)
                stop.set()
                poller.join()
                print(f"SERVICE reload of {devices + 1} devices: {reload_s * 1000:.0f} ms "
                      f"({outcome['summary']}); worst /healthz answer meanwhile "
                      f"{max(answers) * 1000:.0f} ms (before: {baseline:.0f} ms)")
            finally:
                proc.terminate()
                proc.wait(60)


if __name__ == "__main__":
    main()
