"""The shipped config/alertmanager.yml: made from the shipped crews and registry, loaded by
the real Alertmanager, and routing a district's alerts to that district's crew only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devices.sites import Registry
from sanitel.alertmanager_config import EXAMPLE_BASE, build, load_crews, render, retarget
from sanitel.crew_inbox import CrewInbox
from sanitel.local_servers import Alertmanager

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "alertmanager.yml"
CREWS = ROOT / "config" / "crews.yaml"
REGISTRY = ROOT / "config" / "registry.yaml"


def shipped_districts() -> set[str]:
    return {site.district for site in Registry.load(REGISTRY).sites.values()}


def test_shipped_file_is_what_the_crews_and_registry_make() -> None:
    made = render(build(load_crews(CREWS), shipped_districts()))
    assert SHIPPED.read_text() == made, (
        "config/alertmanager.yml is stale: run `sanitel alerts alertmanager-config "
        "--out config/alertmanager.yml`")


def test_shipped_routes_every_registry_district_to_its_crews_and_criticals_to_duty() -> None:
    config = yaml.safe_load(SHIPPED.read_text())
    crews = yaml.safe_load(CREWS.read_text())["crews"]
    routes = config["route"]["routes"]
    by_district: dict[str, set[str]] = {}
    for route in routes:
        for matcher in route["matchers"]:
            if matcher.startswith("district="):
                by_district.setdefault(json.loads(matcher.split("=", 1)[1]), set()).add(
                    route["receiver"])
    assert set(by_district) == shipped_districts()
    for district, receivers in by_district.items():
        assert receivers == {c["name"] for c in crews if district in c["districts"]}
    duty = routes[0]
    assert duty["matchers"] == ['severity="critical"'] and duty["continue"] is True
    assert duty["receiver"] == "duty-phone" and duty["repeat_interval"] == "30m"
    assert config["route"]["group_by"] == ["site_id"]
    assert config["inhibit_rules"] == [{
        "source_matchers": ['alertname="offline"'], "target_matchers": ['alertname!="offline"'],
        "equal": ["site_id", "device_id"]}]
    assert {r["name"] for r in config["receivers"]} == {
        "control-room", "duty-phone", *(c["name"] for c in crews)}


def test_command_writes_the_same_file(tmp_path: Path) -> None:
    out = tmp_path / "am.yml"
    result = subprocess.run(
        [sys.executable, "-m", "sanitel.cli", "alerts", "alertmanager-config", "--crews",
         str(CREWS), "--out", str(out)], env={"SANITEL_REGISTRY": str(REGISTRY), "PATH": ""},
        capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == SHIPPED.read_text()
    bad = tmp_path / "crews.yaml"
    bad.write_text("crews: [{name: x}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "sanitel.cli", "alerts", "alertmanager-config", "--crews",
         str(bad)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 2 and f"crews file {bad}: crews.0" in result.stderr
    bad.write_text("crews: [{name: crew-x, districts: [Atlantis]}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "sanitel.cli", "alerts", "alertmanager-config", "--crews",
         str(bad)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 2 and "district 'Atlantis' has no site" in result.stderr


@pytest.fixture
def recorder() -> Iterator[CrewInbox]:
    with CrewInbox() as inbox:
        yield inbox


def test_the_shipped_file_loads_in_alertmanager(alertmanager: Alertmanager) -> None:
    alertmanager.config = SHIPPED.read_text()
    alertmanager.restart()
    status = httpx.get(f"{alertmanager.url}/api/v2/status", timeout=10).json()
    assert "crew-central" in status["config"]["original"]


def test_a_district_alert_reaches_its_crew_and_no_other(
        alertmanager: Alertmanager, recorder: CrewInbox, run_ingest: Any, mqtt: Any,
        ) -> None:
    """The shipped routing with its webhooks pointed at a recorder, through `sanitel ingest`
    with the shipped registry: a Qingyang toilet's warning goes to crew-central only; a
    Chenghua station's critical to crew-north and the duty phone."""
    config = retarget(yaml.safe_load(SHIPPED.read_text()), recorder.url, wait="1s")
    alertmanager.config = yaml.safe_dump(config)
    alertmanager.restart()
    run_ingest(alerts=ROOT / "config" / "alerts.yaml", registry=REGISTRY,
               alertmanager__urls=json.dumps([alertmanager.url]))
    sites = Registry.load(REGISTRY).sites
    assert sites["WC-0001"].district == "Qingyang" and sites["TS-0001"].district == "Chenghua"
    start = int(time.time() * 1000) - 240_000
    for minute in range(4):  # the shipped rules want NH3 high for 2 minutes
        ts = start + minute * 60_000
        mqtt.publish("sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry",
                     {"nh3_ppm": 3.0, "ts": ts})
        mqtt.publish("sanitation/v1/TS-0001/odor/TS-0001-OD-1/telemetry",
                     {"nh3_ppm": 40.0, "ts": ts})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            recorder.alerts_at("/crews/crew-central") and recorder.alerts_at("/duty-phone")
            and recorder.alerts_at("/crews/crew-north")):
        time.sleep(0.1)
    time.sleep(2.5)  # what else Alertmanager would send has had its group_wait
    central = recorder.alerts_at("/crews/crew-central")
    north = recorder.alerts_at("/crews/crew-north")
    duty = recorder.alerts_at("/duty-phone")
    assert {a["labels"]["device_id"] for a in central} == {"WC-0001-OD-1"}
    assert {a["labels"]["device_id"] for a in north} == {"TS-0001-OD-1"}
    assert {(a["labels"]["device_id"], a["labels"]["severity"]) for a in duty} == {
        ("TS-0001-OD-1", "critical")}
    assert central[0]["annotations"]["summary"].startswith("NH3")
    others = recorder.paths() - {
        "/crews/crew-central", "/crews/crew-north", "/duty-phone"}
    assert others == set(), f"alerts went to {others}"
    assert EXAMPLE_BASE not in alertmanager.config


def test_the_wechat_and_email_example_of_the_docs_is_valid(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "alertmanager.md").read_text()
    section = page.split("## 4. WeChat Work and email", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "wechat_configs" in example and "email_configs" in example
    path = tmp_path / "example.yml"
    path.write_text(example)
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # the shipped routing with two crews' webhooks swapped for them, as the docs tell
    config = yaml.safe_load(SHIPPED.read_text())
    swapped = {r["name"]: r for r in yaml.safe_load(example)["receivers"]}
    config["receivers"] = [swapped.get(r["name"], r) for r in config["receivers"]]
    config["global"] = yaml.safe_load(example)["global"]
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wechat_configs" in path.read_text() and "crew-south" in path.read_text()
