"""A simulated city against a real broker: the publisher and the run loop joined.

What `sanitel simulate` runs, and what the demo and benchmarks call:

    sim = Simulator(registry, seed=1, start_ms=wall_ms(), wall_clock=wall_ms)
    tally = await run_city(sim, BrokerOptions("127.0.0.1", 1883), stop=stop_event)

`sim.tally` can be read while it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from simulators.clock import SimClock
from simulators.engine import Simulator
from simulators.publisher import BrokerOptions, ConnectionMode, MqttPublisher
from simulators.runner import RunStats, run
from simulators.tally import Tally


async def run_city(
    sim: Simulator,
    broker: BrokerOptions,
    *,
    speed: float = 1.0,
    duration_s: float | None = None,
    readings: int | None = None,
    once: bool = False,
    rate: float | None = None,
    connections: ConnectionMode = "auto",
    gateways: int = 4,
    stop: asyncio.Event | None = None,
    on_connected: Callable[[MqttPublisher], None] | None = None,
    on_progress: Callable[[RunStats], None] | None = None,
) -> Tally:
    """Connect, run (see `simulators.runner.run` for when it ends), announce every device
    offline on a clean stop, wait for the broker's acknowledgements, disconnect.

    Raises `PublisherError` when the broker cannot be reached or refuses us.
    """
    devices = [d.device for d in sim.devices]
    clock = SimClock(sim.start_ms, speed)
    async with MqttPublisher(broker, devices, mode=connections, gateways=gateways) as publisher:
        if on_connected:
            on_connected(publisher)
        return await run(
            sim, publisher, clock, duration_s=duration_s, readings=readings, once=once,
            rate=rate, stop=stop, on_progress=on_progress,
        )  # fmt: skip
