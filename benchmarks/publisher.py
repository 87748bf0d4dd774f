"""The live run's publisher, in its own process so that its paho network thread never waits
for the harness's GIL (in-process, PUBACKs fell seconds behind and made every send `ts`
early).

    python -m benchmarks.publisher --port P --sites S --seed N --messages M --count C --rate R

Builds the same city and readings as the harness (same sites, seed and size), then
publishes `count` of them (going round as often as needed) at `rate` per second, QoS 1.
stdout, JSON lines: `{"event": "start", "t"}`, then `{"sent": n, "good": [[device_id,
ts], ...]}` every 500 messages, and `{"event": "done", "sent", "good", "t", "acked_t"}`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from benchmarks.traffic import Encoder, Publisher, city_registry, city_traffic, cycle
from devices.sites import Registry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.publisher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sites", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True, help="size of the traffic")
    parser.add_argument("--count", type=int, required=True, help="messages to publish")
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registry = Registry.from_dict(city_registry(args.sites, args.seed))
    traffic = city_traffic(registry, args.messages, seed=args.seed)
    encoder = Encoder(record=True)
    pub = Publisher(args.host, args.port, "bench-live-publisher")
    reported = 0

    def say(**event: object) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    def progress(sent: int) -> None:
        nonlocal reported
        good = encoder.sent[reported:]
        reported += len(good)
        say(sent=sent, good=good)

    say(event="start", t=time.time())
    sent = pub.send(cycle(traffic.items, args.count), encoder, rate=args.rate, progress=progress,
                    stop=stop, deadline=time.monotonic() + args.max_seconds)
    done_t = time.time()
    pub.wait_acked(sent, 60)
    say(event="done", sent=sent, good=len(encoder.sent), t=done_t, acked_t=time.time())
    pub.close()


if __name__ == "__main__":
    main()
