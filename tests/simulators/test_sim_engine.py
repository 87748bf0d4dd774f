"""The simulator as a message stream: determinism, valid payloads, topics, schedule."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.registry import DEVICE_TYPES
from devices.sites import Registry
from simulators.city import generate_city
from simulators.engine import ONLINE, STATUS, Simulator

from .conftest import START_MS, classify


def _stream(registry: Registry, seed: int, count: int = 3_000) -> list[tuple[str, bytes]]:
    sim = Simulator(registry, seed=seed, start_ms=START_MS)
    return [(m.topic, m.payload) for m in sim.take(count)]


def test_same_seed_same_messages_byte_for_byte(city: Registry) -> None:
    assert _stream(city, 5) == _stream(city, 5)


def test_other_seed_other_messages(city: Registry) -> None:
    first, second = _stream(city, 5), _stream(city, 6)
    assert [p for _, p in first] != [p for _, p in second]


def test_same_seed_same_messages_with_faults(city: Registry) -> None:
    from simulators.faults import FaultRates

    def stream() -> list[bytes]:
        sim = Simulator(city, seed=3, start_ms=START_MS, faults=FaultRates.parse([], 0.3))
        return [m.topic.encode() + m.payload for m in sim.take(2_000)]

    assert stream() == stream()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    sites=st.integers(1, 12),
    start_ms=st.integers(START_MS - 400 * 86_400_000, START_MS + 400 * 86_400_000),
    utc_offset=st.sampled_from([-5.0, 0.0, 5.5, 8.0, 12.0]),
)
def test_every_generated_payload_validates(
    seed: int, sites: int, start_ms: int, utc_offset: float
) -> None:
    registry = Registry.from_dict(generate_city(sites, seed=seed))
    sim = Simulator(registry, seed=seed, start_ms=start_ms, utc_offset_h=utc_offset)
    for message in sim.take(len(registry) * 30):
        device = registry.devices[message.device_id]
        reading = DEVICE_TYPES[device.type].model_validate_json(message.payload)
        assert reading.device_id == device.id
        assert message.topic == (
            f"sanitation/v1/{device.site.id}/{device.type}/{device.id}/telemetry"
        )
        now_ms = reading.ts_ms(0)  # received as it was sent
        assert classify(message.topic, message.payload, registry, now_ms) == "stored"
        assert message.expect == "stored"


def test_first_reading_of_ten_thousand_devices_validates() -> None:
    registry = Registry.from_dict(generate_city(3_600, seed=1))
    assert len(registry) >= 10_000
    sim = Simulator(registry, seed=1, start_ms=START_MS, phased=False)
    messages = sim.take(len(registry))
    assert Counter(m.device_id for m in messages) == dict.fromkeys(registry.devices, 1)
    for m in messages:
        DEVICE_TYPES[m.device_type].model_validate_json(m.payload)
        assert orjson.loads(m.payload)["ts"] == START_MS
    assert sim.tally.stored == len(registry)


def test_devices_report_on_their_interval_with_rising_seq(city: Registry) -> None:
    sim = Simulator(city, seed=2, start_ms=START_MS)
    seen: dict[str, list[tuple[int, int]]] = {}
    for m in sim.take(len(city) * 20):
        payload = orjson.loads(m.payload)
        seen.setdefault(m.device_id, []).append((payload["ts"], payload["seq"]))
    for device_id, points in seen.items():
        interval_ms = int(city.devices[device_id].interval_s * 1000)
        assert all(b[0] - a[0] == interval_ms for a, b in itertools.pairwise(points))
        assert [seq for _, seq in points] == list(range(len(points)))
        assert START_MS <= points[0][0] < START_MS + interval_ms


def test_due_gives_only_readings_up_to_the_clock(city: Registry) -> None:
    sim = Simulator(city, seed=2, start_ms=START_MS)
    messages = sim.due(START_MS + 30_000)
    assert messages
    assert all(orjson.loads(m.payload)["ts"] <= START_MS + 30_000 for m in messages)
    next_due = sim.next_due_ms()
    assert next_due is not None and next_due > START_MS + 30_000


def test_status_messages_are_retained_and_tallied(city: Registry) -> None:
    sim = Simulator(city, seed=2, start_ms=START_MS)
    online = sim.status(online=True)
    offline = sim.status(online=False)
    assert len(online) == len(offline) == len(city)
    assert all(m.retain and m.expect == STATUS and m.payload == ONLINE for m in online)
    assert {orjson.loads(m.payload)["online"] for m in offline} == {False}
    assert online[0].topic.endswith(f"/{online[0].device_id}/status")
    assert (sim.tally.status_online, sim.tally.status_offline) == (len(city), len(city))


def test_tally_counts_good_readings_per_type_and_measurement(city: Registry) -> None:
    sim = Simulator(city, seed=2, start_ms=START_MS)
    messages = sim.take(1_000)
    by_type = Counter(m.device_type for m in messages)
    assert dict(sim.tally.readings) == dict(by_type)
    assert sim.tally.messages == len(messages) == sim.tally.stored
    by_measurement = sim.tally.stored_by_measurement()
    assert by_measurement["people_flow"] == by_type["people_counter"]
    assert by_measurement["station"] == by_type["station_terminal"]
    assert orjson.loads(sim.tally.to_json())["stored"] == 1_000
