"""`python -m simulators` (the same command as `sanitel simulate`) against a real mosquitto."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sanitel.local_servers import Mosquitto, free_port

from .conftest import ROOT_DIR, CityFile, simulate_cmd, simulator_env, unique_city

Seen = list[tuple[str, bytes, bool]]


def _kind(topic: str) -> str:
    return topic.rsplit("/", 1)[-1]


def _device(topic: str) -> str:
    return topic.split("/")[4]


def _ours(messages: Seen, city: CityFile, kind: str) -> Seen:
    def mine(topic: str) -> bool:
        # Unknown-device faults publish under one of our sites with a made-up device id.
        parts = topic.split("/")
        return parts[4] in city.device_ids or parts[2] in city.registry.sites

    return [m for m in messages if _kind(m[0]) == kind and mine(m[0])]


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT_DIR, env=simulator_env()
    )


@pytest.mark.parametrize("connections", ["per-device", "gateway"])
def test_once_publishes_one_reading_per_device_and_retained_status(
    mosquitto: Mosquitto, mqtt: Any, tmp_path: Path, connections: str
) -> None:
    city = unique_city(tmp_path, sites=8)
    mqtt.subscribe("sanitation/v1/#")
    done = _run(simulate_cmd(mosquitto, city, "--once", "--connections", connections))
    assert done.returncode == 0, done.stderr
    seen = mqtt.wait_for(lambda m: len(_ours(m, city, "telemetry")) >= len(city.device_ids))
    time.sleep(0.3)  # anything extra would have arrived by now
    telemetry = _ours(mqtt.messages, city, "telemetry")
    assert Counter(_device(t) for t, _, _ in telemetry) == dict.fromkeys(city.device_ids, 1)
    for topic, payload, _ in telemetry:
        device = city.registry.devices[_device(topic)]
        assert topic == f"sanitation/v1/{device.site.id}/{device.type}/{device.id}/telemetry"
        assert json.loads(payload)["device_id"] == device.id
    online = _ours(seen, city, "status")
    assert {_device(t) for t, _, _ in online} == city.device_ids

    # A subscriber that comes later gets every device's status, retained.
    late = type(mqtt)(mosquitto.host, mosquitto.port)
    try:
        late.subscribe("sanitation/v1/+/+/+/status")
        retained = late.wait_for(lambda m: len(_ours(m, city, "status")) >= len(city.device_ids))
        ours = _ours(retained, city, "status")
        assert all(retain and json.loads(p) == {"online": True} for _, p, retain in ours)
    finally:
        late.close()


def test_sigint_stops_cleanly_and_the_tally_matches_what_was_sent(
    mosquitto: Mosquitto, mqtt: Any, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=10, seed=2)
    tally_file = tmp_path / "tally.json"
    mqtt.subscribe("sanitation/v1/#")
    cmd = simulate_cmd(
        mosquitto, city, "--speed", "600", "--faults", "0.2", "--seed", "3",
        "--tally-file", str(tally_file), "--connections", "gateway",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT_DIR, env=simulator_env(), stderr=subprocess.PIPE)
    try:
        mqtt.wait_for(lambda m: len(_ours(m, city, "telemetry")) >= 300, timeout=30)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    tally = json.loads(tally_file.read_text())
    assert tally["status_offline"] >= len(city.device_ids)
    seen = mqtt.wait_for(
        lambda m: (
            len(_ours(m, city, "telemetry")) >= tally["messages"]
            and len(_ours(m, city, "status")) >= tally["status_online"] + tally["status_offline"]
        )
    )
    time.sleep(0.3)
    seen = mqtt.messages
    assert len(_ours(seen, city, "telemetry")) == tally["messages"]
    statuses = Counter(json.loads(p)["online"] for _, p, _ in _ours(seen, city, "status"))
    assert statuses == {True: tally["status_online"], False: tally["status_offline"]}
    assert sum(tally["rejected"].values()) > 0 and tally["stored"] > 0


def test_a_killed_device_leaves_its_last_will(
    mosquitto: Mosquitto, mqtt: Any, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=4)
    mqtt.subscribe("sanitation/v1/+/+/+/status")
    cmd = simulate_cmd(mosquitto, city, "--duration", "60", "--connections", "per-device")
    proc = subprocess.Popen(cmd, cwd=ROOT_DIR, env=simulator_env())
    try:
        mqtt.wait_for(lambda m: len(_ours(m, city, "status")) >= len(city.device_ids))
    finally:
        proc.kill()
        proc.wait(10)
    seen = mqtt.wait_for(lambda m: len(_ours(m, city, "status")) >= 2 * len(city.device_ids))
    offline = {_device(t) for t, p, _ in _ours(seen, city, "status") if not json.loads(p)["online"]}
    assert offline == city.device_ids


def test_simulator_rides_out_a_broker_restart(fresh_mosquitto: Mosquitto, tmp_path: Path) -> None:
    city = unique_city(tmp_path, sites=6, seed=4)
    tally_file = tmp_path / "tally.json"
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: set[bytes] = set()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="sim-restart-sub", clean_session=False)
    sub.on_message = lambda c, u, msg: (
        got.add(bytes(msg.payload)) if _kind(msg.topic) == "telemetry" else None
    )
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("sanitation/v1/#", qos=1)
    sub.reconnect_delay_set(1, 1)
    sub.connect(fresh_mosquitto.host, fresh_mosquitto.port)
    sub.loop_start()
    cmd = simulate_cmd(
        fresh_mosquitto, city, "--speed", "300", "--tally-file", str(tally_file),
        "--connections", "gateway",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT_DIR, env=simulator_env())
    try:
        time.sleep(2)
        before = len(got)
        fresh_mosquitto.stop()
        time.sleep(2)
        fresh_mosquitto.start()
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    tally = json.loads(tally_file.read_text())
    deadline = time.monotonic() + 15
    while len(got) < tally["messages"] and time.monotonic() < deadline:
        time.sleep(0.1)
    sub.disconnect()
    sub.loop_stop()
    assert before > 0
    assert len(got) == tally["messages"]  # every reading, the outage's included


def test_unreachable_broker_is_named_and_exits_1(tmp_path: Path) -> None:
    city = unique_city(tmp_path, sites=2)
    port = free_port()
    broker = Mosquitto(tmp_path, port=port)
    done = _run(simulate_cmd(broker, city, "--once"))
    assert done.returncode == 1
    assert f"MQTT broker 127.0.0.1:{port}" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "bogus=0.1"], "unknown kind 'bogus'"),
        (["--start", "soon"], "--start 'soon' is not an ISO 8601 time"),
        (["--sites", "3"], "give --registry or --sites, not both"),
        (["--connections", "many"], "--connections 'many'"),
    ],
)
def test_bad_options_say_what_is_wrong_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    city = unique_city(tmp_path, sites=2)
    broker = Mosquitto(tmp_path, port=free_port())
    done = _run(simulate_cmd(broker, city, *args))
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_registry_is_named(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "simulators", "--registry", str(tmp_path / "nope.yaml")])
    assert done.returncode == 2
    assert f"registry file {tmp_path / 'nope.yaml'}: cannot be read" in done.stderr


def test_registry_from_the_environment_unless_sites_is_given(tmp_path: Path) -> None:
    city = unique_city(tmp_path, sites=5)
    env = {**simulator_env(), "SANITEL_REGISTRY": str(city.path)}
    run = [sys.executable, "-m", "simulators", "--dry-run"]
    done = subprocess.run(run, capture_output=True, text=True, cwd=ROOT_DIR, env=env)
    assert f"{len(city.device_ids)} devices at 5 sites" in done.stderr
    done = subprocess.run([*run, "--sites", "7"], capture_output=True, text=True, cwd=ROOT_DIR,
                          env=env)  # fmt: skip
    assert done.returncode == 0 and "at 7 sites" in done.stderr


def test_sites_writes_the_city_and_dry_run_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "city.yaml"
    cmd = [
        sys.executable, "-m", "simulators", "--sites", "25", "--seed", "9", "--write-registry",
        str(out), "--dry-run",
    ]  # fmt: skip
    done = _run(cmd)
    assert done.returncode == 0, done.stderr
    assert "at 25 sites" in done.stderr
    from devices.sites import Registry

    assert len(Registry.load(out).sites) == 25


def test_run_city_from_the_library(mosquitto: Mosquitto, mqtt: Any, tmp_path: Path) -> None:
    import asyncio

    from simulators.clock import wall_ms
    from simulators.engine import Simulator
    from simulators.live import run_city
    from simulators.publisher import BrokerOptions

    city = unique_city(tmp_path, sites=5, seed=8)
    mqtt.subscribe("sanitation/v1/#")
    sim = Simulator(city.registry, seed=1, start_ms=wall_ms() - 3_600_000, wall_clock=wall_ms)
    broker = BrokerOptions(mosquitto.host, mosquitto.port)
    tally = asyncio.run(run_city(sim, broker, speed=3_600, readings=200))
    assert tally.messages == tally.stored == 200
    seen = mqtt.wait_for(lambda m: len(_ours(m, city, "telemetry")) >= 200)
    time.sleep(0.3)
    assert len(_ours(mqtt.messages, city, "telemetry")) == 200
    offline = [p for _, p, _ in _ours(seen + mqtt.messages, city, "status") if b"false" in p]
    assert len(offline) >= len(city.device_ids)


def test_one_process_drives_ten_thousand_devices(
    mosquitto: Mosquitto, mqtt: Any, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=3_600, seed=10)
    assert len(city.device_ids) >= 10_000
    mqtt.subscribe("sanitation/v1/+/+/+/telemetry")
    done = _run(simulate_cmd(mosquitto, city, "--once"), timeout=120)
    assert done.returncode == 0, done.stderr
    seen = mqtt.wait_for(lambda m: len(_ours(m, city, "telemetry")) >= len(city.device_ids), 60)
    assert {_device(t) for t, _, _ in _ours(seen, city, "telemetry")} == city.device_ids


def test_same_seed_same_traffic_on_the_wire(
    mosquitto: Mosquitto, mqtt: Any, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=6, seed=11)
    mqtt.subscribe("sanitation/v1/+/+/+/telemetry")
    args = ["--start", "2026-11-24T07:00:00+08:00", "--speed", "100000", "--count", "400",
            "--faults", "0.2", "--connections", "gateway", "--gateways", "1"]  # fmt: skip
    runs = []
    for seed in ("5", "5", "6"):
        before = len(_ours(mqtt.messages, city, "telemetry"))
        done = _run(simulate_cmd(mosquitto, city, "--seed", seed, *args))
        assert done.returncode == 0, done.stderr
        time.sleep(0.5)
        runs.append([(t, p) for t, p, _ in _ours(mqtt.messages, city, "telemetry")[before:]])
    assert len(runs[0]) >= 400

    # One gateway connection keeps the order; clock-skew faults depend on the wall clock.
    def stable(run: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(t, p) for t, p in run if b'"ts":' not in p or json_ts_ok(p)]

    assert stable(runs[0]) == stable(runs[1])
    assert stable(runs[0]) != stable(runs[2])


def json_ts_ok(payload: bytes) -> bool:
    """False for a clock-skew fault: `ts` well past the simulated day."""
    try:
        return int(json.loads(payload)["ts"]) < 1_795_564_800_000  # 2026-11-25T00:00Z
    except (ValueError, KeyError, TypeError):
        return True


def test_a_second_ctrl_c_quits_while_the_broker_is_away(
    fresh_mosquitto: Mosquitto, tmp_path: Path
) -> None:
    city = unique_city(tmp_path, sites=50)
    tally_file = tmp_path / "tally.json"
    cmd = simulate_cmd(fresh_mosquitto, city, "--speed", "100000", "--connections", "gateway",
                       "--tally-file", str(tally_file))  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT_DIR, env=simulator_env(), stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)
        fresh_mosquitto.stop()
        time.sleep(4)  # the unacknowledged messages pile up to the backpressure limit
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
    finally:
        proc.kill()
    assert proc.stderr is not None
    assert b"interrupted: some messages may not have reached the broker" in proc.stderr.read()
    assert json.loads(tally_file.read_text())["messages"] > 0
