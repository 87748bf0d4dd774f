"""`sanitel report` against the real pipeline (SPEC section 9): a simulated month of a small
city published through `sanitel ingest` into influxd, toilet terminal readings and alert
incidents with known times added; every figure of the report equals the one computed here,
independently, from the stored raw points, the published alert events and the SPEC."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from sanitel.local_servers import Influxd, Mosquitto
from tests.conftest import ROOT, SANITEL, MqttTestClient

from .report_city import (
    CITY,
    DISTRICT,
    FROM,
    INCIDENTS,
    INTERVAL_S,
    KNOWN,
    SIM_DEVICES,
    TO,
    TZ,
    alert_lines,
    toilet_readings,
    warning_levels,
)

START_MS = int(datetime.fromisoformat(f"{FROM}T00:00:00").replace(tzinfo=ZoneInfo(TZ))
               .timestamp() * 1000)
END_MS = int(datetime.fromisoformat(f"{TO}T00:00:00").replace(tzinfo=ZoneInfo(TZ))
             .timestamp() * 1000)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _raw(influxd: Influxd, db: str, measurement: str) -> list[dict[str, Any]]:
    rows = influxd.rows(f'SELECT * FROM "{measurement}" WHERE time >= {START_MS}ms AND '
                        f"time < {END_MS}ms", db)
    return sorted(rows, key=lambda r: r["time"])


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory, influxd: Influxd) -> dict[str, Any]:
    """A month of the city through the pipeline; the database and what was published."""
    tmp = tmp_path_factory.mktemp("report")
    with Mosquitto(tmp / "mosquitto") as broker:
        return _publish_month(tmp, broker, influxd)  # type: ignore[arg-type]


def _env(tmp: Path, broker: Mosquitto, influxd: Influxd, db: str) -> dict[str, str]:
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env |= {"SANITEL_MQTT__HOST": broker.host, "SANITEL_MQTT__PORT": str(broker.port),
            "SANITEL_INFLUX__URL": influxd.url, "SANITEL_INFLUX__DATABASE": db,
            "SANITEL_REGISTRY": str(tmp / "city.yaml"), "SANITEL_DATA_DIR": str(tmp / "data"),
            "SANITEL_TIMEZONE": TZ, "SANITEL_PIPELINE__STATS_INTERVAL_S": "1",
            "SANITEL_HTTP__PORT": "0"}
    return env


def _publish_month(tmp: Path, broker: Mosquitto, influxd: Influxd) -> dict[str, Any]:
    db = f"report_{int(time.time())}"
    (tmp / "city.yaml").write_text(yaml.safe_dump(CITY, sort_keys=False))
    sim_city = {"sites": [{**s, "devices": [d for d in s["devices"] if d["id"] in SIM_DEVICES]}
                          for s in CITY["sites"]]}
    (tmp / "sim-city.yaml").write_text(yaml.safe_dump(sim_city, sort_keys=False))
    env = _env(tmp, broker, influxd, db)
    events = MqttTestClient(broker.host, broker.port)
    events.subscribe("sanitation/v1/_alerts/#")
    log = (tmp / "ingest.log").open("w")
    ingest = subprocess.Popen([*SANITEL, "ingest"], env=env, stdout=log, stderr=log, cwd=ROOT)
    try:
        _wait_for(lambda: "sanitel ingest: started" in (tmp / "ingest.log").read_text(), 30)
        hours = (END_MS - START_MS) / 3_600_000 + 12
        count = int(len(SIM_DEVICES) * hours * 3600 / INTERVAL_S)
        sim = subprocess.run(
            [*SANITEL, "simulate", "--host", broker.host, "--port", str(broker.port),
             "--registry", str(tmp / "sim-city.yaml"), "--quiet", "--seed", "4",
             "--start", datetime.fromtimestamp(START_MS / 1000 - 6 * 3600, ZoneInfo(TZ))
             .isoformat(), "--speed", "1000000", "--count", str(count),
             "--connections", "gateway", "--utc-offset", "8",
             "--tally-file", str(tmp / "tally.json")],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert sim.returncode == 0, sim.stderr
        for reading in toilet_readings():
            events.publish(reading[0], reading[1])
        tally = json.loads((tmp / "tally.json").read_text())
        stored = sum(tally["stored_by_measurement"].values()) + len(toilet_readings())
        _wait_for(lambda: _stored(influxd, db) >= stored, 120)
        time.sleep(2)  # the last alert events
    finally:
        ingest.terminate()
        ingest.wait(60)
        log.close()
        events.close()
    body = "\n".join(alert_lines()).encode()
    httpx.post(f"{influxd.url}/write", params={"db": db, "precision": "ms"},
               content=body).raise_for_status()
    published = [json.loads(payload) for _, payload, _ in events.messages]
    return {"db": db, "env": env, "tmp": tmp, "events": published}


def _stored(influxd: Influxd, db: str) -> int:
    total = 0
    for measurement in ("people_flow", "odor", "station", "sprayer", "toilet"):
        rows = influxd.rows(f'SELECT count("seq") AS n FROM "{measurement}"', db)
        total += rows[0]["n"] if rows else 0
    return total


def _wait_for(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def _report(month: dict[str, Any], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SANITEL, "report", "--from", FROM, "--to", TO, "--out", str(out), *extra],
        env=month["env"], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _expected_people(influxd: Influxd, db: str) -> dict[str, int]:
    people: dict[str, int] = defaultdict(int)
    for row in _raw(influxd, db, "people_flow"):
        people[row["site_id"]] += row["entries"]
    return dict(people)


def _expected_odor(influxd: Influxd, db: str) -> dict[str, tuple[int, int, int]]:
    """Per site: hours whose mean NH3 / H2S was above the warning level (any, NH3, H2S)."""
    values: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for row in _raw(influxd, db, "odor"):
        values[(row["site_id"], row["time"] // 3_600_000)].append(
            (row["nh3_ppm"], row["h2s_ppm"]))
    hours: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (site, _), readings in values.items():
        nh3_level, h2s_level = warning_levels(site)
        nh3 = statistics.fmean(r[0] for r in readings) > nh3_level
        h2s = statistics.fmean(r[1] for r in readings) > h2s_level
        counts = hours[site]
        counts[0] += nh3 or h2s
        counts[1] += nh3
        counts[2] += h2s
    return {site: (c[0], c[1], c[2]) for site, c in hours.items()}


def _expected_alerts(events: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Per (district, rule): raised, acknowledged, resolved, median minutes to ack / resolve;
    from the events the pipeline published and the incidents written with known times."""
    ack: dict[tuple[str, str], list[float]] = defaultdict(list)
    fix: dict[tuple[str, str], list[float]] = defaultdict(list)
    raised: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        started = datetime.fromisoformat(event["started_at"]).timestamp() * 1000
        if not START_MS <= started < END_MS:
            continue
        key = (DISTRICT[event["site_id"]], event["rule"])
        raised[key].add(event["alert_id"])
        assert event["state"] != "acknowledged"  # nobody acknowledged the simulated ones
        if event["state"] == "resolved":
            resolved = datetime.fromisoformat(event["resolved_at"]).timestamp() * 1000
            if resolved < END_MS:
                fix[key].append((resolved - started) / 60_000)
    for alert_id, (ack_min, fix_min) in KNOWN.items():
        site, rule = next((i[1], i[3]) for i in INCIDENTS if i[0] == alert_id)
        key = (DISTRICT[site], rule)
        raised[key].add(alert_id)
        if ack_min is not None:
            ack[key].append(ack_min)
        if fix_min is not None:
            fix[key].append(fix_min)
    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 1) if values else None
    return {key: (len(ids), len(ack[key]), len(fix[key]), median(ack[key]), median(fix[key]))
            for key, ids in raised.items()}


