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
    readings; per-district panels read daily figures beyond 90 days. For any range, one
    query of the panel answers and the others answer nothing."""
    variables = resolve_variables(influxd, city_db, BOARDS[stem], "all")
    panels = 0
    for panel in BOARDS[stem]["panels"]:
        targets = {t["refId"]: t["query"] for t in panel.get("targets", [])}
        if not any(LONG_RANGE_MARK in q for q in targets.values()):
            continue
        panels += 1
        assert '"rollup".' not in targets["A"] and '"rollup".' in targets["B"], panel["title"]
        daily = "C" in targets
        ranges = [(HOUR_MS, "A"), (7 * DAY_MS, "A"), (7 * DAY_MS + 60_000, "B"),
                  (30 * DAY_MS, "B")]
        ranges += [(90 * DAY_MS, "B"), (91 * DAY_MS, "C"), (365 * DAY_MS, "C")] if daily else [
            (365 * DAY_MS, "B")]
        for range_ms, answers in ranges:
            for ref, query in targets.items():
                series = run(influxd, city_db, fill_in(query, variables, range_ms))
                assert bool(series) == (ref == answers), (panel["title"], ref, range_ms)
    assert panels >= (2 if stem in ("city-overview", "transfer-stations", "public-toilets") else 0)
