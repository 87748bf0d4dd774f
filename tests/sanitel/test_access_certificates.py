"""Devices with X.509 client certificates (`sanitel access ca`) on a real mosquitto: the
certificate's CN is the username, so the ACL of `sanitel access init` applies."""

from __future__ import annotations

import shutil
import ssl
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from devices.crews import Crews
from devices.sites import Registry
from sanitel.access.build import init_access
from sanitel.access.ca import make_certificates
from sanitel.local_servers import Mosquitto, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_broker import ACCEPTED, NOT_AUTHORIZED, Client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
T = "sanitation/v1"


def tls_client(port: int, ca: Path, cert: Path | None = None,
               key: Path | None = None) -> tuple[Client | None, str]:
    """A connected client, or None and why the broker would not have it."""
    try:
        client = Client(port, tls=(ca, cert, key))
    except (OSError, ssl.SSLError, AssertionError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if client.connack != 0:
        client.close()
        return None, f"CONNACK {client.connack}"
    return client, ""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pki")
    city = Registry.load(Path(__file__).resolve().parents[2] / "config/registry.yaml")
    devices = ["WC-0001-OD-1", "WC-0001-PC-1"]
    port = free_port()
    issued = make_certificates(root / "ca", devices, ["localhost", "127.0.0.1"], port)
    rogue = make_certificates(root / "rogue", devices, ["localhost"], port)
    init_access(root / "access", city, Crews.load(
        Path(__file__).resolve().parents[2] / "config/crews.yaml"))
    return {"root": root, "port": port, "issued": issued, "rogue": rogue, "devices": devices}


def test_keys_are_private_and_a_rerun_keeps_what_was_issued(pki: dict[str, Any]) -> None:
    ca = pki["root"] / "ca"
    assert pki["issued"].added == pki["devices"]
    for key in (ca / "ca.key", ca / "server.key", ca / "devices" / "WC-0001-OD-1.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    before = (ca / "devices" / "WC-0001-OD-1.crt").read_bytes()
    again = make_certificates(ca, pki["devices"], ["localhost"], pki["port"],
                              renew=["WC-0001-PC-1"])
    assert again.added == ["WC-0001-PC-1"] and again.kept == 1
    assert (ca / "devices" / "WC-0001-OD-1.crt").read_bytes() == before


def test_a_device_logs_in_by_certificate_under_its_own_acl(pki: dict[str, Any]) -> None:
    root, port = pki["root"], pki["port"]
    conf = (root / "access" / "mosquitto.conf").read_text() + \
        (root / "ca" / "mosquitto-tls.conf").read_text()
    ca, devices = root / "ca" / "ca.crt", root / "ca" / "devices"
    with Mosquitto(root / "broker", extra_conf=conf):
        device, why = tls_client(port, ca, devices / "WC-0001-OD-1.crt",
                                 devices / "WC-0001-OD-1.key")
        assert device is not None, why
        own = f"{T}/WC-0001/odor/WC-0001-OD-1/telemetry"
        assert device.publish(own, b'{"nh3_ppm": 1}') in ACCEPTED
        other = f"{T}/WC-0001/people_counter/WC-0001-PC-1/telemetry"
        assert device.publish(other, b'{"entries": 1}') == NOT_AUTHORIZED
        device.close()
        nocert, why = tls_client(port, ca)
        assert nocert is None and why
        rogue = root / "rogue" / "devices"
        forged, why = tls_client(port, ca, rogue / "WC-0001-OD-1.crt", rogue / "WC-0001-OD-1.key")
        assert forged is None and why
