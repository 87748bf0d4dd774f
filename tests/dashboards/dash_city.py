"""A small synthetic city in line protocol, shaped exactly like the pipeline writes it.

Used to fill influxd when the simulator -> ingest path is not available; every
measurement of SPEC section 5 gets points, including the rarer events a dashboard
must show (alerts, rejects, an offline device, a compactor fault, a seq gap).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

MINUTE_MS = 60_000

SITES: list[dict[str, Any]] = [
    {"id": "WC-0001", "kind": "toilet", "name": "People's Park North", "district": "Jinjiang",
     "lat": 30.657, "lon": 104.066, "devices": ["PC", "OD", "SP", "TT"]},
    {"id": "WC-0002", "kind": "toilet", "name": "Chunxi Road", "district": "Jinjiang",
     "lat": 30.654, "lon": 104.081, "devices": ["PC", "OD", "SP", "TT"]},
    {"id": "WC-0003", "kind": "toilet", "name": "Wuhou Shrine", "district": "Wuhou",
     "lat": 30.646, "lon": 104.048, "devices": ["PC", "OD", "SP", "TT"]},
    {"id": "TS-0001", "kind": "transfer_station", "name": "Shahe Transfer Station",
     "district": "Chenghua", "lat": 30.68, "lon": 104.1, "devices": ["ST", "OD", "SP"]},
    {"id": "TS-0002", "kind": "transfer_station", "name": "Hongpailou Transfer Station",
     "district": "Wuhou", "lat": 30.62, "lon": 104.04, "devices": ["ST", "OD"]},
]
DEVICE_TYPES = {"PC": "people_counter", "OD": "odor", "ST": "station_terminal", "SP": "sprayer",
                "TT": "toilet_terminal"}
MEASUREMENTS = {"PC": "people_flow", "OD": "odor", "ST": "station", "SP": "sprayer",
                "TT": "toilet"}


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _field(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def line(measurement: str, tags: dict[str, str], fields: dict[str, object], ts_ms: int) -> str:
    tag_text = "".join(f",{k}={_tag(v)}" for k, v in sorted(tags.items()))
    field_text = ",".join(f"{k}={_field(v)}" for k, v in fields.items())
    return f"{measurement}{tag_text} {field_text} {ts_ms}"


def city_lines(now_ms: int, minutes: int = 90, seed: int = 7) -> list[str]:
    """Every point of `minutes` of city life ending at `now_ms`."""
    rng = random.Random(seed)
    start = now_ms - minutes * MINUTE_MS
    lines: list[str] = []
    for site in SITES:
        lines += _site_lines(site, start, minutes)
        for code in site["devices"]:
            lines += _device_lines(site, code, start, minutes, rng)
    lines += _alert_lines(now_ms)
    lines += _pipeline_lines(start, minutes, rng)
    return lines


def _site_lines(site: dict[str, Any], start: int, minutes: int) -> Iterator[str]:
    tags = {"site_id": site["id"], "district": site["district"], "site_kind": site["kind"]}
    fields = {"name": site["name"], "lat": site["lat"], "lon": site["lon"],
              "devices": len(site["devices"])}
    for minute in range(minutes):
        yield line("sites", tags, fields, start + minute * MINUTE_MS)


def device_id(site: dict[str, Any], code: str) -> str:
    return f"{site['id']}-{code}-1"


def _device_lines(
    site: dict[str, Any], code: str, start: int, minutes: int, rng: random.Random
) -> Iterator[str]:
    dev = device_id(site, code)
    tags = {"site_id": site["id"], "device_id": dev, "district": site["district"],
            "site_kind": site["kind"]}
    status_tags = {"site_id": site["id"], "device_id": dev, "device_type": DEVICE_TYPES[code]}
    yield line("device_status", status_tags, {"online": True}, start)
    seq = 0
    for minute in range(minutes):
        seq += 3 if (dev == "WC-0002-PC-1" and minute == 40) else 1  # a gap of two messages
        ts = start + minute * MINUTE_MS + rng.randrange(1000)
        fields: dict[str, object] = _reading(code, minute, rng)
        fields |= {"battery_pct": round(90.0 - minute * 0.1 - (40 if code == "SP" else 0), 1),
                   "rssi_dbm": float(-60 - rng.randrange(30)), "seq": seq}
        yield line(MEASUREMENTS[code], tags, fields, ts)
    if dev == "WC-0003-SP-1":
        offline_at = start + (minutes - 5) * MINUTE_MS
        yield line("device_status", status_tags, {"online": False}, offline_at)


def _reading(code: str, minute: int, rng: random.Random) -> dict[str, object]:
    wave = math.sin(minute / 10)
    if code == "PC":
        entries = max(0, int(6 + 5 * wave + rng.randrange(3)))
        return {"entries": entries, "exits": max(0, entries - 1), "occupancy": rng.randrange(6)}
    if code == "OD":
        return {"nh3_ppm": round(1.0 + wave + (3.0 if minute > 60 else 0.0), 2),
                "h2s_ppm": round(0.05 + 0.03 * wave, 3), "temp_c": 18.5, "rh_pct": 60.0}
    if code == "SP":
        return {"liquid_pct": round(80.0 - minute * 0.5, 1), "sprays": rng.randrange(4),
                "state": "ok" if minute < 70 else "low"}
    if code == "TT":  # reports every minute here; cleaned at minutes 10 and 70
        fields: dict[str, object] = {
            "stalls_free": max(0, 3 - rng.randrange(5)), "stalls_total": 6,
            "water_m3": round(1000.0 + minute * 0.05, 3), "power_kwh": 5000.0 + minute * 0.02,
            "paper_pct": round(90.0 - (minute % 60) * 1.2, 1), "soap_pct": 80.0,
            "rating_good": rng.randrange(3), "rating_ok": rng.randrange(2), "rating_bad": 0}
        if minute in (10, 70):
            fields["cleaned_by"] = "Li Mei"
        return fields
    compactor = "fault" if minute == 50 else ("running" if minute % 15 < 3 else "idle")
    return {"fill_pct": round((minute * 1.7) % 100, 1), "weight_kg": 800.0 + minute * 12,
            "compactor": compactor, "door_open": minute % 20 == 0,
            "fault_code": "E42-JAM" if compactor == "fault" else ""}


def _alert_lines(now_ms: int) -> list[str]:
    def alert(site: str, dev: str, rule: str, severity: str, state: str, ago_min: int,
              value: float, threshold: float) -> str:
        tags = {"site_id": site, "device_id": dev, "rule": rule, "severity": severity}
        fields: dict[str, object] = {"state": state, "value": value, "threshold": threshold}
        if rule == "offline":  # the engine's value for a last will: a bool, as text
            fields = {"state": state, "value_text": "false"}
        fields |= {"alert_id": f"{dev}:{rule}", "message": f"{rule} {value} vs {threshold}"}
        return line("alerts", tags, fields, now_ms - ago_min * MINUTE_MS)

    return [
        alert("WC-0002", "WC-0002-OD-1", "odor_nh3_high", "warning", "firing", 28, 3.4, 2.0),
        # escalated: the warning series is resolved, the critical one fires
        alert("WC-0002", "WC-0002-OD-1", "odor_nh3_high", "warning", "resolved", 20, 5.2, 2.0),
        alert("WC-0002", "WC-0002-OD-1", "odor_nh3_high", "critical", "firing", 20, 5.2, 5.0),
        alert("WC-0001", "WC-0001-OD-1", "odor_nh3_high", "warning", "acknowledged", 15, 3.0, 2.0),
        alert("TS-0001", "TS-0001-ST-1", "station_compactor_fault", "critical", "firing", 40,
              1.0, 1.0),
        alert("TS-0001", "TS-0001-ST-1", "station_compactor_fault", "critical", "resolved", 38,
              0.0, 1.0),
        alert("WC-0003", "WC-0003-SP-1", "offline", "warning", "firing", 5, 0.0, 0.0),
        alert("WC-0003", "WC-0003-SP-1", "sprayer_liquid_low", "info", "firing", 12, 19.0, 20.0),
        # a toilet full at WC-0001 (info), a leak at WC-0002 (critical, which it has already)
        alert("WC-0001", "WC-0001-TT-1", "toilet_full", "info", "firing", 8, 0.0, 0.0),
        alert("WC-0002", "WC-0002-TT-1", "toilet_water_leak", "critical", "firing", 30, 0.04,
              0.01),
        alert("WC-0003", "WC-0003-TT-1", "toilet_full", "info", "firing", 50, 0.0, 0.0),
        alert("WC-0003", "WC-0003-TT-1", "toilet_full", "info", "resolved", 45, 1.0, 0.0),
    ]


def _pipeline_lines(start: int, minutes: int, rng: random.Random) -> Iterator[str]:
    for tick in range(minutes * 6):
        ts = start + tick * 10_000
        received = 14 + rng.randrange(4)
        rejected = 1 if tick % 30 == 0 else 0
        yield line("pipeline", {"instance": "ingest-1"}, {
            "received": received, "stored": received - rejected, "rejected": rejected,
            "alerts": 1 if tick % 100 == 0 else 0, "interval_s": 10.0,
            "msgs_per_s": received / 10, "write_latency_ms_p50": 3.0 + rng.random(),
            "write_latency_ms_max": 9.0 + 5 * rng.random(), "queue_depth": rng.randrange(5),
            "inflight": rng.randrange(20), "spool_bytes": 0 if tick < 300 else 4096,
            "spool_batches": 0 if tick < 300 else 1, "paused": False,
        }, ts)
        if rejected:
            reason = ("schema_invalid", "out_of_range", "unknown_device")[tick % 3]
            yield line("rejects", {"reason": reason}, {"count": rejected}, ts)
