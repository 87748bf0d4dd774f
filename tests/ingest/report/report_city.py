"""The report test's small city, its toilet terminal readings and alert incidents with
known times, and the warning levels as SPEC section 6 / config/alerts.yaml give them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

TZ = "Asia/Shanghai"
FROM, TO = "2026-10-01", "2026-11-01"
INTERVAL_S = 900
ROOT = Path(__file__).resolve().parents[3]
#: A site override: this toilet's NH3 warning level is 1.0 ppm instead of the rule's 2.0.
OVERRIDE_NH3 = 1.0


def _dev(device_id: str, device_type: str) -> dict[str, Any]:
    return {"id": device_id, "type": device_type, "interval_s": INTERVAL_S}


CITY: dict[str, Any] = {"sites": [
    {"id": "RA", "kind": "toilet", "name": "Riverside Park North", "district": "East",
     "lat": 30.6, "lon": 104.0,
     "alerts": {"odor_nh3_high": {"levels": {"warning": {"above": OVERRIDE_NH3,
                                                         "recover": 0.8}}}},
     "devices": [_dev("RA-PC-1", "people_counter"), _dev("RA-OD-1", "odor"),
                 _dev("RA-SP-1", "sprayer"), _dev("RA-TT-1", "toilet_terminal")]},
    {"id": "RB", "kind": "toilet", "name": "Market Square", "district": "East",
     "lat": 30.61, "lon": 104.01,
     "devices": [_dev("RB-PC-1", "people_counter"), _dev("RB-OD-1", "odor"),
                 _dev("RB-SP-1", "sprayer"), _dev("RB-TT-1", "toilet_terminal")]},
    {"id": "RC", "kind": "toilet", "name": "Old Street Lane", "district": "West",
     "lat": 30.62, "lon": 104.02,
     "devices": [_dev("RC-PC-1", "people_counter"), _dev("RC-OD-1", "odor")]},
    {"id": "RD", "kind": "transfer_station", "name": "Shahe Transfer Station",
     "district": "West", "lat": 30.63, "lon": 104.03,
     "devices": [_dev("RD-ST-1", "station_terminal"), _dev("RD-OD-1", "odor"),
                 _dev("RD-SP-1", "sprayer")]},
]}
#: RA's terminal publishes the readings below; every other device is simulated.
SIM_DEVICES = {d["id"] for s in CITY["sites"] for d in s["devices"] if d["id"] != "RA-TT-1"}
DISTRICT = {s["id"]: s["district"] for s in CITY["sites"]}


def at(text: str) -> int:
    """A local time in the city -> epoch ms."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ)).timestamp() * 1000)


def toilet_readings() -> list[tuple[str, dict[str, Any]]]:
    """A reading a day at 07:00 from Sep 29 to Nov 2: meters grow, a cleaning every 3rd day."""
    out = []
    for n in range(35):
        ts = at("2026-09-29T07:00:00") + n * 86_400_000
        payload: dict[str, Any] = {
            "ts": ts, "seq": n, "stalls_free": 3, "stalls_total": 6,
            "water_m3": round(1000 + 1.25 * n + 0.01 * n * n, 3), "power_kwh": 500 + 7.5 * n,
            "paper_pct": 80.0, "soap_pct": 70.0, "rating_good": n % 5, "rating_ok": 1,
            "rating_bad": n % 2}
        if n % 3 == 0:
            payload["cleaned_by"] = f"crew-{n % 4}"
        out.append(("sanitation/v1/RA/toilet_terminal/RA-TT-1/telemetry", payload))
    return out


#: Incidents written as the pipeline writes them (SPEC section 5 `alerts`), with known times:
#: (alert_id, site, device, rule, [(local time, severity, state), ...]).
INCIDENTS: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    ("k1", "RB", "RB-PC-1", "toilet_crowded", [
        ("2026-10-10T08:00:00", "warning", "firing"),
        ("2026-10-10T08:12:00", "warning", "acknowledged"),
        ("2026-10-10T09:00:00", "warning", "resolved")]),
    ("k2", "RB", "RB-PC-1", "toilet_crowded", [
        ("2026-10-11T10:00:00", "warning", "firing"),
        ("2026-10-11T10:30:00", "warning", "resolved"),   # escalation: two rows, one time
        ("2026-10-11T10:30:00", "critical", "firing"),
        ("2026-10-11T10:40:00", "critical", "acknowledged"),
        ("2026-10-11T12:00:00", "critical", "resolved")]),
    ("k3", "RC", "RC-PC-1", "toilet_crowded", [            # acknowledged after the period
        ("2026-10-31T23:00:00", "warning", "firing")]),
    ("k4", "RC", "RC-PC-1", "toilet_crowded", [            # raised before the period
        ("2026-09-30T22:00:00", "warning", "firing"),
        ("2026-10-01T01:00:00", "warning", "acknowledged"),
        ("2026-10-02T01:00:00", "warning", "resolved")]),
]
#: What SPEC section 9 makes of them: per alert id (raised, ack min, resolve min) in period.
KNOWN = {"k1": (12.0, 60.0), "k2": (40.0, 120.0), "k3": (None, None)}
LATE_ACK_K3 = "2026-11-01T00:30:00"


def alert_lines() -> list[str]:
    lines = []
    for alert_id, site, device, rule, changes in INCIDENTS:
        for when, severity, state in changes:
            lines.append(f"alerts,device_id={device},rule={rule},severity={severity},"
                         f'site_id={site} state="{state}",alert_id="{alert_id}",'
                         f'message="test" {at(when)}')
    lines.append(f"alerts,device_id=RC-PC-1,rule=toilet_crowded,severity=warning,site_id=RC "
                 f'state="acknowledged",alert_id="k3",message="late" {at(LATE_ACK_K3)}')
    return lines


def warning_levels(site_id: str) -> tuple[float, float]:
    """(NH3, H2S) warning levels of the site's odor sensor: the shipped rules' warning
    level for its kind of site, or the registry's override."""
    rules = yaml.safe_load((ROOT / "config" / "alerts.yaml").read_text())["rules"]
    site = next(s for s in CITY["sites"] if s["id"] == site_id)
    levels = []
    for rule_name in ("odor_nh3_high", "odor_h2s_high"):
        rule = rules[rule_name]
        spec = rule.get("site_kind", {}).get(site["kind"], rule)
        bound = spec["levels"]["warning"]["above"]
        override = site.get("alerts", {}).get(rule_name)
        if override:
            bound = override["levels"]["warning"]["above"]
        levels.append(float(bound))
    return levels[0], levels[1]
