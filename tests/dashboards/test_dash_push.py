"""`sanitel dashboards push` against a recording Grafana stand-in on 127.0.0.1.

A real Grafana run remains to be done: no Grafana server can be installed here.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from dash_grafana import FakeGrafana
from typer.testing import CliRunner

from sanitel.dashboards_cli import app

EXPECTED_UIDS = {"sanitel-city-overview", "sanitel-public-toilets", "sanitel-transfer-stations",
                 "sanitel-device-health", "sanitel-pipeline"}


def run_push(grafana: FakeGrafana, *args: str, env: dict[str, str] | None = None) -> Any:
    environ = {"GRAFANA_TOKEN": "glsa_test", "SANITEL_INFLUX__USERNAME": "grafana",
               "SANITEL_INFLUX__PASSWORD": "influx-secret"} | (env or {})
    return CliRunner().invoke(app, ["push", "--url", grafana.url, *args], env=environ)


def test_first_push_creates_folder_datasource_and_dashboards(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    result = run_push(grafana)
    assert result.exit_code == 0, result.output
    writes = grafana.writes()
    assert [(c.method, c.path) for c in writes[:2]] == [
        ("POST", "/api/folders"), ("POST", "/api/datasources")]
    assert writes[0].body == {"title": "Sanitel", "uid": "sanitel"}
    ds = writes[1].body
    assert ds["uid"] == "sanitel-influxdb" and ds["type"] == "influxdb"
    assert ds["access"] == "proxy" and ds["url"] == "http://localhost:8086"
    assert ds["jsonData"]["dbName"] == "sanitation" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["user"] == "grafana" and ds["secureJsonData"] == {"password": "influx-secret"}
    saves = writes[2:]
    assert {(c.method, c.path) for c in saves} == {("POST", "/api/dashboards/db")}
    assert {c.body["dashboard"]["uid"] for c in saves} == EXPECTED_UIDS
    for call in saves:
        assert call.body["overwrite"] is True and call.body["folderUid"] == "sanitel"
        assert "id" not in call.body["dashboard"]
    assert {c.authorization for c in grafana.calls} == {"Bearer glsa_test"}
    assert "7 changed, 0 unchanged" in result.output
    assert "influx-secret" not in result.output


def test_second_push_changes_nothing(grafana: FakeGrafana, clean_env: pytest.MonkeyPatch) -> None:
    assert run_push(grafana).exit_code == 0
    versions = {uid: d["dashboard"]["version"] for uid, d in grafana.state.dashboards.items()}
    before = len(grafana.calls)
    result = run_push(grafana)
    assert result.exit_code == 0, result.output
    second = grafana.calls[before:]
    assert second and all(call.method == "GET" for call in second)
    assert {uid: d["dashboard"]["version"] for uid, d in grafana.state.dashboards.items()} \
        == versions
    assert grafana.state.datasources["sanitel-influxdb"]["version"] == 1
    assert "0 changed, 7 unchanged" in result.output


def test_changed_database_updates_only_the_datasource(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    assert run_push(grafana).exit_code == 0
    before = len(grafana.calls)
    result = run_push(grafana, env={"SANITEL_INFLUX__DATABASE": "city2"})
    assert result.exit_code == 0, result.output
    writes = [c for c in grafana.calls[before:] if c.method != "GET"]
    assert [(c.method, c.path) for c in writes] == [
        ("PUT", "/api/datasources/uid/sanitel-influxdb")]
    assert writes[0].body["jsonData"]["dbName"] == "city2"
    assert "datasource Sanitel InfluxDB: updated" in result.output


def test_token_auth_for_influx_and_basic_auth_for_grafana(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    result = run_push(grafana, "--influx-url", "http://influx.internal:8086", env={
        "GRAFANA_TOKEN": "", "GRAFANA_USER": "admin", "GRAFANA_PASSWORD": "pw",
        "SANITEL_INFLUX__API": "v2", "SANITEL_INFLUX__TOKEN": "influx-token"})
    assert result.exit_code == 0, result.output
    basic = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert {c.authorization for c in grafana.calls} == {basic}
    ds = grafana.writes()[1].body
    assert ds["url"] == "http://influx.internal:8086"
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"] == {"httpHeaderValue1": "Token influx-token"}


def test_provisioned_datasource_is_left_alone(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    grafana.state.datasources["sanitel-influxdb"] = {
        "uid": "sanitel-influxdb", "name": "Sanitel InfluxDB", "type": "influxdb",
        "url": "http://influxdb:8086", "readOnly": True, "jsonData": {}, "version": 3}
    result = run_push(grafana)
    assert result.exit_code == 0, result.output
    assert "datasource Sanitel InfluxDB: kept (provisioned)" in result.output
    assert not [c for c in grafana.writes() if "datasources" in c.path]


def test_refusal_names_the_object_and_exits_1(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    grafana.state.fail_with = 500
    result = run_push(grafana)
    assert result.exit_code == 1
    assert "folder 'Sanitel'" in result.output and grafana.url in result.output


def test_unreachable_grafana_exits_1(clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["push", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach Grafana at http://127.0.0.1:9" in result.output


def test_the_datasource_reads_as_the_read_only_user(
    grafana: FakeGrafana, clean_env: pytest.MonkeyPatch
) -> None:
    # SPEC 8: Grafana's datasource uses the user that may only read.
    result = run_push(grafana, env={"SANITEL_INFLUX__READ_USERNAME": "sanitel-grafana",
                                    "SANITEL_INFLUX__READ_PASSWORD": "reader-secret"})
    assert result.exit_code == 0, result.output
    ds = grafana.writes()[1].body
    assert ds["user"] == "sanitel-grafana"
    assert ds["secureJsonData"] == {"password": "reader-secret"}
    assert "reader-secret" not in result.output
