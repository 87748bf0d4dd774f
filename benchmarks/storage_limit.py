"""The storage limit: Sanitel's own points for the backlog, written straight into InfluxDB.

    python -m benchmarks.storage_limit --influx URL --database DB --lines FILE [--in-flight 2]

The drain's reference for the other end of the pipe, as `mosquitto_sub` is for the
broker's: what InfluxDB takes for the very points `sanitel ingest` writes for this backlog
(SPEC section 5's tags and typed fields), with no MQTT, no parsing and no validation in
the window. `lines` builds them once, before the rounds, with the production code
(`Validator.check`, `reading_line`; duplicates written again, as the pipeline writes them);
this process posts them in bodies of `--batch` lines (Sanitel's `influx.batch_size`) with
`--in-flight` writes at a time (Sanitel's two), through the harness's relay, so it is
timed like every storing consumer: InfluxDB's answer to its first write to its last.

Prints JSON lines: `{"event": "connected", "t"}` just before the first request, `{"event":
"done", "t", "writes", "errors"}` after the last answer.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.contenders import say
from benchmarks.traffic import Encoder, Traffic
from devices.sites import Registry
from ingest.lineproto import reading_line
from ingest.rejects import Rejected
from ingest.settings import InfluxSettings
from ingest.store_stage import WRITES_IN_FLIGHT
from ingest.validation import Validator

#: As Sanitel writes: `influx.batch_size`'s default points a write, and the store's
#: writes in flight.
BATCH, IN_FLIGHT = InfluxSettings().batch_size, WRITES_IN_FLIGHT


def lines(traffic: Traffic, registry: Registry, start_ms: int) -> list[str]:
    """The lines `sanitel ingest` writes for the readings of `traffic`, sent from
    `start_ms` at 20 a millisecond (about the benchmark publisher's rate)."""
    validator, encoder, out = Validator(registry), Encoder(), []
    for i, item in enumerate(traffic.items):
        sent = start_ms + i // 20
        try:
            ok = validator.check(item.topic, encoder.encode(item, sent), sent)
        except Rejected:
            continue
        if ok.kind == "telemetry":
            out.append(reading_line(ok.device, ok.message, ok.ts_ms))  # type: ignore[arg-type]
    return out


def write_all(influx: str, database: str, bodies: list[bytes], in_flight: int) -> int:
    """Post every body, `in_flight` at a time; the number of writes InfluxDB refused."""
    import httpx

    with httpx.Client(base_url=influx, timeout=60,
                      limits=httpx.Limits(max_connections=in_flight)) as http:
        def post(body: bytes) -> bool:
            response = http.post("/write", content=body,
                                 params={"db": database, "precision": "ms"})
            return response.status_code == 204

        say(event="connected", t=time.time())
        with ThreadPoolExecutor(in_flight) as pool:
            return sum(not ok for ok in pool.map(post, bodies))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.storage_limit",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--influx", required=True, help="InfluxDB (the relay) URL")
    parser.add_argument("--database", required=True)
    parser.add_argument("--lines", type=Path, required=True,
                        help="line protocol, one point a line (`lines`)")
    parser.add_argument("--batch", type=int, default=BATCH, help="points a write")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="writes at a time")
    args = parser.parse_args(argv)
    points = args.lines.read_bytes().split(b"\n")
    bodies = [b"\n".join(points[i:i + args.batch]) for i in range(0, len(points), args.batch)]
    errors = write_all(args.influx, args.database, bodies, args.in_flight)
    say(event="done", t=time.time(), writes=len(bodies), errors=errors)


if __name__ == "__main__":
    main()
