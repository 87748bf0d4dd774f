"""The queries of the dashboards as Grafana sends them: variables resolved from their own
`SHOW TAG VALUES` queries and rendered in regex form, macros filled in, run on influxd."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import dashboards
from sanitel.local_servers import Influxd

ROOT = Path(__file__).resolve().parents[2]
BOARDS = dashboards.dashboards(ROOT / "config" / "alerts.yaml")
#: What Grafana puts in for its macros over a "last hour" range at a 1-minute interval.
MACROS = {"$timeFilter": "time > now() - 1h", "$__interval": "1m"}
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
#: A query that answers only for ranges beyond 7 days (it reads the hourly rollups).
LONG_RANGE_MARK = "${__to} - ${__from} >"
#: ... and only beyond 90 days (it reads the daily figures per district).
DAILY_RANGE_MARK = "${__to} - ${__from} > 7776000000"
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|\[\]{}/])")


def regex_value(values: list[str]) -> str:
    """A multi-value variable as Grafana's InfluxDB datasource renders it in a regex."""
    escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def fill_in(query: str, variables: dict[str, str], range_ms: int | None = None) -> str:
    """Macros as Grafana fills them over the last `range_ms`: by default an hour, or 30
    days for a query that reads the hourly rollups (they answer only beyond 7 days), a
    year for one that reads the daily figures (beyond 90 days)."""
    if range_ms is None and DAILY_RANGE_MARK in query:
        range_ms = 365 * DAY_MS
    elif range_ms is None:
        range_ms = 30 * DAY_MS if LONG_RANGE_MARK in query else HOUR_MS
    now = int(time.time() * 1000)
    macros = MACROS | {"${__from}": str(now - range_ms), "${__to}": str(now)}
    if range_ms != HOUR_MS:
        macros |= {"$timeFilter": f"time > now() - {range_ms}ms",
                   "$__interval": "1h" if range_ms > 7 * DAY_MS else "1m"}
    for macro, value in macros.items():
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


def queries(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, target) of every query a dashboard sends: panel targets and annotations."""
    found = [(f"{panel['title']}:{target['refId']}", target)
             for panel in board["panels"] for target in panel.get("targets", [])]
    found += [(f"annotation {a['name']}", a) for a in board["annotations"]["list"] if "query" in a]
    return found
