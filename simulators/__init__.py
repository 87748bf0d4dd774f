"""The simulated city: devices that behave like the hardware and publish MQTT like it.

Pure parts (the city generator, the per-type behaviours, fault injection, the tally)
take plain values and return plain values; `publisher` and `runner` are the I/O edge.

    from simulators import Simulator, generate_city
    sim = Simulator(Registry.from_dict(generate_city(sites=20, seed=1)), seed=1, start_ms=...)
    for message in sim.take(100): ...
"""

from simulators.city import generate_city, write_registry
from simulators.engine import Message, Simulator
from simulators.faults import FaultKind, FaultRates
from simulators.tally import Tally

__all__ = [
    "FaultKind",
    "FaultRates",
    "Message",
    "Simulator",
    "Tally",
    "generate_city",
    "write_registry",
]
