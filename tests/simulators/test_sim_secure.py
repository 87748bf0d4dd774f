"""Username/password (from the environment, never printed) and TLS against real mosquitto."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    ROOT_DIR,
    SecureMosquitto,
    make_certificates,
    simulate_cmd,
    simulator_env,
    unique_city,
)

SECRET = "s3cret-Pa55-word"


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[SecureMosquitto]:
    if not shutil.which("mosquitto_passwd"):
        pytest.skip("mosquitto_passwd is not installed")
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "simuser", SECRET], check=True)
    with SecureMosquitto(tmp_path / "broker", password_file=passwords) as broker:
        yield broker


def _simulate(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=ROOT_DIR,
        env={**simulator_env(), **env},
    )  # fmt: skip


def test_password_from_the_environment_is_used_and_never_printed(
    locked_broker: SecureMosquitto, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=3)
    tally = tmp_path / "tally.json"
    cmd = simulate_cmd(locked_broker, city, "--once", "--username", "simuser",
                       "--tally-file", str(tally))  # fmt: skip
    cmd.remove("--quiet")
    done = _simulate(cmd, SANITEL_MQTT__PASSWORD=SECRET)
    assert done.returncode == 0, done.stderr
    assert json.loads(tally.read_text())["messages"] == len(city.device_ids)
    assert SECRET not in done.stdout + done.stderr


def test_a_wrong_password_is_refused_by_name_without_echoing_it(
    locked_broker: SecureMosquitto, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=2)
    cmd = simulate_cmd(locked_broker, city, "--once", "--username", "simuser")
    done = _simulate(cmd, SANITEL_MQTT__PASSWORD="wrong-guess-123")
    assert done.returncode == 1
    assert f"MQTT broker 127.0.0.1:{locked_broker.port} refused us" in done.stderr
    assert "wrong-guess-123" not in done.stdout + done.stderr


def test_tls_with_a_ca_file(tmp_path: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    ca, crt, key = make_certificates(tmp_path / "certs")
    city = unique_city(tmp_path, sites=3)
    tally = tmp_path / "tally.json"
    with SecureMosquitto(tmp_path / "broker", certfile=crt, keyfile=key) as broker:
        ok = _simulate(simulate_cmd(broker, city, "--once", "--tls", "--ca-file", str(ca),
                                    "--tally-file", str(tally)))  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert json.loads(tally.read_text())["messages"] == len(city.device_ids)
        # Without the CA the server's certificate cannot be trusted.
        bad = _simulate(simulate_cmd(broker, city, "--once", "--tls"))
        assert bad.returncode == 1
        assert f"127.0.0.1:{broker.port}" in bad.stderr


def test_sanitel_simulate_is_the_same_command(tmp_path: Path) -> None:
    out = tmp_path / "city.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "sanitel.cli", "simulate", "--sites", "4", "--write-registry",
         str(out), "--dry-run"],
        capture_output=True, text=True, timeout=60, cwd=ROOT_DIR, env=simulator_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text().count("kind: ") == 4
