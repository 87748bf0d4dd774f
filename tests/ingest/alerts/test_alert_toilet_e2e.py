"""A toilet terminal's alerts reach the crews through the real `sanitel ingest` (real
mosquitto, real influxd): paper, a night leak joining the terminal and the people
counter, and cleaning overdue by opening hours in the configured `timezone`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parents[3]
T = "sanitation/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
MINUTE = 60_000
SITE, PC, TT = "WC-7101", "WC-7101-PC-1", "WC-7101-TT-1"


def registry(directory: Path) -> Path:
    path = directory / "city.yaml"
    path.write_text(yaml.safe_dump({"sites": [{
        "id": SITE, "kind": "toilet", "name": "Yulin Lane", "district": "Wuhou",
        "lat": 30.64, "lon": 104.06, "open_hours": "06:00-23:00",
        "devices": [{"id": PC, "type": "people_counter", "interval_s": 60},
                    {"id": TT, "type": "toilet_terminal", "interval_s": 300}]}]}))
    return path


def yesterday(hh_mm: str) -> int:
    day = (datetime.now(SHANGHAI) - timedelta(days=1)).date()
    local = datetime.fromisoformat(f"{day}T{hh_mm}").replace(tzinfo=SHANGHAI)
    return int(local.timestamp() * 1000)


def test_terminal_alerts_reach_the_crews(run_ingest: Any, mqtt: Any, tmp_path: Path) -> None:
    run_ingest(registry=registry(tmp_path), alerts=ROOT / "config" / "alerts.yaml",
               timezone="Asia/Shanghai")
    mqtt.subscribe(f"{T}/_alerts/#")

    def terminal(ts: int, **fields: Any) -> None:
        mqtt.publish(f"{T}/{SITE}/toilet_terminal/{TT}/telemetry",
                     {"ts": ts, "stalls_free": 3, "stalls_total": 6, **fields})

    # A night (01:00-02:10 local): the water meter runs, the counter counts nobody.
    start, water = yesterday("01:00"), 812.5
    for minute in range(0, 71):
        ts = start + minute * MINUTE
        mqtt.publish(f"{T}/{SITE}/people_counter/{PC}/telemetry",
                     {"ts": ts, "entries": 0, "exits": 0, "occupancy": 0})
        if minute % 5 == 0:
            water += 0.003 if minute else 0.0
            terminal(ts, water_m3=round(water, 4), paper_pct=60.0)
    terminal(start + 75 * MINUTE, water_m3=round(water, 4), paper_pct=60.0)  # it stops
    # The morning: a check-in at 06:30, paper runs low, then nobody checks in until 10:35.
    terminal(yesterday("06:30"), water_m3=round(water, 4), paper_pct=100.0, cleaned_by="Li")
    terminal(yesterday("09:00"), water_m3=round(water, 4), paper_pct=12.0)
    terminal(yesterday("10:35"), water_m3=round(water, 4), paper_pct=12.0)
    terminal(yesterday("10:40"), water_m3=round(water, 4), paper_pct=100.0, cleaned_by="Wu")

    def events(msgs: list[tuple[str, bytes, bool]]) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in msgs]

    got = events(mqtt.wait_for(lambda msgs: len(msgs) >= 6, timeout=30))
    by_rule: dict[str, list[tuple[str, str]]] = {}
    for event in got:
        assert event["site_id"] == SITE and event["device_id"] == TT
        assert event["device_type"] == "toilet_terminal"
        by_rule.setdefault(event["rule"], []).append((event["state"], event["started_at"]))

    def utc(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")

    leak_at = utc(start + 60 * MINUTE)
    assert by_rule["toilet_water_leak"] == [("firing", leak_at), ("resolved", leak_at)]
    paper_at = utc(yesterday("09:00"))
    assert by_rule["toilet_paper_low"] == [("firing", paper_at), ("resolved", paper_at)]
    # 4 h of opening time after the 06:30 check-in, in Shanghai time: 10:30 local
    overdue_at = utc(yesterday("10:30"))
    assert by_rule["toilet_cleaning_overdue"] == [("firing", overdue_at),
                                                  ("resolved", overdue_at)]
    topics = {topic for topic, _, _ in mqtt.messages}
    assert f"{T}/_alerts/{SITE}/{TT}/toilet_water_leak" in topics