def _expected_sequences(influxd: Influxd, db: str) -> tuple[dict[str, Any], dict[str, int]]:
    stations: dict[str, list[Any]] = {}
    weights: dict[str, float] = {}
    for row in _raw(influxd, db, "station"):
        entry = stations.setdefault(row["device_id"], [0.0, 0, 0.0])
        entry[0] = max(entry[0], row["fill_pct"])
        last = weights.get(row["device_id"])
        if last is not None and last - row["weight_kg"] >= 50:  # a collection (docs/report.md)
            entry[1] += 1
            entry[2] += last - row["weight_kg"]
        weights[row["device_id"]] = row["weight_kg"]
    refills: dict[str, int] = defaultdict(int)
    levels: dict[str, float] = {}
    for row in _raw(influxd, db, "sprayer"):
        last = levels.get(row["device_id"])
        if last is not None and row["liquid_pct"] - last >= 5:  # a refill (docs/report.md)
            refills[row["device_id"]] += 1
        levels[row["device_id"]] = row["liquid_pct"]
    return stations, dict(refills)


def _expected_availability(influxd: Influxd, db: str) -> dict[str, float]:
    counts: dict[str, int] = defaultdict(int)
    for measurement in ("people_flow", "odor", "station", "sprayer", "toilet"):
        for row in _raw(influxd, db, measurement):
            counts[row["device_id"]] += 1
    expected = (END_MS - START_MS) / 1000 / INTERVAL_S
    return {d["id"]: round(100 * min(1.0, counts[d["id"]] / expected), 1)
            for s in CITY["sites"] for d in s["devices"]}


