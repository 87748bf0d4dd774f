"""Every dashboard has the structure Grafana requires, and the content the issue asks for."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import dashboards
from dashboards.influxql import DATASOURCE_UID, InfluxQLQuery
from dashboards.provisioning import InfluxSource, datasource_file
from dashboards.thresholds import DEFAULT_LEVELS, load_levels

EXPECTED_UIDS = {
    "city-overview": "sanitel-city-overview",
    "public-toilets": "sanitel-public-toilets",
    "transfer-stations": "sanitel-transfer-stations",
    "device-health": "sanitel-device-health",
    "pipeline": "sanitel-pipeline",
}
#: Grafana's own macros and alias patterns, allowed in queries beside template variables.
BUILTINS = {"timeFilter", "__interval", "col"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_uids_are_stable_and_unique(boards: dict[str, dict[str, Any]]) -> None:
    assert {stem: board["uid"] for stem, board in boards.items()} == EXPECTED_UIDS
    titles = [board["title"] for board in boards.values()]
    assert len(set(titles)) == len(titles)


def test_building_twice_gives_the_same_json(
    boards: dict[str, dict[str, Any]], alerts_file: Path
) -> None:
    assert dashboards.dashboards(alerts_file) == boards


def test_panel_ids_are_unique_per_dashboard(boards: dict[str, dict[str, Any]]) -> None:
    for stem, board in boards.items():
        ids = [p["id"] for p in board["panels"]]
        assert all(isinstance(i, int) and i > 0 for i in ids), stem
        assert len(set(ids)) == len(ids), f"{stem}: duplicate panel ids {ids}"


def test_grid_positions_fit_24_columns_without_overlap(
    boards: dict[str, dict[str, Any]],
) -> None:
    for stem, board in boards.items():
        boxes = []
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] >= 1 and pos["h"] >= 1
            assert pos["x"] + pos["w"] <= 24, f"{stem} {panel['title']!r} past column 24"
            boxes.append((panel["title"], pos))
        for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
            overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                       and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
            assert not overlap, f"{stem}: {ta!r} overlaps {tb!r}"


def _provisioned_uids() -> set[tuple[str, str]]:
    document = datasource_file(InfluxSource(url="http://localhost:8086", database="sanitation"))
    return {(ds["type"], ds["uid"]) for ds in document["datasources"]}


def test_datasource_references_resolve_to_the_provisioned_datasource(
    boards: dict[str, dict[str, Any]],
) -> None:
    provisioned = _provisioned_uids()
    assert provisioned == {("influxdb", DATASOURCE_UID)}
    refs = 0
    for board in boards.values():
        holders = [*panels(board), *board["templating"]["list"]]
        holders += [a for a in board["annotations"]["list"] if not a.get("builtIn")]
        holders += [t for p in panels(board) for t in p["targets"]]
        for holder in holders:
            ref = holder["datasource"]
            assert (ref["type"], ref["uid"]) in provisioned, holder
            refs += 1
    assert refs >= 60  # every panel, target and variable was looked at


def test_every_panel_has_a_query(boards: dict[str, dict[str, Any]]) -> None:
    for stem, board in boards.items():
        for panel in panels(board):
            assert panel["targets"], f"{stem} {panel['title']!r} has no target"
            for target in panel["targets"]:
                assert target["rawQuery"] is True
                assert target["resultFormat"] in ("time_series", "table")
                assert re.match(r"SELECT\s", target["query"]), target["query"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids)


def test_queries_use_only_defined_variables(boards: dict[str, dict[str, Any]]) -> None:
    for stem, board in boards.items():
        defined = {v["name"] for v in board["templating"]["list"]} | BUILTINS
        texts = [t["query"] for p in panels(board) for t in p["targets"]]
        texts += [v["query"] for v in board["templating"]["list"]]
        texts += [a["query"] for a in board["annotations"]["list"] if "query" in a]
        used = {name for text in texts for name in re.findall(r"\$(\w+)", text)}
        assert used <= defined, f"{stem}: undefined {used - defined}"


def test_every_dashboard_annotates_fired_alerts(boards: dict[str, dict[str, Any]]) -> None:
    for stem, board in boards.items():
        annotations = board["annotations"]["list"]
        assert annotations[0]["builtIn"] == 1, stem
        (alerts,) = [a for a in annotations if a["name"] == "Alerts fired"]
        assert alerts["query"].startswith('SELECT "message"') and alerts["textColumn"] == "message"
        assert ("$site" in alerts["query"]) == (stem != "pipeline")


def test_place_dashboards_have_district_and_site_variables(
    boards: dict[str, dict[str, Any]],
) -> None:
    for stem in ("city-overview", "public-toilets", "transfer-stations", "device-health"):
        variables = {v["name"]: v for v in boards[stem]["templating"]["list"]}
        assert list(variables) == ["district", "site"]
        for variable in variables.values():
            assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]
            assert variable["current"]["value"] == ["$__all"]
            assert variable["query"].startswith("SHOW TAG VALUES FROM \"sites\"")
        assert "$district" in variables["site"]["query"]


def test_city_overview_has_a_geomap_of_sites_coloured_by_alert(
    boards: dict[str, dict[str, Any]],
) -> None:
    board = boards["city-overview"]
    (geomap,) = [p for p in board["panels"] if p["type"] == "geomap"]
    layer = geomap["options"]["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    assert layer["config"]["style"]["color"]["field"] == "alert_level"
    queries = " ".join(t["query"] for t in geomap["targets"])
    assert 'FROM "sites"' in queries and 'AS "alert_level"' in queries
    assert geomap["transformations"][0]["options"]["byField"] == "site_id"


def _thresholds(board: dict[str, Any], title_start: str) -> list[tuple[float | None, str]]:
    (panel,) = [p for p in board["panels"] if p["title"].startswith(title_start)]
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    return [(s["value"], s["color"]) for s in steps]


def test_odor_panels_draw_the_rule_thresholds_of_the_alerts_file(
    boards: dict[str, dict[str, Any]], alerts_file: Path
) -> None:
    rules = yaml.safe_load(alerts_file.read_text())["rules"]
    nh3 = rules["odor_nh3_high"]["levels"]
    expected = [(None, "green"), (nh3["warning"]["above"], "orange"),
                (nh3["critical"]["above"], "red")]
    assert _thresholds(boards["public-toilets"], "NH3") == expected
    station = rules["odor_nh3_high"]["site_kind"]["transfer_station"]["levels"]
    assert _thresholds(boards["transfer-stations"], "NH3")[1] == (
        station["warning"]["above"], "orange")


def test_thresholds_come_from_a_rules_list_too(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"rules": [
        {"name": "odor_h2s_high", "levels": {"warning": {"above": 0.5},
                                             "critical": {"above": 1.5}}},
        {"name": "battery_low", "below": 12, "severity": "critical"},
    ]}))
    levels = load_levels(path)
    h2s = levels.get("odor_h2s_high")
    battery = levels.get("battery_low")
    assert h2s is not None and h2s.levels == (("warning", 0.5), ("critical", 1.5))
    assert battery is not None and battery.bound == "below"
    assert battery.levels == (("critical", 12.0),)


def test_missing_or_odd_alerts_file_falls_back_to_defaults(tmp_path: Path) -> None:
    assert load_levels(tmp_path / "absent.yaml") == DEFAULT_LEVELS
    odd = tmp_path / "odd.yaml"
    odd.write_text("rules: [1, 2, {levels: nonsense}]\n")
    assert load_levels(odd) == DEFAULT_LEVELS
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: {odor_nh3_high: [\n")
    assert load_levels(broken) == DEFAULT_LEVELS


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["rules", "levels", "warning", "critical", "info",
                                       "above", "below", "severity", "site_kind", "name",
                                       "odor_nh3_high", "toilet"]), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(document=yaml_values)
def test_any_yaml_document_gives_usable_levels(document: object, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("alerts") / "alerts.yaml"
    path.write_text(yaml.safe_dump(document))
    levels = load_levels(path)
    for rule in DEFAULT_LEVELS.rules:
        found = levels.get(rule)
        assert found is not None and found.levels
        assert all(isinstance(value, float) for _, value in found.levels)


def test_target_json_round_trips_through_the_sdk_runtime() -> None:
    from grafana_foundation_sdk.cog.runtime import dataquery_from_json

    data = {"refId": "B", "query": "SELECT 1", "rawQuery": True, "resultFormat": "table",
            "datasource": {"type": "influxdb", "uid": DATASOURCE_UID}}
    query = dataquery_from_json(data, "")
    assert isinstance(query, InfluxQLQuery)
    assert query.to_json() == data
