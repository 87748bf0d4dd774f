"""compose.yaml parses, and every file, port and name it uses matches the configuration."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from dashboards.provisioning import DASHBOARDS_PATH
from ingest.settings import Settings, load
from sanitel.cli import mount

SERVICES = {"access-init", "mosquitto", "influxdb", "grafana", "ingest", "simulate"}


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((repo_root / "compose.yaml").read_text())
    return document


def binds(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the repo root) of the bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = source
    return found


def host_path(service: dict[str, Any], container_path: str, root: Path) -> Path:
    """Where a container path of `service` lives in the repository, through its binds."""
    path = PurePosixPath(container_path)
    for target, source in binds(service).items():
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return root / source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not on a bind mount of the service")


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port."""
    pairs = (str(p).split(":") for p in service.get("ports", []))
    return {int(container): int(host) for host, container in pairs}


def compose_settings(compose: dict[str, Any], root: Path, name: str) -> Settings:
    service = compose["services"][name]
    config = host_path(service, service["environment"]["SANITEL_CONFIG"], root)
    return load(config)


def test_compose_parses_with_its_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    for service in compose["services"].values():
        assert "image" in service


def test_every_bind_mounted_file_exists(compose: dict[str, Any], repo_root: Path) -> None:
    sources = [s for svc in compose["services"].values() for s in binds(svc).values()]
    assert len(sources) >= 5
    for source in sources:
        assert (repo_root / source).exists(), f"compose mounts {source}, which does not exist"


def test_sanitel_image_builds_from_files_that_exist(
    compose: dict[str, Any], repo_root: Path
) -> None:
    for name in ("ingest", "simulate"):
        assert compose["services"][name]["build"] == "."
    dockerfile = (repo_root / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    copied = [s for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M) for s in line.split()]
    assert {"pyproject.toml", "devices", "ingest", "simulators", "dashboards"} <= set(copied)
    for source in copied:
        assert (repo_root / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_commands_are_sanitel_commands_with_known_options(compose: dict[str, Any]) -> None:
    for name in ("ingest", "simulate", "access-init"):
        command = compose["services"][name]["command"]
        assert command[0] == name.split("-")[0]
        # click parses every option before acting on --help: an unknown one exits 2
        result = CliRunner().invoke(mount(), [*command, "--help"])
        assert result.exit_code == 0, result.output


def test_ingest_reaches_mosquitto_as_configured(compose: dict[str, Any], repo_root: Path) -> None:
    settings = compose_settings(compose, repo_root, "ingest")
    assert settings.mqtt.host == "mosquitto"
    conf = (repo_root / "config/mosquitto.conf").read_text()
    listeners = [int(p) for p in re.findall(r"^listener (\d+)", conf, re.M)]
    assert listeners == [settings.mqtt.port]
    assert settings.mqtt.port in published(compose["services"]["mosquitto"])
    mosquitto = compose["services"]["mosquitto"]
    assert "/mosquitto/config/mosquitto.conf" in binds(mosquitto)
    assert re.search(r"^persistence true$", conf, re.M)
    location = re.search(r"^persistence_location (\S+)", conf, re.M)
    assert location is not None
    volumes = [v.split(":")[1] for v in mosquitto["volumes"]]
    assert any(location[1].startswith(v) for v in volumes if v != "/mosquitto/config/"
               "mosquitto.conf"), "mosquitto persists outside a volume"


def test_simulator_reaches_the_same_broker(compose: dict[str, Any], repo_root: Path) -> None:
    settings = compose_settings(compose, repo_root, "ingest")
    env = compose["services"]["simulate"]["environment"]
    assert env["SANITEL_MQTT__HOST"] == settings.mqtt.host
    assert int(env["SANITEL_MQTT__PORT"]) == settings.mqtt.port
    assert Path(env["SANITEL_REGISTRY"]) == settings.registry


def test_ingest_and_grafana_use_the_influxdb_service(
    compose: dict[str, Any], repo_root: Path
) -> None:
    settings = compose_settings(compose, repo_root, "ingest")
    url = urlsplit(settings.influx.url)
    influxdb = compose["services"]["influxdb"]
    assert url.hostname == "influxdb" and url.port in published(influxdb)
    assert influxdb["image"].startswith("influxdb:1.")
    assert influxdb["environment"]["INFLUXDB_DB"] == settings.influx.database
    datasources = repo_root / "config/grafana/provisioning/datasources/sanitel.yaml"
    (ds,) = yaml.safe_load(datasources.read_text())["datasources"]
    assert ds["url"] == settings.influx.url
    assert ds["jsonData"]["dbName"] == settings.influx.database


def test_registry_and_rules_of_the_compose_config_exist(
    compose: dict[str, Any], repo_root: Path
) -> None:
    service = compose["services"]["ingest"]
    settings = compose_settings(compose, repo_root, "ingest")
    for path in (settings.registry, settings.alerts):
        assert not path.is_absolute()
        in_container = PurePosixPath(service["working_dir"]) / path.as_posix()
        assert host_path(service, str(in_container), repo_root).is_file()


def test_grafana_mounts_provisioning_where_grafana_reads_it(
    compose: dict[str, Any], repo_root: Path
) -> None:
    grafana = compose["services"]["grafana"]
    mounts = binds(grafana)
    for kind in ("datasources", "dashboards"):
        folder = host_path(grafana, f"/etc/grafana/provisioning/{kind}", repo_root)
        assert (folder / "sanitel.yaml").is_file()
    provider_file = host_path(grafana, "/etc/grafana/provisioning/dashboards/sanitel.yaml",
                              repo_root)
    (provider,) = yaml.safe_load(provider_file.read_text())["providers"]
    assert provider["options"]["path"] == DASHBOARDS_PATH in mounts
    dashboards = sorted(host_path(grafana, DASHBOARDS_PATH, repo_root).glob("*.json"))
    assert len(dashboards) == 5
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home, repo_root).is_file()
    assert 3000 in published(grafana)


def test_grafana_gets_the_variables_its_datasource_file_expands(
    compose: dict[str, Any], repo_root: Path
) -> None:
    text = (repo_root / "config/grafana/provisioning/datasources/sanitel.yaml").read_text()
    wanted = set(re.findall(r"\$\{(\w+)\}", text))
    assert wanted
    assert wanted <= set(compose["services"]["grafana"]["environment"])