def test_report_figures_equal_the_raw_readings(
    month: dict[str, Any], influxd: Influxd, tmp_path: Path
) -> None:
    db, out = month["db"], tmp_path / "out"
    done = _report(month, out)
    assert done.returncode == 0, done.stderr
    people = _expected_people(influxd, db)
    assert {r["site_id"]: int(r["people_served"]) for r in _csv(out / "people_by_toilet.csv")
            } == people
    by_district = {r["district"]: int(r["people_served"])
                   for r in _csv(out / "people_by_district.csv")}
    assert by_district == {"East": people["RA"] + people["RB"], "West": people["RC"]}
    odor = {r["site_id"]: (int(r["hours_above"]), int(r["nh3_hours"]), int(r["h2s_hours"]))
            for r in _csv(out / "odor_hours.csv")}
    expected_odor = _expected_odor(influxd, db)
    assert odor == expected_odor
    assert expected_odor["RA"][1] > 0, "the override (1.0 ppm) should give NH3 hours at RA"
    alerts = {(r["district"], r["rule"]): (
        int(r["raised"]), int(r["acknowledged"]), int(r["resolved"]),
        float(r["median_ack_min"]) if r["median_ack_min"] else None,
        float(r["median_resolve_min"]) if r["median_resolve_min"] else None)
        for r in _csv(out / "alerts_by_district_rule.csv")}
    assert alerts == _expected_alerts(month["events"])
    assert len(alerts) > 1, "the simulated month should raise alerts of its own"
    stations, refills = _expected_sequences(influxd, db)
    assert stations["RD-ST-1"][1] > 0 and refills, "a month has collections and refills"
    assert {r["device_id"]: (float(r["peak_fill_pct"]), int(r["collections"]),
                             float(r["tonnes_hauled"])) for r in _csv(out / "stations.csv")
            } == {k: (round(v[0], 1), v[1], round(v[2] / 1000, 2)) for k, v in stations.items()}
    assert {r["device_id"]: int(r["refills"]) for r in _csv(out / "sprayer_refills.csv")
            if int(r["refills"])} == refills
    availability = {r["device_id"]: float(r["availability_pct"])
                    for r in _csv(out / "device_availability.csv")}
    assert availability == _expected_availability(influxd, db)
    _check_toilets(out, people)
    _check_simulated_toilet(influxd, db, out, people)


def _check_toilets(out: Path, people: dict[str, int]) -> None:
    inside = [p for _, p in toilet_readings() if START_MS <= p["ts"] < END_MS]
    # The meters' increase from the last reading in the 24 h before the period (as the
    # hourly rollups count, SPEC section 9) to the last one in it.
    (before,) = [p for _, p in toilet_readings() if START_MS - 86_400_000 <= p["ts"] < START_MS]
    water = inside[-1]["water_m3"] - before["water_m3"]
    power = inside[-1]["power_kwh"] - before["power_kwh"]
    (row,) = [r for r in _csv(out / "toilet_terminals.csv") if r["site_id"] == "RA"]
    assert int(row["visitors"]) == people["RA"]
    assert int(row["cleanings"]) == sum(1 for p in inside if "cleaned_by" in p)
    assert float(row["water_m3"]) == round(water, 2)
    assert float(row["water_l_per_visitor"]) == round(water * 1000 / people["RA"], 2)
    assert float(row["power_wh_per_visitor"]) == round(power * 1000 / people["RA"], 1)
    assert int(row["rating_bad"]) == sum(p["rating_bad"] for p in inside)


