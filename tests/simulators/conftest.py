"""Helpers for the simulator tests: a reference classifier for what the pipeline must do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from devices.registry import DEVICE_TYPES
from devices.sites import Registry
from sanitel.local_servers import Mosquitto
from simulators.city import generate_city
from simulators.clock import parse_start

START_MS = parse_start("2026-11-24T00:00:00+08:00")
MAX_PAYLOAD = 16 * 1024
MAX_FUTURE_MS = 5 * 60 * 1000
#: pydantic error types that mean "right type, wrong value".
RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def classify(topic: str, payload: bytes, registry: Registry, now_ms: int) -> str:
    """What SPEC section 3 says the pipeline does with a message: `stored` or the reason."""
    if len(payload) > MAX_PAYLOAD:
        return "payload_too_large"
    _, _, site_id, device_type, device_id, _ = topic.split("/")
    try:
        data: Any = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "malformed_json"
    device = registry.devices.get(device_id)
    if device is None:
        return "unknown_device"
    if device.site.id != site_id or device.type != device_type:
        return "device_mismatch"
    if not isinstance(data, dict):
        return "schema_invalid"
    try:
        reading = DEVICE_TYPES[device_type].model_validate(data)
    except ValidationError as exc:
        kinds = {error["type"] for error in exc.errors()}
        return "out_of_range" if kinds <= RANGE_ERRORS else "schema_invalid"
    if reading.device_id not in (None, device_id):
        return "device_mismatch"
    if reading.ts_ms(now_ms) > now_ms + MAX_FUTURE_MS:
        return "clock_skew"
    return "stored"


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """This folder's own broker, overriding the session's (and so under `mqtt` too): the
    retained statuses the simulator leaves must not reach other folders' pipelines, which
    would count them as unknown devices."""
    with Mosquitto(tmp_path_factory.mktemp("sim-mosquitto")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def city() -> Registry:
    return Registry.from_dict(generate_city(40, seed=7))


@dataclass
class CityFile:
    path: Path
    registry: Registry

    @property
    def device_ids(self) -> set[str]:
        return set(self.registry.devices)


def unique_city(directory: Path, sites: int, seed: int = 1) -> CityFile:
    """A generated city whose ids no other test uses (the broker keeps retained statuses)."""
    tag = uuid.uuid4().hex[:6].upper()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(generate_city(sites, seed), Dumper=dumper, sort_keys=False)
    text = text.replace("WC-", f"WC{tag}-").replace("TS-", f"TS{tag}-")
    path = directory / f"city-{tag}.yaml"
    path.write_text(text)
    return CityFile(path, Registry.load(path))


def simulate_cmd(broker: Any, city: CityFile, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "simulators", "--host", broker.host, "--port", str(broker.port),
        "--registry", str(city.path), "--quiet", *args,
    ]  # fmt: skip


def simulator_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}


ROOT_DIR = Path(__file__).resolve().parents[2]


@dataclass
class SecureMosquitto(Mosquitto):
    """A mosquitto that wants a password and, given a certificate, speaks only TLS."""

    password_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def command(self) -> list[str]:
        cmd = super().command()
        conf = self.data_dir / "mosquitto.conf"
        text = conf.read_text()
        if self.password_file:
            text = text.replace("allow_anonymous true", "allow_anonymous false")
            text += f"password_file {self.password_file}\n"
        if self.certfile and self.keyfile:
            text += f"certfile {self.certfile}\nkeyfile {self.keyfile}\n"
        conf.write_text(text)
        return cmd


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.crt, server.crt, server.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl = ["openssl"]
    quiet: dict[str, Any] = {"check": True, "capture_output": True}
    subprocess.run([*openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(ca_key), "-out", str(ca_crt), "-days", "2", "-subj", "/CN=sim-test-ca"],
                   **quiet)  # fmt: skip
    subprocess.run([*openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=127.0.0.1"], **quiet)  # fmt: skip
    subprocess.run([*openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey",
                    str(ca_key), "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile",
                    str(ext)], **quiet)  # fmt: skip
    return ca_crt, crt, key
