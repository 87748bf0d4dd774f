"""Every panel query, with its template variables filled in as Grafana fills them, runs
against a real influxd holding a city's data, parses, and returns at least one series.

Here the city is `dash_city`: line protocol shaped like the pipeline's points, whose
rare events (escalated alerts, faults) are known exactly, one test per query. The
simulated city through the whole data path is in `test_dash_city_e2e`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
from dash_city import city_lines
from dash_queries import (
    BOARDS,
    DAY_MS,
    HOUR_MS,
    LONG_RANGE_MARK,
    fill_in,
    queries,
    resolve_variables,
    run,
)

from sanitel.local_servers import Influxd


@pytest.fixture(scope="module")
def city_db(influxd: Influxd) -> str:
    database = f"dash_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{database}"')
    lines = city_lines(int(time.time() * 1000))
    response = httpx.post(f"{influxd.url}/write", params={"db": database, "precision": "ms"},
                          content="\n".join(lines).encode(), timeout=30)
    assert response.status_code == 204, response.text
    influxd.query(f'CREATE RETENTION POLICY "rollup" ON "{database}" DURATION 1825d '
                  "REPLICATION 1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env |= {"SANITEL_INFLUX__URL": influxd.url, "SANITEL_INFLUX__DATABASE": database}
    done = subprocess.run([sys.executable, "-m", "sanitel.cli", "influx", "rollup",
                           "--hours", "3"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return database


PANEL_TARGETS = [
    pytest.param(stem, where, target, id=f"{stem}:{where}")
    for stem, board in BOARDS.items()
    for where, target in queries(board)
]


@pytest.mark.parametrize(("stem", "title", "target"), PANEL_TARGETS)
def test_panel_query_returns_data(
    influxd: Influxd, city_db: str, stem: str, title: str, target: dict[str, Any]
) -> None:
    variables = resolve_variables(influxd, city_db, BOARDS[stem], "all")
    query = fill_in(target["query"], variables)
    assert "$" not in query.replace("$/", "/"), query
    series = run(influxd, city_db, query)
    assert series, f"{stem} / {title!r}: no series for\n{query}"
    assert any(s["values"] for s in series)


@pytest.mark.parametrize("stem", list(BOARDS))
def test_queries_parse_with_one_site_chosen(influxd: Influxd, city_db: str, stem: str) -> None:
    variables = resolve_variables(influxd, city_db, BOARDS[stem], "first")
    answered = 0
    for _, target in queries(BOARDS[stem]):
        run(influxd, city_db, fill_in(target["query"], variables))
        answered += 1
    assert answered >= 5


def test_worst_alert_colours_the_sites(influxd: Influxd, city_db: str) -> None:
    (geomap,) = [p for p in BOARDS["city-overview"]["panels"] if p["type"] == "geomap"]
    variables = resolve_variables(influxd, city_db, BOARDS["city-overview"], "all")
    (levels,) = [t for t in geomap["targets"] if t["refId"] == "B"]
    series = run(influxd, city_db, fill_in(levels["query"], variables))
    worst = {s["tags"]["site_id"]: s["values"][0][1] for s in series}
    # dash_city: WC-0002 escalated to critical (its warning resolved), WC-0001 has an
    # acknowledged warning, WC-0003 a warning and an info, TS-0001's fault resolved.
    assert worst == {"WC-0001": 2, "WC-0002": 3, "WC-0003": 2}


@pytest.mark.parametrize("stem", list(BOARDS))
def test_raw_up_to_7_days_rollups_beyond(influxd: Influxd, city_db: str, stem: str) -> None:
    """SPEC 9: a panel reads the rollups when its range is longer than 7 days, else the raw
    readings; the other query of the pair answers nothing."""
    variables = resolve_variables(influxd, city_db, BOARDS[stem], "all")
    pairs = 0
    for panel in BOARDS[stem]["panels"]:
        targets = {t["refId"]: t["query"] for t in panel.get("targets", [])}
        if not any(LONG_RANGE_MARK in q for q in targets.values()):
            continue
        pairs += 1
        raw, rollup = targets["A"], targets["B"]
        assert '"rollup".' in rollup and '"rollup".' not in raw, panel["title"]
        for range_ms, answers, silent in ((HOUR_MS, raw, rollup), (7 * DAY_MS, raw, rollup),
                                          (7 * DAY_MS + 60_000, rollup, raw),
                                          (30 * DAY_MS, rollup, raw)):
            assert run(influxd, city_db, fill_in(answers, variables, range_ms)), panel["title"]
            assert not run(influxd, city_db, fill_in(silent, variables, range_ms)), panel["title"]
    assert pairs >= (2 if stem in ("city-overview", "transfer-stations", "public-toilets") else 0)


def test_the_map_marks_a_toilet_full_or_leaking(influxd: Influxd, city_db: str) -> None:
    (geomap,) = [p for p in BOARDS["city-overview"]["panels"] if p["type"] == "geomap"]
    variables = resolve_variables(influxd, city_db, BOARDS["city-overview"], "all")
    (issues,) = [t for t in geomap["targets"] if t["refId"] == "C"]
    series = run(influxd, city_db, fill_in(issues["query"], variables))
    marked = {s["tags"]["site_id"]: s["values"][0][1] for s in series}
    # dash_city: WC-0001 full (firing), WC-0002 leaking; WC-0003 was full, resolved since
    assert marked == {"WC-0001": 1, "WC-0002": 2}


def test_free_stalls_now_are_each_toilets_last_report(influxd: Influxd, city_db: str) -> None:
    board = BOARDS["public-toilets"]
    (table,) = [p for p in board["panels"] if p["title"] == "Free and clean now"]
    variables = resolve_variables(influxd, city_db, board, "all")
    (stalls,) = [t for t in table["targets"] if "stalls_free" in t["query"]]
    series = run(influxd, city_db, fill_in(stalls["query"], variables))
    got = {s["tags"]["site_id"]: dict(zip(s["columns"], s["values"][0], strict=True))
           for s in series}
    expected = {}
    for site in ("WC-0001", "WC-0002", "WC-0003"):
        (last,) = influxd.rows(f"SELECT last(stalls_free) AS free FROM toilet "
                               f"WHERE site_id = '{site}' AND time > now() - 1h", city_db)
        expected[site] = last["free"]
    assert {site: row["free"] for site, row in got.items()} == expected
    assert all(row["stalls"] == 6 and 0 <= row["free"] <= 6 for row in got.values())
