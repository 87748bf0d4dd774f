"""Line protocol of a simulated city, fast: raw readings shaped like the simulators'
(visitors by time of day, odor following them, stations filling and being emptied) and
hourly rollup points of the same shapes, for the storage benchmark.

Sites are toilets (people counter and odor every 60 s, sprayer and toilet terminal
every 300 s) and, one in five, transfer stations (station terminal and odor every 60 s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from random import Random

HOUR_MS = 3_600_000
DISTRICTS = ("Jinjiang", "Qingyang", "Jinniu", "Wuhou", "Chenghua", "Gaoxin")
TOILET_DEVICES = (("PC", "people_flow", 60), ("OD", "odor", 60), ("SP", "sprayer", 300),
                  ("TT", "toilet", 300))
STATION_DEVICES = (("ST", "station", 60), ("OD", "odor", 60))


@dataclass(frozen=True)
class BenchDevice:
    tags: str
    measurement: str
    interval_s: int
    index: int


def city(sites: int) -> list[BenchDevice]:
    devices: list[BenchDevice] = []
    for number in range(sites):
        station = number % 5 == 4
        site = f"{'TS' if station else 'WC'}-{number:04d}"
        kind = "transfer_station" if station else "toilet"
        district = DISTRICTS[number % len(DISTRICTS)]
        for code, measurement, interval in STATION_DEVICES if station else TOILET_DEVICES:
            tags = (f"device_id={site}-{code}-1,district={district},site_id={site},"
                    f"site_kind={kind}")
            devices.append(BenchDevice(tags, measurement, interval, len(devices)))
    return devices


def visitors(hour_of_day: float) -> float:
    """People per minute at a toilet by local hour: morning, lunch and evening peaks."""
    peaks = (8.5, 1.0), (12.5, 1.3), (18.5, 1.1)
    rate = sum(height * math.exp(-((hour_of_day - at) ** 2) / 3) for at, height in peaks)
    return 0.1 + 2.5 * rate


def _fields(device: BenchDevice, t_ms: int, rng: Random, state: dict[str, float]) -> str:
    hour = (t_ms / HOUR_MS + 8) % 24  # the city is UTC+8
    flow = visitors(hour) * device.interval_s / 60
    m = device.measurement
    if m == "people_flow":
        entries = int(rng.expovariate(1 / flow)) if flow > 0 else 0
        return f"entries={entries}i,exits={max(0, entries - rng.randint(0, 2))}i," \
               f"occupancy={rng.randint(0, 12)}i,battery_pct=88.0,seq={int(t_ms // 60000)}i"
    if m == "odor":
        nh3 = 0.3 + 0.4 * flow / 3 + rng.random() * 0.2
        return f"nh3_ppm={nh3:.3f},h2s_ppm={nh3 / 20:.4f},temp_c=21.5,rh_pct=55.0," \
               f"seq={int(t_ms // 60000)}i"
    if m == "sprayer":
        state["liquid"] = state.get("liquid", 100.0) - 0.05
        if state["liquid"] < 5:
            state["liquid"] = 100.0
        return f"liquid_pct={state['liquid']:.2f},sprays={rng.randint(0, 6)}i,state=\"ok\"," \
               f"seq={int(t_ms // 300000)}i"
    if m == "station":
        state["fill"] = state.get("fill", 10.0) + rng.random() * 0.1
        if state["fill"] > 95:
            state["fill"] = 5.0
        return f"fill_pct={state['fill']:.2f},weight_kg={state['fill'] * 120:.1f}," \
               f"compactor=\"idle\",door_open=false,seq={int(t_ms // 60000)}i"
    state["water"] = state.get("water", 1000.0) + flow * 0.006
    state["power"] = state.get("power", 5000.0) + 0.2
    cleaned = ',cleaned_by="attendant-07"' if rng.random() < 0.04 else ""
    return f"stalls_free={rng.randint(0, 6)}i,stalls_total=6i,water_m3={state['water']:.3f}," \
           f"power_kwh={state['power']:.2f},paper_pct=70.0,soap_pct=80.0{cleaned}," \
           f"rating_good={rng.randint(0, 5)}i,seq={int(t_ms // 300000)}i"


def raw_lines(devices: list[BenchDevice], start_ms: int, end_ms: int,
              seed: int = 1) -> Iterator[list[str]]:
    """Readings of every device in [start, end), an hour of the city per list."""
    rng = Random(seed)
    states: list[dict[str, float]] = [{} for _ in devices]
    for hour in range(start_ms, end_ms, HOUR_MS):
        lines = []
        for device in devices:
            step = device.interval_s * 1000
            phase = (device.index * 7919) % step
            state = states[device.index]
            for t in range(hour + phase, min(hour + HOUR_MS, end_ms), step):
                lines.append(f"{device.measurement},{device.tags} "
                             f"{_fields(device, t, rng, state)} {t}")
        yield lines


def rollup_lines(devices: list[BenchDevice], start_ms: int, end_ms: int,
                 seed: int = 2) -> Iterator[list[str]]:
    """Hourly rollup points of SPEC section 9 with the same shapes, a day per list."""
    rng = Random(seed)
    day = 24 * HOUR_MS
    for first in range(start_ms, end_ms, day):
        lines = []
        for hour in range(first, min(first + day, end_ms), HOUR_MS):
            flow = visitors((hour / HOUR_MS + 8) % 24) * 60
            for device in devices:
                lines.append(f"{device.measurement}_1h,{device.tags} "
                             f"{_rollup_fields(device.measurement, flow, rng)} {hour}")
        yield lines


def _rollup_fields(measurement: str, flow: float, rng: Random) -> str:
    if measurement == "people_flow":
        entries = int(flow * (0.8 + rng.random() * 0.4))
        return (f"entries_sum={entries}i,exits_sum={entries - 3}i,"
                f"occupancy_max={rng.randint(3, 12)}i")
    if measurement == "odor":
        nh3 = 0.3 + flow / 450 + rng.random() * 0.2
        return (f"nh3_ppm_mean={nh3:.3f},nh3_ppm_max={nh3 * 1.4:.3f},"
                f"h2s_ppm_mean={nh3 / 20:.4f},h2s_ppm_max={nh3 / 14:.4f}")
    if measurement == "station":
        fill = rng.uniform(5, 95)
        return f"fill_pct_max={fill:.2f},weight_kg_max={fill * 120:.1f}"
    if measurement == "sprayer":
        return f"sprays_sum={rng.randint(0, 60)}i,liquid_pct_min={rng.uniform(5, 100):.2f}"
    return (f"stalls_free_min={rng.randint(0, 3)}i,water_m3_used={flow * 0.006:.3f},"
            f"power_kwh_used=2.4,rating_good_sum={rng.randint(0, 40)}i,"
            f"rating_ok_sum={rng.randint(0, 9)}i,rating_bad_sum={rng.randint(0, 4)}i,"
            f"cleanings={rng.randint(0, 1)}i")
