"""Every panel query, with its template variables filled in as Grafana fills them, runs
against a real influxd holding a city's data, parses, and returns at least one series.

Two cities: the simulated one, through the whole data path (`sanitel simulate` ->
mosquitto -> `sanitel ingest` -> influxd), and `dash_city`, line protocol shaped like
the pipeline's points, whose rare events (escalated alerts, faults) are known exactly.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from dash_city import city_lines

import dashboards
from ingest.local_servers import Influxd

ROOT = Path(__file__).resolve().parents[2]
BOARDS = dashboards.dashboards(ROOT / "config" / "alerts.yaml")
#: What Grafana puts in for its macros over a "last hour" range at a 1-minute interval.
MACROS = {"$timeFilter": "time > now() - 1h", "$__interval": "1m"}
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|\[\]{}/])")


def regex_value(values: list[str]) -> str:
    """A multi-value variable as Grafana's InfluxDB datasource renders it in a regex."""
    escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def fill_in(query: str, variables: dict[str, str]) -> str:
    for macro, value in MACROS.items():
        query = query.replace(macro, value)
    for name in sorted(variables, key=len, reverse=True):
        query = query.replace(f"${name}", variables[name])
    return query


def run(influxd: Influxd, database: str, query: str) -> list[dict[str, Any]]:
    """The series of one InfluxQL statement; fails the test on an InfluxQL error."""
    (statement,) = influxd.query(query, database)["results"]
    assert "error" not in statement, f"{statement['error']}\nin: {query}"
    series: list[dict[str, Any]] = statement.get("series", [])
    return series


def resolve_variables(
    influxd: Influxd, database: str, board: dict[str, Any], pick: str
) -> dict[str, str]:
    """Each variable's options from its own query (earlier variables filled in), then
    "All" (every option) or the first option, rendered as Grafana would."""
    chosen: dict[str, str] = {}
    for variable in board["templating"]["list"]:
        series = run(influxd, database, fill_in(variable["query"], chosen))
        options = sorted({str(row[1]) for s in series for row in s["values"]})
        assert options, f"variable {variable['name']} of {board['title']} has no values"
        chosen[variable["name"]] = regex_value(options if pick == "all" else options[:1])
    return chosen


@pytest.fixture(scope="module")
def city_db(influxd: Influxd) -> str:
    database = f"dash_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{database}"')
    lines = city_lines(int(time.time() * 1000))
    response = httpx.post(f"{influxd.url}/write", params={"db": database, "precision": "ms"},
                          content="\n".join(lines).encode(), timeout=30)
    assert response.status_code == 204, response.text
    return database


def queries(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, target) of every query a dashboard sends: panel targets and annotations."""
    found = [(f"{panel['title']}:{target['refId']}", target)
             for panel in board["panels"] for target in panel.get("targets", [])]
    found += [(f"annotation {a['name']}", a) for a in board["annotations"]["list"] if "query" in a]
    return found


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