def test_district_filter_keeps_only_its_sites(month: dict[str, Any], tmp_path: Path) -> None:
    whole, west = tmp_path / "whole", tmp_path / "west"
    assert _report(month, whole).returncode == 0
    done = _report(month, west, "--district", "West")
    assert done.returncode == 0, done.stderr
    west_sites = {s["id"] for s in CITY["sites"] if s["district"] == "West"}
    for name, key in (("people_by_toilet", "site_id"), ("odor_hours", "site_id"),
                      ("stations", "site_id"), ("sprayer_refills", "site_id"),
                      ("device_availability", "site_id")):
        rows = _csv(west / f"{name}.csv")
        assert rows, name
        assert {r[key] for r in rows} <= west_sites, name
        assert rows == [r for r in _csv(whole / f"{name}.csv") if r[key] in west_sites], name
    assert {r["district"] for r in _csv(west / "alerts_by_district_rule.csv")} == {"West"}
    assert _csv(west / "toilet_terminals.csv") == []  # RA's terminal is in the East
    assert "district West" in (west / "report.md").read_text()


def test_html_opens_and_every_chart_resolves(month: dict[str, Any], tmp_path: Path) -> None:
    import base64
    from html.parser import HTMLParser

    out = tmp_path / "out"
    assert _report(month, out).returncode == 0
    images: list[dict[str, str | None]] = []
    tables = []

    class Page(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                images.append(dict(attrs))
            elif tag == "table":
                tables.append(tag)

    Page().feed((out / "report.html").read_text(encoding="utf-8"))
    assert len(images) >= 4 and len(tables) >= 8
    for image in images:
        src, name = image["src"] or "", image["title"] or ""
        assert src.startswith("data:image/png;base64,"), src[:40]
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert (out / name).read_bytes() == png, name
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for line in markdown.splitlines():
        if line.startswith("!["):
            assert (out / line.split("(")[1].rstrip(")")).is_file(), line
    assert markdown.index("## Summary") < markdown.index("## People served per district")


@pytest.mark.parametrize(("args", "named"), [
    (["--from", "2026-10-32", "--to", TO], "--from '2026-10-32' is not a date"),
    (["--from", FROM, "--to", "1 Nov"], "--to '1 Nov' is not a date"),
    (["--from", TO, "--to", FROM], f"--to {FROM} must be after --from {TO}"),
    (["--from", FROM, "--to", TO, "--district", "North"], "--district 'North'"),
])
def test_cli_errors_name_the_bad_option(
    month: dict[str, Any], tmp_path: Path, args: list[str], named: str
) -> None:
    done = subprocess.run([*SANITEL, "report", *args, "--out", str(tmp_path / "o")],
                          env=month["env"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert named in done.stderr
    assert not (tmp_path / "o").exists()


def test_empty_database_gives_an_empty_report(month: dict[str, Any], influxd: Influxd,
                                              tmp_path: Path) -> None:
    """No reading yet (and no `toilet` measurement): every table says so, nothing crashes."""
    db = f"empty_{int(time.time())}"
    influxd.query(f'CREATE DATABASE "{db}"')
    env = {**month["env"], "SANITEL_INFLUX__DATABASE": db}
    done = subprocess.run([*SANITEL, "report", "--from", FROM, "--to", TO, "--out",
                           str(tmp_path / "o")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _csv(tmp_path / "o" / "toilet_terminals.csv") == []
    assert {float(r["availability_pct"]) for r in
            _csv(tmp_path / "o" / "device_availability.csv")} == {0.0}
    assert "No data in the period." in (tmp_path / "o" / "report.md").read_text()


def _check_simulated_toilet(influxd: Influxd, db: str, out: Path, people: dict[str, int]
                            ) -> None:
    inside = [r for r in _raw(influxd, db, "toilet") if r["site_id"] == "RB"]
    before = sorted(influxd.rows(
        f"SELECT water_m3, power_kwh FROM toilet WHERE site_id = 'RB' AND "
        f"time >= {START_MS - 86_400_000}ms AND time < {START_MS}ms", db),
        key=lambda r: r["time"])
    assert inside and before, "the simulated terminal reports before and in the period"
    (row,) = [r for r in _csv(out / "toilet_terminals.csv") if r["site_id"] == "RB"]
    water = inside[-1]["water_m3"] - before[-1]["water_m3"]
    assert water > 0 and int(row["cleanings"]) > 0, "a month of a toilet: water, cleanings"
    assert int(row["cleanings"]) == sum(1 for r in inside if r.get("cleaned_by"))
    assert float(row["water_m3"]) == round(water, 2)
    assert float(row["water_l_per_visitor"]) == round(water * 1000 / people["RB"], 2)
    assert int(row["rating_good"]) == sum(r.get("rating_good") or 0 for r in inside)
