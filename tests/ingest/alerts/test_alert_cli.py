"""`sanitel alerts list` / `ack` on a real incident store and a real broker."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from alert_city import CITY, T0, EngineFactory, odor
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from devices.sites import Registry
from ingest.alerts import AlertEngine
from sanitel.alerts_cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_sanitel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SANITEL_"):
            monkeypatch.delenv(key)


def config(tmp_path: Path, port: int = 1) -> Path:
    path = tmp_path / "sanitel.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"),
                                    "mqtt": {"host": "127.0.0.1", "port": port}}))
    return path


def open_incident(make_engine: EngineFactory, tmp_path: Path) -> tuple[AlertEngine, str]:
    engine = make_engine(state_dir=tmp_path / "data" / "state")
    od1 = Registry.from_dict(CITY).devices["WC-0001-OD-1"]
    events = []
    for i in range(3):
        events += engine.on_reading(od1, odor(6.0), T0 + i * 60_000, T0)
    engine.on_ack(events[0].alert_id, "li.wei", T0 + 300_000)
    return engine, events[0].alert_id


def test_list_shows_active_incidents_as_table_and_json(make_engine: EngineFactory,
                                                       tmp_path: Path) -> None:
    cfg = config(tmp_path)
    empty = runner.invoke(app, ["list", "--config", str(cfg)])
    assert empty.exit_code == 0 and "No active alerts" in empty.output
    _, alert_id = open_incident(make_engine, tmp_path)
    table = runner.invoke(app, ["list", "--config", str(cfg)], env={"COLUMNS": "220"})
    assert table.exit_code == 0, table.output
    for text in ("People's Park North", "odor_nh3_high", "critical", "6", "li.wei",
                 alert_id[:12]):
        assert text in table.output
    as_json = runner.invoke(app, ["list", "--json"], env={"SANITEL_CONFIG": str(cfg)})
    assert as_json.exit_code == 0, as_json.output
    (row,) = orjson.loads(as_json.output)
    assert (row["alert_id"], row["state"], row["acknowledged_by"]) == (
        alert_id, "acknowledged", "li.wei")
    assert row["site_name"] == "People's Park North" and row["age_s"] > 0


def test_ack_unknown_id_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ack", "nope", "--config", str(config(tmp_path))])
    assert result.exit_code == 1
    assert "no active alert with id 'nope'" in result.output


def test_ack_publishes_qos1_to_the_ack_topic(make_engine: EngineFactory, tmp_path: Path,
                                             mosquitto: Any) -> None:
    _, alert_id = open_incident(make_engine, tmp_path)
    received: list[mqtt.MQTTMessage] = []
    subscribed, got = threading.Event(), threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-ack-listener")
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if alert_id.encode() in msg.payload:  # the session's broker is shared with other tests
            received.append(msg)
            got.set()

    client.on_message = on_message
    client.connect(mosquitto.host, mosquitto.port)
    client.subscribe("sanitation/v1/_ack", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        # A unique prefix, as `alerts list` shows it, names the alert.
        result = runner.invoke(app, ["ack", alert_id[:8], "--by", "zhang.min", "--config",
                                     str(config(tmp_path, mosquitto.port))])
        assert result.exit_code == 0, result.output
        assert f"acknowledged {alert_id}" in result.output
        assert got.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    assert orjson.loads(received[0].payload) == {"alert_id": alert_id, "by": "zhang.min"}
    assert received[0].qos == 1


def test_ack_refuses_an_empty_or_ambiguous_id(make_engine: EngineFactory,
                                              tmp_path: Path) -> None:
    open_incident(make_engine, tmp_path)
    result = runner.invoke(app, ["ack", "", "--config", str(config(tmp_path))])
    assert result.exit_code == 1 and "longer prefix" in result.output


def test_ack_with_broker_down_exits_1(make_engine: EngineFactory, tmp_path: Path) -> None:
    _, alert_id = open_incident(make_engine, tmp_path)
    result = runner.invoke(app, ["ack", alert_id, "--config", str(config(tmp_path, port=1))])
    assert result.exit_code == 1
    assert "cannot publish the ack to 127.0.0.1:1" in result.output
