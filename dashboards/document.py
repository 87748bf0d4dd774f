"""A Sanitel dashboard as a document: the common skeleton, and its JSON for Grafana.

`render` turns a built dashboard into the JSON Grafana stores, deterministic
(same input, same bytes) so the exported files can be committed and compared.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, QueryVariable, Row, TimePicker
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync

from dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID

#: Alert incidents opening, for annotations (tags are columns in table results).
ALERTS_FIRED = (
    'SELECT "message", "rule", "severity", "site_id", "device_id" FROM "alerts" '
    "WHERE \"state\" = 'firing' AND $timeFilter"
)
#: Grafana 11's dashboard schema; the SDK's panels already use its shape (no legacy graph).
SCHEMA_VERSION = 39
FOLDER_TITLE = "Sanitel"
FOLDER_UID = "sanitel"
TAGS = ["sanitel"]


def skeleton(uid: str, title: str, description: str, variables: list[QueryVariable]) -> Dashboard:
    """A dashboard with Sanitel's uid, tags, time range, refresh and template variables."""
    board = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([*TAGS])
        .editable()
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .timepicker(TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m", "1h"]))
    )
    for variable in variables:
        board.with_variable(variable)
    return board


def section(title: str) -> Row:
    return Row(title).collapsed(False)


def dashboard_annotations(by_site: bool) -> dict[str, Any]:
    """Grafana's built-in annotations, and the alerts that fired (at the chosen sites)."""
    query = ALERTS_FIRED + (' AND "site_id" =~ /^$site$/' if by_site else "")
    return {"list": [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "name": "Annotations & Alerts", "type": "dashboard"},
        {"datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
         "enable": True, "hide": False, "iconColor": "red", "name": "Alerts fired",
         "query": query, "textColumn": "message", "tagsColumn": "rule,severity"},
    ]}


def render(board: Dashboard | DashboardModel) -> dict[str, Any]:
    """The dashboard JSON: panel ids 1.. in layout order, no nulls Grafana would trip on."""
    model = board.build() if isinstance(board, Dashboard) else board
    model.schema_version = SCHEMA_VERSION
    document: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    for number, panel in enumerate(document.get("panels", []), start=1):
        panel["id"] = number
        if panel.get("options") is None and panel.get("type") != "row":
            panel["options"] = {}
    variables = document.get("templating", {}).get("list", [])
    by_site = any(variable["name"] == "site" for variable in variables)
    document["annotations"] = dashboard_annotations(by_site)
    for variable in variables:
        variable.pop("id", None)  # the SDK puts a zero UUID here; Grafana keys variables by name
    return document


def dumps(document: dict[str, Any]) -> str:
    """Stable text for files and comparisons."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
