"""Acks (SPEC sections 6 and 8): the crew comes from the topic; a crew acks only its districts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.crews import Crews
from devices.sites import Registry
from ingest.alerts.acks import Ack, ack_filters, parse_ack, refusal
from ingest.rejects import Rejected, RejectReason

T = "sanitation/v1/_ack"
CITY = {"sites": [
    {"id": "WC-1", "kind": "toilet", "name": "A", "district": "Jinjiang", "lat": 0, "lon": 0},
    {"id": "TS-1", "kind": "transfer_station", "name": "B", "district": "Chenghua",
     "lat": 0, "lon": 0},
]}
CREWS = Crews.from_dict({"crews": [{"name": "crew-j", "districts": ["Jinjiang"]}]})


def test_the_crew_is_the_topic_segment_not_the_payload() -> None:
    ack = parse_ack(f"{T}/crew-j", b'{"alert_id": "a1", "by": "somebody-else"}')
    assert ack == Ack("a1", "crew-j", from_crew=True)


def test_the_v1_topic_takes_by_from_the_payload() -> None:
    assert parse_ack(T, b'{"alert_id": "a1", "by": " li.wei "}') == Ack("a1", "li.wei", False)
    assert parse_ack(T, b'{"alert_id": "a1"}') == Ack("a1", "unknown", False)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    (f"{T}/crew-j", b"not json", RejectReason.MALFORMED_JSON),
    (f"{T}/crew-j", b'{"id": "a1"}', RejectReason.SCHEMA_INVALID),
    (f"{T}/crew-j", b'["a1"]', RejectReason.SCHEMA_INVALID),
    (f"{T}/crew-j", b'{"alert_id": ""}', RejectReason.SCHEMA_INVALID),
    (T, b'{"alert_id": "a1", "by": 7}', RejectReason.SCHEMA_INVALID),
    (f"{T}/_platform", b'{"alert_id": "a1"}', RejectReason.TOPIC_INVALID),
])
def test_bad_acks_are_rejected_with_a_reason(topic: str, payload: bytes,
                                             reason: RejectReason) -> None:
    with pytest.raises(Rejected) as caught:
        parse_ack(topic, payload)
    assert caught.value.reason == reason


def test_a_crew_acks_only_alerts_of_its_districts() -> None:
    registry = Registry.from_dict(CITY)
    own = Ack("a1", "crew-j", from_crew=True)
    assert refusal(own, "WC-1", registry, CREWS) is None
    outside = refusal(own, "TS-1", registry, CREWS)
    assert outside is not None and "TS-1" in outside and "Chenghua" in outside
    stranger = refusal(Ack("a1", "crew-x", True), "WC-1", registry, CREWS)
    assert stranger is not None and "no crew 'crew-x'" in stranger
    assert refusal(Ack("a1", "anyone", False), "TS-1", registry, CREWS) is None  # v1 topic
    assert refusal(own, None, registry, CREWS) is None  # no such alert: the engine ignores it


def test_the_v1_topic_is_subscribed_only_with_access_control_off() -> None:
    assert ack_filters(False) == [T, f"{T}/+"]
    assert ack_filters(True) == [f"{T}/+"]


@given(st.binary(max_size=200), st.sampled_from([T, f"{T}/crew-j", f"{T}/x y"]))
def test_random_acks_parse_or_are_rejected(payload: bytes, topic: str) -> None:
    try:
        ack = parse_ack(topic, payload)
    except Rejected as rejected:
        assert rejected.reason in (RejectReason.MALFORMED_JSON, RejectReason.SCHEMA_INVALID,
                                   RejectReason.TOPIC_INVALID)
    else:
        assert ack.alert_id and ack.by
