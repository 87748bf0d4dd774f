"""`sanitel dashboards export`: the files, their provisioning layout, and the committed copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sanitel.dashboards_cli import app

COMPOSE_CONFIG = "config/sanitel.compose.yaml"
COMMITTED = Path("config/grafana")


def export(target: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, ["export", str(target), *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def files_under(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_committed_config_grafana_equals_a_fresh_export(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, repo_root: Path
) -> None:
    export(tmp_path, "--config", COMPOSE_CONFIG)
    fresh, committed = files_under(tmp_path), files_under(repo_root / COMMITTED)
    assert sorted(committed) == sorted(fresh)
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, (
        f"{stale} differ from the generator; run: sanitel dashboards export config/grafana "
        f"--config {COMPOSE_CONFIG}")


def test_export_writes_grafana_layout_and_says_what(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    output = export(tmp_path)
    expected = ["provisioning/datasources/sanitel.yaml", "provisioning/dashboards/sanitel.yaml",
                "dashboards/city-overview.json", "dashboards/public-toilets.json",
                "dashboards/transfer-stations.json", "dashboards/device-health.json",
                "dashboards/pipeline.json"]
    assert output.splitlines() == [f"wrote {tmp_path / name}" for name in expected]
    assert sorted(files_under(tmp_path)) == sorted(expected)


def test_provider_points_at_the_dashboard_files(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    export(tmp_path, "--dashboards-path", str(tmp_path / "dashboards"))
    provider_file = tmp_path / "provisioning/dashboards/sanitel.yaml"
    document = yaml.safe_load(provider_file.read_text())
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file" and provider["folder"] == "Sanitel"
    files = sorted(Path(provider["options"]["path"]).glob("*.json"))
    assert [f.stem for f in files] == sorted(
        ["city-overview", "public-toilets", "transfer-stations", "device-health", "pipeline"])


def test_datasource_file_takes_credentials_from_the_environment(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    export(tmp_path, env={"SANITEL_INFLUX__READ_USERNAME": "reader",
                          "SANITEL_INFLUX__READ_PASSWORD": "very-secret",
                          "SANITEL_INFLUX__DATABASE": "city"})
    text = (tmp_path / "provisioning/datasources/sanitel.yaml").read_text()
    assert "very-secret" not in text and "reader" not in text
    (ds,) = yaml.safe_load(text)["datasources"]
    assert ds["uid"] == "sanitel-influxdb" and ds["type"] == "influxdb"
    assert ds["jsonData"] == {"version": "InfluxQL", "dbName": "city", "httpMode": "POST",
                              "timeInterval": "10s"}
    assert ds["user"] == "${SANITEL_INFLUX__READ_USERNAME}"  # the read-only user (SPEC 8)
    assert ds["secureJsonData"] == {"password": "${SANITEL_INFLUX__READ_PASSWORD}"}


def test_datasource_file_uses_a_token_header_for_v2(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    export(tmp_path, env={"SANITEL_INFLUX__API": "v2", "SANITEL_INFLUX__TOKEN": "tok-123"})
    text = (tmp_path / "provisioning/datasources/sanitel.yaml").read_text()
    assert "tok-123" not in text
    (ds,) = yaml.safe_load(text)["datasources"]
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds["secureJsonData"] == {"httpHeaderValue1": "Token ${SANITEL_INFLUX__TOKEN}"}
    assert "user" not in ds


def test_bad_configuration_names_the_key(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["export", str(tmp_path)],
                                env={"SANITEL_INFLUX__API": "v9"})
    assert result.exit_code == 2
    assert "influx.api" in result.output
    assert not list(tmp_path.iterdir())
