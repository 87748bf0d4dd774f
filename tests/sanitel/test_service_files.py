"""The files an operator installs to run `sanitel ingest` as a service (SPEC section 10):
the systemd unit passes `systemd-analyze verify` and its security review, and it and the
Kubernetes example only set keys the configuration knows, with probes on the real paths."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.settings import Settings, load
from tests.conftest import ROOT

UNIT = ROOT / "config" / "sanitel-ingest.service"
KUBERNETES = ROOT / "config" / "kubernetes" / "sanitel-ingest.yaml"
SANITEL_BIN = Path(sys.executable).parent / "sanitel"


def unit_lines(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines()
            if line.startswith(f"{key}=")]


def load_with_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                  config: Path | None = None) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load(config)


@pytest.fixture
def local_unit(tmp_path: Path) -> Path:
    """The unit, with ExecStart pointing at this checkout's `sanitel` (verify checks it)."""
    path = tmp_path / "sanitel-ingest.service"
    path.write_text(UNIT.read_text().replace("/opt/sanitel/bin/sanitel", str(SANITEL_BIN)))
    return path


def test_unit_passes_systemd_analyze_verify(local_unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run .ci/setup --test"
    done = subprocess.run([analyze, "verify", str(local_unit)], capture_output=True,
                          text=True, timeout=60)
    complaints = [line for line in done.stderr.splitlines() if local_unit.name in line]
    assert done.returncode == 0 and not complaints, done.stderr


def test_unit_is_hardened(local_unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run .ci/setup --test"
    done = subprocess.run([analyze, "security", "--offline=true", str(local_unit)],
                          capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout + done.stderr)
    assert level, done.stdout + done.stderr
    assert float(level.group(1)) <= 2.0, done.stdout  # systemd calls <= 2.0 "OK"


def test_unit_runs_ingest_as_a_notify_service_with_a_watchdog() -> None:
    assert unit_lines("Type") == ["notify"]
    assert unit_lines("WatchdogSec") and unit_lines("Restart") == ["on-failure"]
    assert unit_lines("User") == ["sanitel"] and unit_lines("StateDirectory") == ["sanitel"]
    assert unit_lines("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    command = unit_lines("ExecStart")[0].split()
    assert command[1] == "ingest"
    help_text = subprocess.run([str(SANITEL_BIN), "ingest", "--help"], capture_output=True,
                               text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""}).stdout
    for option in (arg for arg in command[2:] if arg.startswith("--")):
        assert option in help_text, option


def test_unit_environment_is_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(line.split("=", 1) for line in unit_lines("Environment"))
    settings = load_with_env(monkeypatch, env)
    # the spool and the alert state in the state directory systemd creates
    assert settings.data_dir == Path("/var/lib/sanitel")
    assert settings.spool_dir.is_relative_to("/var/lib/sanitel")
    assert settings.state_dir.is_relative_to("/var/lib/sanitel")


def _documents() -> dict[str, dict[str, Any]]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc
            for doc in yaml.safe_load_all(KUBERNETES.read_text())}


def _container_env(container: dict[str, Any], pod_name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container["env"]:
        value = item.get("value", "secret-from-a-secret")
        if "fieldRef" in item.get("valueFrom", {}):
            value = pod_name
        env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], value)
    return {k: v for k, v in env.items() if k.startswith("SANITEL_")}


@pytest.mark.parametrize(("workload", "role"), [("StatefulSet/sanitel-ingest", "store"),
                                                ("Deployment/sanitel-alerts", "alerts")])
def test_kubernetes_workloads_are_valid_and_probe_the_real_endpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workload: str, role: str,
) -> None:
    docs = _documents()
    config = tmp_path / "sanitel.yaml"
    config.write_text(docs["ConfigMap/sanitel-config"]["data"]["sanitel.yaml"])
    pod = docs[workload]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = _container_env(container, f"{docs[workload]['metadata']['name']}-0")
    settings = load_with_env(monkeypatch, env, config)
    assert settings.pipeline.role == role
    assert settings.http.host == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == settings.http.port
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(settings.data_dir) in mounts  # spool and alert state on their own volume
    assert settings.registry.parent.as_posix() in mounts
    assert container["args"][0] == "ingest"
    assert pod["terminationGracePeriodSeconds"] > settings.pipeline.shutdown_timeout_s
    if role == "store":  # one worker per pod, in one group, each with its own session
        assert settings.mqtt.shared_group == "ingest"
        assert settings.mqtt.client_id == "sanitel-ingest-0"
    else:
        assert settings.mqtt.shared_group is None
        assert docs[workload]["spec"]["replicas"] == 1
        assert docs[workload]["spec"]["strategy"]["type"] == "Recreate"


def test_image_holds_every_package_the_command_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("devices", "ingest", "simulators", "dashboards", "sanitel"):
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), package


def test_compose_healthcheck_asks_the_ingest_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ingest = compose["services"]["ingest"]
    check = " ".join(ingest["healthcheck"]["test"])
    config = ROOT / "config" / "sanitel.compose.yaml"
    settings = load_with_env(monkeypatch, {}, config)
    assert f"http://127.0.0.1:{settings.http.port}/readyz" in check
    assert settings.http.host == "0.0.0.0"
