"""`sanitel ingest` as a service, as a real process against real servers (SPEC section 10):
`/metrics` counts what was published, `/readyz` follows InfluxDB and the spool, SIGHUP and
`sanitel reload` reload the registry without losing a reading or the MQTT session, and
systemd hears READY=1, WATCHDOG=1 and STOPPING=1."""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sanitel.local_servers import free_port
from tests.conftest import ROOT, SANITEL, SMALL_CITY, IngestProcess, MqttTestClient
from tests.streams import Stream, assert_every_reading_once, wait_all_stored

ODOR = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"
NEW_ODOR = "sanitation/v1/WC-0001/odor/WC-0001-OD-2/telemetry"
SPRAYER = "sanitation/v1/WC-0001/sprayer/WC-0001-SP-1/telemetry"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    return response.status_code, response.json()


def wait_readyz(port: int, want: Callable[[int, dict[str, Any]], bool],
                timeout: float = 60) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    seen: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        seen = readyz(port)
        if want(*seen):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"/readyz never matched; last {seen}")


def write_registry(path: Path, city: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(city, sort_keys=False))
    tmp.replace(path)


def influx_points(influxd: Any, db: str) -> int:
    """Points in the database: per measurement, the count of its most frequent field."""
    result = influxd.query("SELECT count(*) FROM /.*/", db)
    return sum(max(v for v in series["values"][0][1:] if v is not None)
               for statement in result["results"] for series in statement.get("series", []))


def test_metrics_count_what_was_published(
    run_ingest: Callable[..., IngestProcess], mqtt: MqttTestClient, influxd: Any,
    rows_of: Callable[..., Any],
) -> None:
    port = free_port()
    # One `pipeline` point (the first) and one `sites` round during the test: the figures
    # stand still once the messages are handled.
    ingest = run_ingest(http__port=port, pipeline__stats_interval_s=3600)
    now = int(time.time() * 1000)
    good = [(ODOR, {"nh3_ppm": 0.4, "seq": i, "ts": now - 1000 + i}) for i in range(40)]
    good += [("sanitation/v1/TS-0001/station_terminal/TS-0001-ST-1/telemetry",
              {"fill_pct": 30.0, "seq": i, "ts": now - 1000 + i}) for i in range(25)]
    bad: dict[str, list[tuple[str, Any]]] = {
        "malformed_json": [(ODOR, b"{nope")] * 3,
        "schema_invalid": [(ODOR, {"h2s_ppm": 1.0})] * 2,
        "out_of_range": [(ODOR, {"nh3_ppm": 1000})] * 4,
        "unknown_device": [("sanitation/v1/WC-0001/odor/WC-0001-OD-9/telemetry",
                            {"nh3_ppm": 1.0})],
        "device_mismatch": [("sanitation/v1/TS-0001/odor/WC-0001-OD-1/telemetry",
                             {"nh3_ppm": 1.0})] * 2,
        "topic_invalid": [("sanitation/v1/WC-0001/toaster/WC-0001-OD-1/telemetry",
                           {"nh3_ppm": 1.0})],
        "payload_too_large": [(ODOR, b'{"nh3_ppm": 1, "pad": "' + b"x" * 17_000 + b'"}')],
        "clock_skew": [(ODOR, {"nh3_ppm": 1.0, "ts": now + 3_600_000})],
    }
    for topic, payload in good + [m for messages in bad.values() for m in messages]:
        mqtt.publish(topic, payload)
    published = len(good) + sum(len(m) for m in bad.values())
    rows_of("SELECT seq FROM odor", ingest.database, 40)
    rows_of("SELECT seq FROM station", ingest.database, 25)

    # Until the figures stand still (the dead letters' counts and the first `pipeline`
    # and `sites` points are written a moment after the readings).
    deadline, last = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        metrics = scrape(port)
        stored = metrics[("sanitel_points_stored_total", ())]
        if stored == influx_points(influxd, ingest.database) == last:
            break
        last = stored
        time.sleep(0.7)
    assert metrics[("sanitel_messages_received_total", ())] == published
    for reason in (*bad, "storage_rejected"):
        assert metrics[("sanitel_rejected_total", (("reason", reason),))] == len(
            bad.get(reason, [])), reason
    # every point InfluxDB holds, readings and the pipeline's own, and nothing else
    assert metrics[("sanitel_points_stored_total", ())] == influx_points(influxd,
                                                                         ingest.database)
    assert metrics[("sanitel_points_stored_total", ())] >= len(good)
    assert metrics[("sanitel_write_duration_seconds_count", ())] >= 1
    assert metrics[("sanitel_write_duration_seconds_bucket", (("le", "+Inf"),))] == \
        metrics[("sanitel_write_duration_seconds_count", ())]
    assert metrics[("sanitel_spool_bytes", ())] == 0
    assert metrics[("sanitel_inflight_messages", ())] == 0
    for severity in ("info", "warning", "critical"):
        assert metrics[("sanitel_alerts_active", (("severity", severity),))] == 0
    assert ingest.stop() == 0


