"""Real servers for the tests: mosquitto, influxd and victoria-metrics on free loopback
ports with temporary data directories, and `run_ingest` to run the real `sanitel ingest`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sanitel.local_servers import (
    Alertmanager,
    Influxd,
    Mosquitto,
    ServerError,
    VictoriaMetrics,
)

ROOT = Path(__file__).resolve().parent.parent
SANITEL = [sys.executable, "-m", "sanitel.cli"]


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of each test's own (it starts in a few ms): retained messages and
    persistent sessions of one test never reach another."""
    with Mosquitto(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    with Influxd(tmp_path_factory.mktemp("influxd")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path_factory.mktemp("victoria")) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    """An Alertmanager of this test's own (alerts and silences of one test stay there),
    routing everything to a receiver that sends nothing; `.config` + `restart()` changes it."""
    with Alertmanager(tmp_path / "alertmanager") as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of this test's own, for tests that stop or restart it."""
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fresh_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test's own, for tests that stop or restart it."""
    with Influxd(tmp_path / "influxd") as server:
        yield server  # type: ignore[misc]


class _UserlessInfluxd(Influxd):
    def _create_admin(self) -> None:
        """Left to the code under test (InfluxDB lets anyone create the first admin)."""


@pytest.fixture
def userless_auth_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of this test's own with `[http] auth-enabled = true` and no user yet."""
    with _UserlessInfluxd(tmp_path / "influxd-auth", auth_enabled=True) as server:
        yield server  # type: ignore[misc]


SMALL_CITY: dict[str, Any] = {
    "sites": [
        {
            "id": "WC-0001", "kind": "toilet", "name": "People's Park North",
            "district": "Jinjiang", "lat": 30.657, "lon": 104.066,
            "devices": [
                {"id": "WC-0001-PC-1", "type": "people_counter", "interval_s": 60},
                {"id": "WC-0001-OD-1", "type": "odor", "interval_s": 60},
                {"id": "WC-0001-SP-1", "type": "sprayer", "interval_s": 300},
            ],
        },
        {
            "id": "TS-0001", "kind": "transfer_station", "name": "Shahe Transfer Station",
            "district": "Chenghua", "lat": 30.68, "lon": 104.1,
            "devices": [
                {"id": "TS-0001-ST-1", "type": "station_terminal", "interval_s": 60},
                {"id": "TS-0001-OD-1", "type": "odor", "interval_s": 60},
            ],
        },
    ]
}


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(SMALL_CITY, sort_keys=False))
    return path


@dataclass
class IngestProcess:
    """A running `sanitel ingest` subprocess."""

    proc: subprocess.Popen[str]
    env: dict[str, str]
    database: str
    log_path: Path
    args: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def restart(self) -> IngestProcess:
        new = _spawn(self.env, self.database, self.log_path, self.args)
        self.proc = new.proc
        return self

    def wait_log(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the ingest log:\n{self.log()[-4000:]}")


def _spawn(env: dict[str, str], database: str, log_path: Path, args: list[str]) -> IngestProcess:
    log = log_path.open("a")
    proc = subprocess.Popen(
        [*SANITEL, "ingest", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    log.close()
    handle = IngestProcess(proc, env, database, log_path, args)
    handle.wait_log("sanitel ingest: started")
    return handle


@pytest.fixture
def run_ingest(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, registry_file: Path
) -> Iterator[Callable[..., IngestProcess]]:
    """Start the real `sanitel ingest` against the session's servers.

    Each call gets its own database and MQTT client id unless given; keyword
    arguments become `SANITEL_*` variables (`mqtt__port=...` -> `SANITEL_MQTT__PORT`).
    """
    started: list[IngestProcess] = []

    def start(*args: str, **settings: Any) -> IngestProcess:
        database = settings.pop("influx__database", f"t_{uuid.uuid4().hex[:10]}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
        values: dict[str, Any] = {
            "mqtt__host": mosquitto.host, "mqtt__port": mosquitto.port,
            "mqtt__client_id": f"ingest-{uuid.uuid4().hex[:8]}",
            "influx__url": influxd.url, "influx__database": database,
            "registry": registry_file, "data_dir": tmp_path / f"data-{len(started)}",
            "pipeline__stats_interval_s": 1, "spool__retry_min_s": 0.2,
            "spool__retry_max_s": 1, "http__port": 0,
        }
        values.update(settings)
        env.update({f"SANITEL_{k.upper()}": str(v) for k, v in values.items()})
        handle = _spawn(env, database, tmp_path / f"ingest-{len(started)}.log", list(args))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        if handle.proc.poll() is None:
            handle.kill()


class MqttTestClient:
    """A plain paho client for tests: publish and wait, subscribe and collect."""

    def __init__(self, host: str, port: int) -> None:
        import threading

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def publish(self, topic: str, payload: bytes | str | dict[str, Any], qos: int = 1,
                retain: bool = False) -> None:
        import json

        if isinstance(payload, dict):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def subscribe(self, topic_filter: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(10), f"no SUBACK for {topic_filter}"

    def wait_for(self, predicate: Callable[[list[tuple[str, bytes, bool]]], bool],
                 timeout: float = 15) -> list[tuple[str, bytes, bool]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.messages)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.05)
        raise AssertionError(f"condition not met in {timeout} s; got {snapshot[-10:]}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt(mosquitto: Mosquitto) -> Iterator[MqttTestClient]:
    client = MqttTestClient(mosquitto.host, mosquitto.port)
    yield client
    client.close()


def rows_or_none_yet(influxd: Any, query: str, db: str) -> list[dict[str, Any]]:
    """The rows of `query`; [] while there can be none yet (the database not created yet,
    influxd restarting). Any other error (a bad query, a refused request) fails the test
    rather than reading as "no rows"."""
    try:
        rows: list[dict[str, Any]] = influxd.rows(query, db)
    except ServerError as exc:
        if "database not found" in str(exc):
            return []
        raise
    except httpx.TransportError:
        return []
    return rows


def wait_rows(influxd: Influxd, query: str, db: str, count: int = 1,
              timeout: float = 15) -> list[dict[str, Any]]:
    """Poll an InfluxQL query until it returns at least `count` rows."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = rows_or_none_yet(influxd, query, db)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{query!r} returned {len(rows)} rows, wanted {count}: {rows[:5]}")


@pytest.fixture
def rows_of(influxd: Influxd) -> Callable[..., list[dict[str, Any]]]:
    """`rows_of(query, db, count=1, timeout=15)`: wait for rows in the session's influxd."""
    return lambda query, db, count=1, timeout=15: wait_rows(influxd, query, db, count, timeout)


@pytest.fixture
def ingest_for_hostile(run_ingest: Callable[..., IngestProcess]) -> IngestProcess:
    return run_ingest()


@pytest.fixture
def mqtt_dlq(mqtt: MqttTestClient) -> MqttTestClient:
    mqtt.subscribe("sanitation/v1/_dlq/#")
    return mqtt
