"""SPEC section 8 on a real mosquitto 2.0 with the files of `sanitel access init`, and the
real `sanitel ingest` connected with its own account (access.enabled)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.credentials import Account, read_credentials
from devices.crews import Crews
from devices.sites import Registry
from sanitel.access.build import init_access
from sanitel.local_servers import Influxd, Mosquitto

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_broker import ACCEPTED, BAD_USER_OR_PASSWORD, NOT_AUTHORIZED, Client, connect_as

from tests.conftest import wait_rows

T = "sanitation/v1"
PC = f"{T}/WC-0001/people_counter/WC-0001-PC-1"
OD = f"{T}/WC-0001/odor/WC-0001-OD-1"
ST = f"{T}/TS-0001/station_terminal/TS-0001-ST-1"
CREWS = {"crews": [{"name": "crew-jinjiang", "districts": ["Jinjiang"]},
                   {"name": "crew-chenghua", "districts": ["Chenghua"]}]}


class Secured:
    def __init__(self, out: Path, registry: Path, crews: Path) -> None:
        self.out, self.registry_path, self.crews_path = out, registry, crews

    def init(self, **kwargs: Any) -> None:
        init_access(self.out, Registry.load(self.registry_path), Crews.load(self.crews_path),
                    **kwargs)

    def account(self, username: str) -> Account:
        return next(a for a in read_credentials(self.out / "credentials.csv")
                    if a.username == username)


@pytest.fixture
def secured(tmp_path: Path, registry_file: Path) -> Secured:
    crews = tmp_path / "crews.yaml"
    crews.write_text(yaml.safe_dump(CREWS))
    files = Secured(tmp_path / "access", registry_file, crews)
    files.init(gateways=True)
    return files


@pytest.fixture
def mosquitto(tmp_path: Path, secured: Secured) -> Iterator[Mosquitto]:
    """This module's broker: the lines `sanitel access init` wrote, nothing else about
    access (overrides the anonymous broker of conftest, so `run_ingest` uses this one)."""
    conf = (secured.out / "mosquitto.conf").read_text()
    with Mosquitto(tmp_path / "mosquitto", extra_conf=conf) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def clients(mosquitto: Mosquitto, secured: Secured) -> Iterator[Callable[..., Client]]:
    opened: list[Client] = []

    def make(username: str, **kwargs: Any) -> Client:
        client = connect_as(mosquitto.port, secured.account(username), **kwargs)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture
def ingest(run_ingest: Callable[..., Any], secured: Secured) -> Any:
    return run_ingest(access__enabled="true", access__credentials=secured.out / "credentials.csv",
                      crews=secured.crews_path)


def reading(entries: int) -> bytes:
    return json.dumps({"entries": entries, "ts": int(time.time() * 1000)}).encode()


def test_anonymous_and_wrong_passwords_are_refused(mosquitto: Mosquitto, secured: Secured) -> None:
    anonymous = Client(mosquitto.port)
    assert anonymous.connack == NOT_AUTHORIZED
    wrong = Client(mosquitto.port, "WC-0001-PC-1", secured.account("WC-0001-OD-1").password)
    assert wrong.connack in (NOT_AUTHORIZED, BAD_USER_OR_PASSWORD)
    nobody = Client(mosquitto.port, "WC-9999-PC-1", "guess")
    assert nobody.connack in (NOT_AUTHORIZED, BAD_USER_OR_PASSWORD)
    for client in (anonymous, wrong, nobody):
        client.close()


def test_a_device_writes_only_its_own_topics_and_nothing_else_is_stored(
    clients: Callable[..., Client], ingest: Any, influxd: Influxd
) -> None:
    counter = clients("WC-0001-PC-1")
    assert counter.publish(f"{PC}/telemetry", reading(7)) in ACCEPTED
    # Spoofing another device of its site, of another site, a platform topic, a command.
    assert counter.publish(f"{OD}/telemetry", json.dumps({"nh3_ppm": 99}).encode()) == \
        NOT_AUTHORIZED
    assert counter.publish(f"{ST}/telemetry", json.dumps({"fill_pct": 99}).encode()) == \
        NOT_AUTHORIZED
    assert counter.publish(f"{T}/_alerts/WC-0001/WC-0001-OD-1/x", b"{}") == NOT_AUTHORIZED
    assert counter.publish(f"{T}/_ack/crew-jinjiang", b'{"alert_id": "x"}') == NOT_AUTHORIZED
    assert counter.publish(f"{PC}/cmd", b"{}") == NOT_AUTHORIZED
    assert counter.publish(f"{PC}/telemetry", reading(8)) in ACCEPTED
    rows = wait_rows(influxd, "SELECT entries FROM people_flow", ingest.database, 2)
    time.sleep(1.0)
    assert sorted(r["entries"] for r in influxd.rows("SELECT entries FROM people_flow",
                                                      ingest.database)) == [7, 8]
    assert rows and influxd.rows("SELECT * FROM odor", ingest.database) == []
    assert influxd.rows("SELECT * FROM station", ingest.database) == []


def test_a_device_reads_only_its_own_commands(clients: Callable[..., Client]) -> None:
    nosy = clients("WC-0001-OD-1")
    nosy.subscribe(f"{T}/#")
    nosy.subscribe("#")
    nosy.subscribe("$SYS/#")  # the broker's own figures name every connected client
    other = clients("WC-0001-PC-1")
    assert other.publish(f"{PC}/status", b'{"online": true}', retain=True) in ACCEPTED
    assert other.publish(f"{PC}/telemetry", reading(3)) in ACCEPTED
    ingest_like = clients("sanitel-ingest")
    assert ingest_like.publish(f"{T}/_alerts/WC-0001/WC-0001-PC-1/r", b"{}") in ACCEPTED
    assert ingest_like.publish(f"{OD}/cmd", b"{}") == NOT_AUTHORIZED  # no one commands yet
    late = clients("WC-0001-SP-1")  # retained messages at subscribe time are filtered too
    late.subscribe(f"{T}/#")
    time.sleep(1.0)
    assert nosy.received() == [] and late.received() == []


def test_with_device_patterns_a_device_still_writes_only_its_own_id(
    tmp_path: Path, secured: Secured
) -> None:
    secured.init(device_patterns=True)
    acl = (secured.out / "acl").read_text()
    assert "user WC-0001-OD-1" not in acl and "pattern write sanitation/v1/+/+/%u/telemetry" in acl
    conf = (secured.out / "mosquitto.conf").read_text()
    with Mosquitto(tmp_path / "patterns", extra_conf=conf) as broker:
        device = connect_as(broker.port, secured.account("WC-0001-PC-1"))
        assert device.publish(f"{PC}/telemetry", reading(1)) in ACCEPTED
        assert device.publish(f"{OD}/telemetry", b'{"nh3_ppm": 9}') == NOT_AUTHORIZED
        assert device.publish(f"{T}/_ack/crew-jinjiang", b'{"alert_id": "x"}') == NOT_AUTHORIZED
        device.subscribe(f"{T}/#")
        crew = connect_as(broker.port, secured.account("crew-jinjiang"))
        assert crew.publish(f"{OD}/telemetry", b'{"nh3_ppm": 9}') == NOT_AUTHORIZED
        assert crew.publish(f"{T}/_ack/crew-jinjiang", b'{"alert_id": "x"}') in ACCEPTED
        other = connect_as(broker.port, secured.account("WC-0001-OD-1"))
        assert other.publish(f"{OD}/telemetry", b'{"nh3_ppm": 1}') in ACCEPTED
        time.sleep(0.5)
        assert device.received() == []
        for client in (device, crew, other):
            client.close()


def test_a_gateway_speaks_for_its_site_only(clients: Callable[..., Client]) -> None:
    gateway = clients("WC-0001-gw")
    assert gateway.publish(f"{PC}/telemetry", reading(1)) in ACCEPTED
    assert gateway.publish(f"{OD}/status", b'{"online": true}', retain=True) in ACCEPTED
    assert gateway.publish(f"{ST}/telemetry", b'{"fill_pct": 1}') == NOT_AUTHORIZED


def test_crews_read_their_districts_and_ack_only_as_themselves(
    clients: Callable[..., Client], ingest: Any, influxd: Influxd
) -> None:
    jinjiang, chenghua = clients("crew-jinjiang"), clients("crew-chenghua")
    for crew in (jinjiang, chenghua):
        crew.subscribe(f"{T}/_alerts/#")
    # A device that says goodbye is `offline` at once (SPEC section 6): one alert per site.
    clients("WC-0001-OD-1").publish(f"{OD}/status", b'{"online": false}', retain=True)
    clients("TS-0001-ST-1").publish(f"{ST}/status", b'{"online": false}', retain=True)
    wc = _first_event(jinjiang, "WC-0001-OD-1")
    ts = _first_event(chenghua, "TS-0001-ST-1")
    time.sleep(0.5)
    assert {json.loads(p)["site_id"] for _, p, _ in jinjiang.received()} == {"WC-0001"}
    assert {json.loads(p)["site_id"] for _, p, _ in chenghua.received()} == {"TS-0001"}

    # Impersonation is refused by the broker: another crew's topic, the v1 topic.
    assert jinjiang.publish(f"{T}/_ack/crew-chenghua", _ack(ts)) == NOT_AUTHORIZED
    assert jinjiang.publish(f"{T}/_ack", _ack(ts, by="crew-chenghua")) == NOT_AUTHORIZED
    # Its own topic, an alert outside its districts: delivered, ignored and logged.
    assert chenghua.publish(f"{T}/_ack/crew-chenghua", _ack(wc)) in ACCEPTED
    ingest.wait_log(f"ack of alert {wc['alert_id']} on {T}/_ack/crew-chenghua ignored")
    # Its own topic, its own district, a payload naming someone else: the topic wins.
    assert jinjiang.publish(f"{T}/_ack/crew-jinjiang", _ack(wc, by="crew-chenghua")) in ACCEPTED
    acked = _wait_state(jinjiang, wc["alert_id"], "acknowledged")
    assert acked["acknowledged_by"] == "crew-jinjiang"
    rows = wait_rows(influxd, "SELECT acknowledged_by FROM alerts WHERE state = 'acknowledged'",
                     ingest.database)
    assert [r["acknowledged_by"] for r in rows] == ["crew-jinjiang"]
    states = [json.loads(p)["state"] for _, p, _ in jinjiang.received()
              if json.loads(p)["alert_id"] == wc["alert_id"]]
    assert states == ["firing", "acknowledged"]  # chenghua's ack changed nothing


def _ack(event: dict[str, Any], by: str | None = None) -> bytes:
    body = {"alert_id": event["alert_id"], **({"by": by} if by else {})}
    return json.dumps(body).encode()


def _first_event(crew: Client, device_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, payload, _ in crew.received():
            event: dict[str, Any] = json.loads(payload)
            if event["device_id"] == device_id:
                return event
        time.sleep(0.05)
    raise AssertionError(f"no alert for {device_id}: {crew.received()}")


def _wait_state(crew: Client, alert_id: str, state: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, payload, _ in crew.received():
            event: dict[str, Any] = json.loads(payload)
            if event["alert_id"] == alert_id and event["state"] == state:
                return event
        time.sleep(0.05)
    raise AssertionError(f"alert {alert_id} never {state}: {crew.received()}")


def test_a_rotated_password_works_after_sighup_and_the_old_one_does_not(
    mosquitto: Mosquitto, secured: Secured
) -> None:
    old = secured.account("WC-0001-PC-1")
    untouched = secured.account("WC-0001-OD-1")
    thief = connect_as(mosquitto.port, old)  # connected with the credential before rotation
    secured.init(rotate=["WC-0001-PC-1"])
    new = secured.account("WC-0001-PC-1")
    assert new.password != old.password
    assert secured.account("WC-0001-OD-1").password == untouched.password
    mosquitto.reload()
    deadline = time.monotonic() + 10
    while Client(mosquitto.port, old.username, old.password).connack == 0:
        assert time.monotonic() < deadline, "the old password still works after SIGHUP"
        time.sleep(0.1)
    assert Client(mosquitto.port, new.username, new.password).connack == 0
    assert Client(mosquitto.port, untouched.username, untouched.password).connack == 0
    # mosquitto 2.0 also ends the open session of the old password, and refuses its reconnect
    while thief.client.is_connected() or thief.connack == 0:
        assert time.monotonic() < deadline + 10, "the old password's session outlived SIGHUP"
        time.sleep(0.1)
    thief.client.loop_stop()


def test_a_device_removed_from_the_registry_loses_its_account_on_sighup(
    mosquitto: Mosquitto, secured: Secured
) -> None:
    gone = secured.account("TS-0001-ST-1")
    city = yaml.safe_load(secured.registry_path.read_text())
    city["sites"] = city["sites"][:1]
    secured.registry_path.write_text(yaml.safe_dump(city))
    crews = yaml.safe_load(secured.crews_path.read_text())
    crews["crews"] = crews["crews"][:1]
    secured.crews_path.write_text(yaml.safe_dump(crews))
    secured.init()
    mosquitto.reload()
    time.sleep(0.5)
    assert Client(mosquitto.port, gone.username, gone.password).connack != 0
    assert connect_as(mosquitto.port, secured.account("WC-0001-PC-1")).connack == 0


def test_ingest_in_a_shared_group_still_receives(
    clients: Callable[..., Client], run_ingest: Callable[..., Any], secured: Secured,
    influxd: Influxd,
) -> None:
    ingest = run_ingest(access__enabled="true", mqtt__shared_group="ingest",
                        access__credentials=secured.out / "credentials.csv",
                        crews=secured.crews_path)
    ingest.wait_log("subscribed to")
    assert clients("WC-0001-PC-1").publish(f"{PC}/telemetry", reading(5)) in ACCEPTED
    assert wait_rows(influxd, "SELECT entries FROM people_flow", ingest.database)[0]["entries"] == 5
    log = ingest.log()
    assert "$share/ingest/" in log
    assert secured.account("sanitel-ingest").password not in log


SANITEL = [sys.executable, "-m", "sanitel.cli"]


def _sanitel(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SANITEL, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.mark.parametrize("connections", ["per-device", "gateway"])
def test_simulate_connects_every_device_with_its_own_account(
    connections: str, mosquitto: Mosquitto, secured: Secured, ingest: Any, influxd: Influxd,
) -> None:
    creds = secured.out / "credentials.csv"
    result = _sanitel("simulate", "--host", "127.0.0.1", "--port", str(mosquitto.port),
                      "--registry", str(secured.registry_path), "--credentials", str(creds),
                      "--connections", connections, "--once", "--quiet")
    assert result.returncode == 0, result.stderr
    counts = {m: len(wait_rows(influxd, f"SELECT * FROM {m}", ingest.database, n))
              for m, n in (("people_flow", 1), ("odor", 2), ("sprayer", 1), ("station", 1))}
    assert counts == {"people_flow": 1, "odor": 2, "sprayer": 1, "station": 1}
    secrets_ = [a.password for a in read_credentials(creds)]
    output = result.stdout + result.stderr + ingest.log()
    assert not [s for s in secrets_ if s in output]


def test_simulate_with_a_wrong_password_is_refused(mosquitto: Mosquitto, secured: Secured,
                                                   tmp_path: Path) -> None:
    creds = (secured.out / "credentials.csv").read_text()
    right = secured.account("WC-0001-PC-1").password
    tampered = tmp_path / "stolen.csv"
    tampered.write_text(creds.replace(right, "guessed-password"))
    result = _sanitel("simulate", "--host", "127.0.0.1", "--port", str(mosquitto.port),
                      "--registry", str(secured.registry_path), "--credentials", str(tampered),
                      "--connections", "per-device", "--once", "--quiet")
    assert result.returncode == 1 and "refused" in result.stderr, result.stderr
    assert "guessed-password" not in result.stderr


def test_alerts_ack_as_a_crew(clients: Callable[..., Client], ingest: Any, secured: Secured,
                              tmp_path: Path, influxd: Influxd) -> None:
    # The CLI connects as crew-jinjiang too, which ends this connection (one connection per
    # account: the broker makes the username the client id): the ack is checked in InfluxDB.
    watcher = clients("crew-jinjiang")
    watcher.subscribe(f"{T}/_alerts/#")
    clients("WC-0001-OD-1").publish(f"{OD}/status", b'{"online": false}', retain=True)
    alert_id = _first_event(watcher, "WC-0001-OD-1")["alert_id"]
    creds = secured.out / "credentials.csv"
    ack = ["alerts", "ack", alert_id[:12], "--credentials", str(creds)]
    outside = _sanitel(*ack, "--crew", "crew-chenghua", env=ingest.env)
    assert outside.returncode == 1 and "outside crew 'crew-chenghua'" in outside.stderr
    stolen = tmp_path / "stolen.csv"
    stolen.write_text(creds.read_text().replace(secured.account("crew-jinjiang").password,
                                                secured.account("crew-chenghua").password))
    impostor = _sanitel(*ack[:3], "--credentials", str(stolen), "--crew", "crew-jinjiang",
                        env=ingest.env)
    assert impostor.returncode == 1 and "refused the connection" in impostor.stderr
    # Logged in as crew-jinjiang (mqtt.username), claiming to be crew-chenghua.
    chenghua = clients("crew-chenghua")
    chenghua.subscribe(f"{T}/_alerts/#")
    clients("TS-0001-ST-1").publish(f"{ST}/status", b'{"online": false}', retain=True)
    ts_alert = _first_event(chenghua, "TS-0001-ST-1")["alert_id"]
    env = {k: v for k, v in ingest.env.items() if k != "SANITEL_ACCESS__CREDENTIALS"}
    env |= {"SANITEL_MQTT__USERNAME": "crew-jinjiang",
            "SANITEL_MQTT__PASSWORD": secured.account("crew-jinjiang").password}
    claimed = _sanitel("alerts", "ack", ts_alert, "--crew", "crew-chenghua", env=env)
    assert claimed.returncode == 1 and "refused the ack" in claimed.stderr, claimed.stderr
    done = _sanitel(*ack, "--crew", "crew-jinjiang", env=ingest.env)
    assert done.returncode == 0, done.stderr
    rows = wait_rows(influxd, "SELECT acknowledged_by, alert_id FROM alerts WHERE "
                     "state = 'acknowledged'", ingest.database)
    assert [(r["alert_id"], r["acknowledged_by"]) for r in rows] == [(alert_id, "crew-jinjiang")]
    assert [json.loads(p)["state"] for _, p, _ in chenghua.received()] == ["firing"]
    output = "".join(r.stdout + r.stderr for r in (outside, impostor, claimed, done))
    assert not [a.username for a in read_credentials(creds) if a.password in output]


def test_no_secret_in_help_or_logs(secured: Secured, ingest: Any) -> None:
    env = {**os.environ, "SANITEL_MQTT__PASSWORD": "sekrit-from-env-123",
           "SANITEL_INFLUX__PASSWORD": "sekrit-influx-456"}
    passwords = [a.password for a in read_credentials(secured.out / "credentials.csv")]
    for command in (["--help"], ["ingest", "--help"], ["simulate", "--help"],
                    ["access", "init", "--help"], ["alerts", "ack", "--help"], ["demo", "--help"]):
        result = _sanitel(*command, env=env)
        assert result.returncode == 0, result.stderr
        text = result.stdout + result.stderr
        assert "sekrit" not in text, command
        assert not [p for p in passwords if p in text], command
    assert not [p for p in passwords if p in ingest.log()]
    assert "sanitel-ingest" in (secured.out / "passwd").read_text()


def test_a_crew_added_to_the_crews_file_may_ack_after_sighup(
    clients: Callable[..., Client], run_ingest: Callable[..., Any], secured: Secured,
    tmp_path: Path,
) -> None:
    crews_file = tmp_path / "ingest-crews.yaml"
    crews_file.write_text(yaml.safe_dump({"crews": CREWS["crews"][:1]}))  # jinjiang only
    ingest = run_ingest(access__enabled="true", crews=crews_file,
                        access__credentials=secured.out / "credentials.csv")
    chenghua = clients("crew-chenghua")
    chenghua.subscribe(f"{T}/_alerts/#")
    clients("TS-0001-ST-1").publish(f"{ST}/status", b'{"online": false}', retain=True)
    alert = _first_event(chenghua, "TS-0001-ST-1")
    assert chenghua.publish(f"{T}/_ack/crew-chenghua", _ack(alert)) in ACCEPTED
    ingest.wait_log("no crew 'crew-chenghua' in the crews file")
    crews_file.write_text(yaml.safe_dump(CREWS))
    ingest.proc.send_signal(signal.SIGHUP)
    ingest.wait_log("2 crews")
    assert chenghua.publish(f"{T}/_ack/crew-chenghua", _ack(alert)) in ACCEPTED
    assert _wait_state(chenghua, alert["alert_id"], "acknowledged")["acknowledged_by"] == \
        "crew-chenghua"


def test_no_account_can_take_over_another_accounts_session(
    clients: Callable[..., Client], ingest: Any, influxd: Influxd, mosquitto: Mosquitto,
    secured: Secured,
) -> None:
    """A device connecting with the pipeline's client id would otherwise be handed its
    persistent session (its queued readings) and kick it off again and again."""
    ingest.wait_log("subscribed to")
    client_id = ingest.env["SANITEL_MQTT__CLIENT_ID"]
    thief = secured.account("WC-0001-PC-1")
    intruder = paho_client(mosquitto.port, thief, client_id)
    assert clients("WC-0001-OD-1").publish(f"{OD}/telemetry", b'{"nh3_ppm": 1.5}') in ACCEPTED
    rows = wait_rows(influxd, "SELECT nh3_ppm FROM odor", ingest.database)
    assert [r["nh3_ppm"] for r in rows] == [1.5]
    assert "lost the broker" not in ingest.log()
    intruder.disconnect()
    intruder.loop_stop()


def test_a_last_will_on_another_devices_status_is_not_published(
    clients: Callable[..., Client], mosquitto: Mosquitto, secured: Secured
) -> None:
    assert clients("WC-0001-OD-1").publish(f"{OD}/status", b'{"online": true}',
                                           retain=True) in ACCEPTED
    forger = paho_client(mosquitto.port, secured.account("WC-0001-PC-1"), "forger",
                         will=(f"{OD}/status", b'{"online": false}'))
    forger._sock.close()  # type: ignore[union-attr]  # gone without DISCONNECT: the will fires
    forger.loop_stop()
    time.sleep(1.5)
    reader = clients("sanitel-ingest")
    reader.subscribe(f"{OD}/status")
    time.sleep(0.5)
    assert [p for t, p, r in reader.received() if t == f"{OD}/status"] == [b'{"online": true}']


def paho_client(port: int, account: Account, client_id: str,
                will: tuple[str, bytes] | None = None) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5)
    client.username_pw_set(account.username, account.password)
    if will:
        client.will_set(*will, qos=1, retain=True)
    connected: list[int] = []
    client.on_connect = lambda c, u, f, reason, p: connected.append(reason.value)
    client.connect("127.0.0.1", port)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert connected == [0], connected
    return client
