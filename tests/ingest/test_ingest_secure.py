"""`sanitel ingest` against a broker that wants a password and speaks only TLS."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.simulators.conftest import SecureMosquitto, make_certificates

SECRET = "n0t-in-any-log"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[SecureMosquitto, Path]]:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "sanitel", SECRET],
                   check=True)
    ca, cert, key = make_certificates(tmp_path / "certs")
    with SecureMosquitto(tmp_path / "broker", password_file=passwords, certfile=cert,
                         keyfile=key) as broker:
        yield broker, ca  # type: ignore[misc]


def test_password_and_tls_to_the_broker(
    tls_broker: tuple[SecureMosquitto, Path], run_ingest: Callable[..., Any],
    rows_of: Callable[..., Any],
) -> None:
    broker, ca = tls_broker
    ingest = run_ingest(mqtt__port=broker.port, mqtt__host="127.0.0.1", mqtt__tls="true",
                        mqtt__ca_file=ca, mqtt__username="sanitel", mqtt__password=SECRET)
    assert "connected to mqtt://127.0.0.1" in ingest.log()
    device = paho.Client(CallbackAPIVersion.VERSION2, client_id="device")
    device.username_pw_set("sanitel", SECRET)
    device.tls_set(ca_certs=str(ca))
    device.connect("127.0.0.1", broker.port)
    device.loop_start()
    ts = int(time.time() * 1000) - 1000
    device.publish("sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry",
                   json.dumps({"nh3_ppm": 0.5, "ts": ts}), qos=1).wait_for_publish(10)
    device.disconnect()
    device.loop_stop()
    rows = rows_of("SELECT nh3_ppm FROM odor", ingest.database)
    assert rows[0]["time"] == ts and rows[0]["nh3_ppm"] == 0.5
    assert ingest.stop() == 0
    assert SECRET not in ingest.log()
