"""Our own QoS 1 publishes (dead letters, alert events) keep to the broker's Receive Maximum
(MQTT 5, 3.2.2.3.3: the client MUST NOT have more unacknowledged than the broker's CONNACK
allows); paho kept its own 20 whatever the broker said. The broker answers through a proxy
that holds its packets back 50 ms, so that the ingest's publishes pile up unacknowledged as
far as it lets them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sanitel.local_servers import Mosquitto
from tests.conftest import IngestProcess, MqttTestClient
from tests.mqtt_proxy import DelayingProxy

UNKNOWN = "sanitation/v1/WC-0001/odor/WC-0001-OD-9/telemetry"  # not in the registry
REJECTS = 80


@pytest.fixture
def broker_allowing_3(tmp_path: Path) -> Iterator[Mosquitto]:
    """mosquitto's CONNACK says Receive Maximum 3: its max_inflight_messages (the last wins)."""
    with Mosquitto(tmp_path / "mosquitto", extra_conf="max_inflight_messages 3\n") as server:
        yield server


def test_no_more_unacknowledged_than_the_broker_allows(
    broker_allowing_3: Mosquitto, run_ingest: Callable[..., IngestProcess]
) -> None:
    broker = broker_allowing_3
    with DelayingProxy(broker.host, broker.port, delay_s=0.05) as proxy:
        run_ingest(mqtt__host=proxy.host, mqtt__port=proxy.port)
        watcher = MqttTestClient(broker.host, broker.port)
        watcher.subscribe("sanitation/v1/_dlq/#")
        sender = MqttTestClient(broker.host, broker.port)
        infos = [sender.client.publish(UNKNOWN, json.dumps({"nh3_ppm": i}), qos=1)
                 for i in range(REJECTS)]
        for info in infos:
            info.wait_for_publish(10)
        got = watcher.wait_for(lambda m: len(m) >= REJECTS, timeout=30)
        assert sorted(json.loads(p)["topic"] for _, p, _ in got) == [UNKNOWN] * REJECTS
        sender.close()
        watcher.close()
    assert proxy.publishes >= REJECTS
    assert 1 <= proxy.max_outstanding <= 3


@pytest.mark.parametrize(("advertised", "limit"), [(None, 20), (65_535, 20), (20, 20), (3, 3),
                                                   (1, 1)])
def test_the_limit_is_the_broker_s_receive_maximum_or_paho_s_20(
    advertised: int | None, limit: int
) -> None:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from ingest.paho_fastpath import honour_receive_maximum

    props = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    if advertised is not None:  # absent means 65,535 (MQTT 5, 3.2.2.3.3)
        props.ReceiveMaximum = advertised
    client = Client(CallbackAPIVersion.VERSION2)
    assert honour_receive_maximum(client, props) == limit
    assert client.max_inflight_messages == limit
