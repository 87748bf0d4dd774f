"""The topic tree (SPEC section 2): parsing device topics, naming the platform's topics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.registry import DEVICE_TYPES
from ingest.rejects import Rejected, RejectReason
from ingest.topics import (
    ACK_TOPIC,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    DeviceTopic,
    alert_topic,
    device_topic,
    dlq_topic,
    parse_device_topic,
)

ID_ALPHABET = "ABCXYZabcxyz0189_-"
ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("ABCZabcz0189"),
    st.text(alphabet=ID_ALPHABET, max_size=63),
)


def rejected(topic: str) -> Rejected:
    with pytest.raises(Rejected) as info:
        parse_device_topic(topic)
    assert info.value.reason is RejectReason.TOPIC_INVALID
    return info.value


@pytest.mark.parametrize("device_type", list(DEVICE_TYPES))
@pytest.mark.parametrize("kind", ["telemetry", "status"])
def test_a_device_topic_parses_into_its_parts(device_type: str, kind: str) -> None:
    topic = f"sanitation/v1/WC-0001/{device_type}/WC-0001-X_1/{kind}"
    assert parse_device_topic(topic) == DeviceTopic(
        "WC-0001", device_type, "WC-0001-X_1", kind  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("site", "device"),
    [("a", "0"), ("A" * 64, "z" * 64), ("9-_", "x-_-_"), ("WC_1", "wc-1")],
)
def test_id_edges_are_accepted(site: str, device: str) -> None:
    parsed = parse_device_topic(f"sanitation/v1/{site}/odor/{device}/telemetry")
    assert (parsed.site_id, parsed.device_id) == (site, device)


@pytest.mark.parametrize(
    "topic",
    [
        "sanitation/v1/_alerts/odor/D-1/telemetry",  # reserved site segment
        "sanitation/v1/_dlq/odor/D-1/telemetry",
        "sanitation/v1/S-1/odor/_D-1/telemetry",  # reserved device segment
        "sanitation/v1/-S/odor/D-1/telemetry",
        "sanitation/v1/S-1/odor/-D/telemetry",
        f"sanitation/v1/{'A' * 65}/odor/D-1/telemetry",
        f"sanitation/v1/S-1/odor/{'A' * 65}/telemetry",
        "sanitation/v1//odor/D-1/telemetry",
        "sanitation/v1/S-1/odor//telemetry",
        "sanitation/v1/S 1/odor/D-1/telemetry",
        "sanitation/v1/S.1/odor/D-1/telemetry",
        "sanitation/v1/S-1/odor/D+1/telemetry",
        "sanitation/v1/S-1/odor/D#/telemetry",
        "sanitation/v1/Sé/odor/D-1/telemetry",
    ],
)
def test_bad_or_reserved_ids_are_topic_invalid(topic: str) -> None:
    error = rejected(topic)
    assert "site_id" in error.detail or "device_id" in error.detail
    assert topic in error.detail or repr(topic) in error.detail


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "sanitation",
        "sanitation/v1",
        "sanitation/v1/S-1/odor/D-1",
        "sanitation/v1/S-1/odor/D-1/telemetry/extra",
        "sanitation/v1/S-1/odor/D-1/telemetry/",
        "/sanitation/v1/S-1/odor/D-1/telemetry",
        "sanitation/v2/S-1/odor/D-1/telemetry",
        "Sanitation/v1/S-1/odor/D-1/telemetry",
        "other/v1/S-1/odor/D-1/telemetry",
        "sanitation/v1/_alerts/S-1/D-1/odor_nh3_high/x",
        "sanitation/v1/_dlq/schema_invalid",
        "sanitation/v1/_ack",
    ],
)
def test_wrong_shapes_are_topic_invalid(topic: str) -> None:
    assert "telemetry|status" in rejected(topic).detail


@pytest.mark.parametrize("device_type", ["toaster", "Odor", "odor ", "", "_odor", "+", "#"])
def test_unknown_device_types_are_topic_invalid_and_named(device_type: str) -> None:
    detail = rejected(f"sanitation/v1/S-1/{device_type}/D-1/telemetry").detail
    assert f"device_type {device_type!r}" in detail
    assert all(name in detail for name in DEVICE_TYPES)


@pytest.mark.parametrize("kind", ["cmd", "Telemetry", "", "state", "status2"])
def test_only_telemetry_and_status_are_device_messages(kind: str) -> None:
    assert "telemetry or status" in rejected(f"sanitation/v1/S-1/odor/D-1/{kind}").detail


def test_platform_topics() -> None:
    assert dlq_topic("clock_skew") == "sanitation/v1/_dlq/clock_skew"
    assert dlq_topic(RejectReason.PAYLOAD_TOO_LARGE) == "sanitation/v1/_dlq/payload_too_large"
    assert alert_topic("WC-0001", "WC-0001-OD-1", "odor_nh3_high") == (
        "sanitation/v1/_alerts/WC-0001/WC-0001-OD-1/odor_nh3_high"
    )
    assert ACK_TOPIC == "sanitation/v1/_ack"
    assert TELEMETRY_FILTER == "sanitation/v1/+/+/+/telemetry"
    assert STATUS_FILTER == "sanitation/v1/+/+/+/status"


@pytest.mark.parametrize("reason", list(RejectReason))
def test_every_dlq_topic_is_not_a_device_topic(reason: RejectReason) -> None:
    rejected(dlq_topic(reason))


def test_alert_topics_are_not_device_topics() -> None:
    rejected(alert_topic("S-1", "D-1", "odor"))
    # Even with six segments, the reserved `_alerts` segment cannot be a site id.
    rejected("sanitation/v1/_alerts/S-1/D-1/status")


@settings(max_examples=200, deadline=None)
@given(
    site=ids,
    device_type=st.sampled_from(list(DEVICE_TYPES)),
    device=ids,
    kind=st.sampled_from(["telemetry", "status"]),
)
def test_device_topic_and_parse_are_inverse(
    site: str, device_type: str, device: str, kind: str
) -> None:
    topic = device_topic(site, device_type, device, kind)  # type: ignore[arg-type]
    assert parse_device_topic(topic) == DeviceTopic(
        site, device_type, device, kind  # type: ignore[arg-type]
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_topic_invalid(topic: str) -> None:
    try:
        parsed = parse_device_topic(topic)
    except Rejected as exc:
        assert exc.reason is RejectReason.TOPIC_INVALID
    else:
        assert device_topic(parsed.site_id, parsed.device_type, parsed.device_id,
                            parsed.kind) == topic


@pytest.mark.parametrize(
    "topic",
    [
        "sanitation/v1/WC-0001\n/odor/D-1/telemetry",
        "sanitation/v1/WC-0001/odor/D-1\n/telemetry",
    ],
)
def test_an_id_with_a_trailing_newline_is_topic_invalid(topic: str) -> None:
    rejected(topic)