def test_readyz_follows_influxdb_and_the_spool(
    run_ingest: Callable[..., IngestProcess], fresh_influxd: Any, mosquitto: Any,
) -> None:
    port = free_port()
    ingest = run_ingest(http__port=port, influx__url=fresh_influxd.url,
                        spool__max_bytes=4096, influx__batch_size=50)
    status, body = wait_readyz(port, lambda s, b: s == 200)
    assert body["reasons"] == [] and body["warnings"] == []
    fresh_influxd.stop()
    # Down, with room in the spool: still storing (SPEC 10), and it says why it worries.
    status, body = wait_readyz(port, lambda s, b: "influxdb_unavailable" in b["warnings"])
    assert status == 200 and body["ready"] is True
    stream = Stream(mosquitto.host, mosquitto.port, count=1500, rate=500).start()
    try:
        status, body = wait_readyz(port, lambda s, b: s == 503)
        assert body["ready"] is False
        assert body["reasons"] == ["influxdb_unavailable", "spool_full"]
        fresh_influxd.start()
        status, body = wait_readyz(port, lambda s, b: s == 200 and not b["warnings"])
        assert body == {"ready": True, "reasons": [], "warnings": [], "detail": {}}
        stream.wait_published()
        seqs = wait_all_stored(fresh_influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    assert ingest.stop() == 0


def test_sighup_adds_and_removes_devices_without_losing_a_reading(
    run_ingest: Callable[..., IngestProcess], mosquitto: Any, influxd: Any,
    registry_file: Path, mqtt: MqttTestClient, rows_of: Callable[..., Any],
) -> None:
    port = free_port()
    mqtt.subscribe("sanitation/v1/_dlq/#")
    mqtt.subscribe("sanitation/v1/_alerts/#")
    ingest = run_ingest(http__port=port)
    mqtt.publish(NEW_ODOR, {"nh3_ppm": 0.7, "seq": 1})
    mqtt.publish(SPRAYER, {"liquid_pct": 40.0, "state": "fault"})  # fires sprayer_fault
    mqtt.wait_for(lambda ms: any(t == "sanitation/v1/_dlq/unknown_device" and
                                 b"WC-0001-OD-2" in p for t, p, _ in ms))
    mqtt.wait_for(lambda ms: any("WC-0001-SP-1/sprayer_fault" in t for t, _, _ in ms))
    stream = Stream(mosquitto.host, mosquitto.port, count=3000, rate=300).start()
    try:
        time.sleep(2)
        city = copy.deepcopy(SMALL_CITY)
        wc = city["sites"][0]
        wc["devices"] = [d for d in wc["devices"] if d["id"] != "WC-0001-SP-1"]
        wc["devices"].append({"id": "WC-0001-OD-2", "type": "odor", "interval_s": 60})
        write_registry(registry_file, city)
        ingest.proc.send_signal(signal.SIGHUP)
        ingest.wait_log("reloaded: registry 2 sites, 5 devices (1 added, 1 removed)")
        mqtt.publish(NEW_ODOR, {"nh3_ppm": 0.8})  # no seq: the stream counts seqs
        rows = rows_of("SELECT nh3_ppm FROM odor WHERE device_id = 'WC-0001-OD-2'",
                       ingest.database)
        assert [row["nh3_ppm"] for row in rows] == [0.8]
        mqtt.publish(SPRAYER, {"liquid_pct": 40.0})
        stream.wait_published()
        seqs = wait_all_stored(influxd, ingest.database, stream)
    finally:
        stream.close()
    assert_every_reading_once(seqs, stream.count)
    mqtt.wait_for(lambda ms: any(
        t == "sanitation/v1/_dlq/unknown_device" and b"WC-0001-SP-1" in p for t, p, _ in ms))
    resolved = mqtt.wait_for(lambda ms: any(
        "WC-0001-SP-1/sprayer_fault" in t and b'"resolved"' in p for t, p, _ in ms))
    event = next(json.loads(p) for t, p, _ in resolved
                 if "WC-0001-SP-1/sprayer_fault" in t and b'"resolved"' in p)
    assert "device removed from the registry" in event["message"]
    assert ingest.log().count("connected to mqtt://") == 1, "the MQTT session was dropped"
    metrics = scrape(port)
    assert metrics[("sanitel_registry_devices", ())] == 5
    assert metrics[("sanitel_config_reloads_total", (("outcome", "success"),))] == 1
    assert ingest.stop() == 0


def test_broken_registry_keeps_the_old_one_until_fixed(
    run_ingest: Callable[..., IngestProcess], registry_file: Path, mqtt: MqttTestClient,
    rows_of: Callable[..., Any],
) -> None:
    port = free_port()
    ingest = run_ingest(http__port=port)
    original = registry_file.read_text()
    broken = copy.deepcopy(SMALL_CITY)
    broken["sites"][0]["devices"][1]["type"] = "toaster"
    write_registry(registry_file, broken)
    ingest.proc.send_signal(signal.SIGHUP)
    ingest.wait_log("kept the previous registry")
    error = next(line for line in ingest.log().splitlines() if "kept the previous" in line)
    assert f"registry file {registry_file}" in error and "key 'type'" in error
    line = int(error.split("(line ")[1].split(")")[0])
    assert registry_file.read_text().splitlines()[line - 1].strip() == "type: toaster"
    # the old registry is in force: the device it knows as odor is still stored
    mqtt.publish(ODOR, {"nh3_ppm": 0.3, "seq": 5})
    rows_of("SELECT nh3_ppm FROM odor WHERE device_id = 'WC-0001-OD-1'", ingest.database)
    status, body = readyz(port)
    assert status == 200 and body["warnings"] == ["config_reload_failed"]
    assert scrape(port)[("sanitel_config_last_reload_successful", ())] == 0

    registry_file.write_text(original)
    done = subprocess.run([*SANITEL, "reload"], env=ingest.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "registry 2 sites, 5 devices" in done.stdout
    assert readyz(port)[1]["warnings"] == []
    assert scrape(port)[("sanitel_config_last_reload_successful", ())] == 1
    assert ingest.stop() == 0


def test_sanitel_reload_through_the_pid_file(
    run_ingest: Callable[..., IngestProcess], registry_file: Path, mqtt: MqttTestClient,
    rows_of: Callable[..., Any],
) -> None:
    ingest = run_ingest(http__enabled="false")
    city = copy.deepcopy(SMALL_CITY)
    city["sites"][0]["devices"].append({"id": "WC-0001-OD-2", "type": "odor"})
    write_registry(registry_file, city)
    done = subprocess.run([*SANITEL, "reload"], env=ingest.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"sent SIGHUP to pid {ingest.proc.pid}" in done.stdout
    ingest.wait_log("reloaded: registry 2 sites, 6 devices (1 added, 0 removed)")
    mqtt.publish(NEW_ODOR, {"nh3_ppm": 0.9})
    rows_of("SELECT nh3_ppm FROM odor WHERE device_id = 'WC-0001-OD-2'", ingest.database)
    assert ingest.stop() == 0
    assert not (Path(ingest.env["SANITEL_DATA_DIR"]) / "ingest.pid").exists()


class NotifyListener:
    """A stand-in for systemd's notification socket, read from a thread."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[tuple[float, str]] = []
        self._open = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self._open:
            try:
                self.received.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue

    def states(self) -> list[str]:
        return [state for _, state in self.received]

    def close(self) -> None:
        self._open = False
        self.thread.join()
        self.sock.close()


def test_systemd_hears_ready_watchdog_and_stopping(
    tmp_path: Path, mosquitto: Any, influxd: Any, registry_file: Path,
) -> None:
    listener = NotifyListener(tmp_path / "notify.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANITEL_")}
    env.update({
        "SANITEL_MQTT__HOST": mosquitto.host, "SANITEL_MQTT__PORT": str(mosquitto.port),
        "SANITEL_MQTT__CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
        "SANITEL_INFLUX__URL": influxd.url, "SANITEL_INFLUX__DATABASE": "t_notify",
        "SANITEL_REGISTRY": str(registry_file), "SANITEL_DATA_DIR": str(tmp_path / "data"),
        "SANITEL_HTTP__PORT": "0",
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000",
    })
    log_path = tmp_path / "ingest.log"
    # As systemd does: WATCHDOG_PID is the service's main pid (exec keeps the shell's).
    command = " ".join(SANITEL) + " ingest --log-format json"
    with log_path.open("w") as log:
        proc = subprocess.Popen(["sh", "-c", f'WATCHDOG_PID=$$ exec {command}'], env=env,
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    ingest = IngestProcess(proc, env, "t_notify", log_path)
    try:
        ingest.wait_log("sanitel ingest: started")
        deadline = time.monotonic() + 10
        while "READY=1" not in listener.states() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "READY=1" in listener.states()
        time.sleep(2)
        assert ingest.stop() == 0
        time.sleep(0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    states = listener.states()
    pings = [at for at, state in listener.received if state == "WATCHDOG=1"]
    assert len(pings) >= 8, states  # every 0.2 s for more than 2 s
    gaps = sorted(b - a for a, b in itertools.pairwise(pings))
    assert 0.1 < gaps[len(gaps) // 2] < 0.35, f"median watchdog gap {gaps[len(gaps) // 2]} s"
    assert states.count("READY=1") == 1 and states.count("STOPPING=1") == 1
    assert states.index("READY=1") < states.index("STOPPING=1")
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert all({"timestamp", "level", "logger", "message"} <= set(e) for e in events)
    assert any(e["message"].startswith("sanitel ingest: started") for e in events)


@pytest.mark.parametrize("value", ["text", "json"])
def test_log_format_setting_is_checked(value: str) -> None:
    from ingest.settings import load

    assert load(log={"format": value}).log.format == value


def test_refused_credentials_show_in_metrics_and_readiness(
    run_ingest: Callable[..., IngestProcess], tmp_path: Path, mqtt: MqttTestClient,
) -> None:
    from sanitel.local_servers import Influxd

    with Influxd(tmp_path / "influxd-auth", auth_enabled=True) as influx:
        user = influx.admin[0]
        port = free_port()
        ingest = run_ingest(http__port=port, influx__url=influx.url,
                            influx__username=user, influx__password="wrong",
                            retention__setup_on_start="false")
        mqtt.publish(ODOR, {"nh3_ppm": 0.5})
        status, _ = wait_readyz(
            port, lambda s, b: "influxdb_credentials_refused" in b["warnings"])
        assert status == 200  # the spool has room: still storing (SPEC 10)
        metrics = scrape(port)
        assert metrics[("sanitel_influxdb_credentials_refused", ())] == 1
        assert metrics[("sanitel_influxdb_credentials_refusals_total", ())] >= 1
        assert metrics[("sanitel_influxdb_writable", ())] == 0
        assert metrics[("sanitel_points_spooled_total", ())] >= 1
        assert metrics[("sanitel_last_write_error_timestamp_seconds", ())] > 0
        assert ingest.stop() == 0


def test_broken_rules_file_is_refused_through_post_reload(
    run_ingest: Callable[..., IngestProcess], tmp_path: Path,
) -> None:
    rules = tmp_path / "alerts.yaml"
    shipped = (ROOT / "config" / "alerts.yaml").read_text()
    rules.write_text(shipped)
    port = free_port()
    ingest = run_ingest(http__port=port, alerts=rules)
    rules.write_text(shipped.replace("above: 2.0", "above: plenty", 1))
    answer = httpx.post(f"http://127.0.0.1:{port}/-/reload", timeout=60)
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert f"alert rules file {rules}" in error and "key 'above'" in error
    line = int(error.split("(line ")[1].split(")")[0])
    assert "above: plenty" in rules.read_text().splitlines()[line - 1]
    assert "kept the previous alert rules" in error and error in ingest.log()
    rules.write_text(shipped)
    assert httpx.post(f"http://127.0.0.1:{port}/-/reload", timeout=60).json()["ok"] is True
    assert ingest.stop() == 0
