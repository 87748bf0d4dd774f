"""compose.yaml runs the broker with access control on (SPEC section 8): the init service
writes where mosquitto, ingest and the simulator read, and the broker configuration it
ships, run on a real mosquitto with `sanitel access init`'s files, refuses anonymous
clients and accepts the accounts."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.credentials import read_credentials
from devices.crews import Crews
from devices.sites import Registry
from ingest.settings import load
from sanitel.access.build import init_access
from sanitel.local_servers import Mosquitto, find_binary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_broker import NOT_AUTHORIZED, Client, connect_as

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path)."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def test_init_writes_into_the_volume_everyone_reads(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = services["access-init"]
    out = init["command"][init["command"].index("--out") + 1]
    assert init["command"][:2] == ["access", "init"] and "--gateways" in init["command"]
    volume = _mounts(init)[out]
    assert volume in compose["volumes"]
    # The same path in every container: the absolute paths in its mosquitto.conf hold.
    for name in ("mosquitto", "ingest", "simulate"):
        assert _mounts(services[name]).get(out) == volume, name
        assert any(v.startswith(f"{volume}:{out}:ro") for v in services[name]["volumes"]), name
    depends = services["mosquitto"]["depends_on"]["access-init"]
    assert depends == {"condition": "service_completed_successfully"}
    conf = (ROOT / "config/mosquitto.conf").read_text()
    assert re.findall(r"^include_dir (\S+)$", conf, re.M) == [out]
    assert not re.search(r"^allow_anonymous true", conf, re.M)
    settings = load(ROOT / "config/sanitel.compose.yaml")
    assert settings.access.enabled and settings.access.credentials == Path(out,
                                                                           "credentials.csv")
    simulate = services["simulate"]["command"]
    assert simulate[simulate.index("--credentials") + 1] == f"{out}/credentials.csv"
    # Files 0600 owned by the broker's user (1883 in eclipse-mosquitto), readable by the
    # sanitel containers: they run as that uid too.
    assert init["user"] == "1883:1883"
    assert "--uid 1883" in (ROOT / "Dockerfile").read_text()


def test_the_shipped_broker_config_refuses_anonymous_and_accepts_accounts(
    tmp_path: Path, compose: dict[str, Any]
) -> None:
    find_binary("mosquitto", "/usr/sbin/mosquitto")
    access = tmp_path / "access"
    init_access(access, Registry.load(ROOT / "config/registry.yaml"),
                Crews.load(ROOT / "config/crews.yaml"), gateways=True)
    shipped = (ROOT / "config/mosquitto.conf").read_text()
    # Only what a container would differ in: paths, port, and the process's user.
    lines = [line for line in shipped.splitlines()
             if not line.startswith(("listener", "log_dest", "persistence_location"))]
    conf = "\n".join(lines).replace("include_dir /access", f"include_dir {access}") + "\n"
    with Mosquitto(tmp_path / "mosquitto", extra_conf=conf) as broker:
        assert Client(broker.port).connack == NOT_AUTHORIZED
        accounts = read_credentials(access / "credentials.csv")
        for role in ("ingest", "device", "gateway", "crew"):
            account = next(a for a in accounts if a.role == role)
            connect_as(broker.port, account).close()
