"""Dead letters (SPEC section 3): the `_dlq` record, truncation of huge payloads, and the
`rejects` points, each drain at a distinct, increasing time."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.deadletter import MAX_KEPT_BYTES, DeadLetters, dead_letter, rfc3339_ms
from ingest.rejects import RejectReason

NOW = 1_795_507_200_000  # 2026-11-24T08:00:00Z
TOPIC = "sanitation/v1/WC-0001/odor/WC-0001-OD-1/telemetry"


def decode(record: bytes) -> dict[str, object]:
    value = orjson.loads(record)
    assert isinstance(value, dict)
    return value


def test_a_dead_letter_has_the_five_keys() -> None:
    record = decode(dead_letter(RejectReason.OUT_OF_RANGE, "nh3_ppm: too high", TOPIC,
                                b'{"nh3_ppm": 500}', NOW + 7))
    assert record == {
        "reason": "out_of_range",
        "detail": "nh3_ppm: too high",
        "topic": TOPIC,
        "payload_b64": base64.b64encode(b'{"nh3_ppm": 500}').decode(),
        "received_at": "2026-11-24T08:00:00.007Z",
    }


@given(payload=st.binary(max_size=2000), reason=st.sampled_from(list(RejectReason)),
       detail=st.text(max_size=100), topic=st.text(max_size=100))
def test_any_payload_round_trips_through_base64(
    payload: bytes, reason: RejectReason, detail: str, topic: str
) -> None:
    record = decode(dead_letter(reason, detail, topic, payload, NOW))
    assert base64.b64decode(str(record["payload_b64"]), validate=True) == payload
    assert (record["reason"], record["detail"], record["topic"]) == (str(reason), detail, topic)
    assert "payload_truncated" not in record


def test_a_payload_of_64_kib_is_kept_whole() -> None:
    payload = bytes(range(256)) * (MAX_KEPT_BYTES // 256)
    assert len(payload) == MAX_KEPT_BYTES == 65_536
    record = decode(dead_letter(RejectReason.PAYLOAD_TOO_LARGE, "big", TOPIC, payload, NOW))
    assert base64.b64decode(str(record["payload_b64"])) == payload
    assert "payload_truncated" not in record and "payload_bytes" not in record


@pytest.mark.parametrize("size", [MAX_KEPT_BYTES + 1, 1_000_000])
def test_a_bigger_payload_is_cut_to_64_kib_and_says_so(size: int) -> None:
    payload = b"x" * MAX_KEPT_BYTES + b"y" * (size - MAX_KEPT_BYTES)
    record = decode(dead_letter(RejectReason.PAYLOAD_TOO_LARGE, "big", TOPIC, payload, NOW))
    assert base64.b64decode(str(record["payload_b64"])) == payload[:MAX_KEPT_BYTES]
    assert record["payload_truncated"] is True
    assert record["payload_bytes"] == size


@pytest.mark.parametrize(
    ("epoch_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (NOW, "2026-11-24T08:00:00.000Z"),
        (NOW + 999, "2026-11-24T08:00:00.999Z"),
        (NOW + 1, "2026-11-24T08:00:00.001Z"),
    ],
)
def test_received_at_is_rfc3339_in_utc_with_milliseconds(epoch_ms: int, text: str) -> None:
    assert rfc3339_ms(epoch_ms) == text


@given(st.integers(0, 4_102_444_800_000))  # up to 2100
def test_received_at_round_trips_to_the_millisecond(epoch_ms: int) -> None:
    text = rfc3339_ms(epoch_ms)
    assert text.endswith("Z") and len(text) == 24
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    whole_s, rest_ms = divmod(epoch_ms, 1000)
    assert int(parsed.timestamp()) == whole_s and parsed.microsecond == rest_ms * 1000


# --- DeadLetters ---------------------------------------------------------------------------


class Published(list[tuple[str, bytes]]):
    def __call__(self, topic: str, body: bytes) -> None:
        self.append((topic, body))


def test_reject_publishes_to_the_reason_topic_and_counts() -> None:
    published = Published()
    letters = DeadLetters(published)
    letters.reject(RejectReason.CLOCK_SKEW, "ts ahead", TOPIC, b"{}", NOW)
    letters.reject(RejectReason.CLOCK_SKEW, "ts ahead", TOPIC, b"{}", NOW + 1)
    letters.reject(RejectReason.MALFORMED_JSON, "bad", "x/y", b"\xff", NOW + 2)
    assert [topic for topic, _ in published] == [
        "sanitation/v1/_dlq/clock_skew",
        "sanitation/v1/_dlq/clock_skew",
        "sanitation/v1/_dlq/malformed_json",
    ]
    last = decode(published[-1][1])
    assert (last["reason"], last["topic"], last["payload_b64"]) == (
        "malformed_json", "x/y", base64.b64encode(b"\xff").decode())
    assert letters.total == {"clock_skew": 2, "malformed_json": 1}


def test_drain_points_counts_since_the_last_drain_sorted_by_reason() -> None:
    letters = DeadLetters(Published())
    assert letters.drain_points(NOW) == []
    for reason in (RejectReason.TOPIC_INVALID, RejectReason.CLOCK_SKEW,
                   RejectReason.TOPIC_INVALID):
        letters.reject(reason, "d", TOPIC, b"", NOW)
    assert letters.drain_points(NOW) == [
        f"rejects,reason=clock_skew count=1i {NOW}",
        f"rejects,reason=topic_invalid count=2i {NOW}",
    ]
    assert letters.drain_points(NOW + 5) == []
    letters.reject(RejectReason.TOPIC_INVALID, "d", TOPIC, b"", NOW)
    assert letters.drain_points(NOW + 10) == [f"rejects,reason=topic_invalid count=1i {NOW + 10}"]
    assert letters.total == {"topic_invalid": 3, "clock_skew": 1}


def test_each_drain_has_a_distinct_increasing_time_even_if_the_clock_does_not_move() -> None:
    letters = DeadLetters(Published())
    stamps = []
    # Same clock, then a clock going backwards: each drain still gets a later time, so no
    # `rejects` point overwrites the previous one of its reason.
    for now_ms in (NOW, NOW, NOW, NOW - 60_000, NOW + 1, NOW + 100):
        letters.reject(RejectReason.SCHEMA_INVALID, "d", TOPIC, b"", now_ms)
        (line,) = letters.drain_points(now_ms)
        stamps.append(int(line.rsplit(" ", 1)[1]))
    assert stamps == [NOW, NOW + 1, NOW + 2, NOW + 3, NOW + 4, NOW + 100]


@given(st.lists(st.tuples(st.integers(0, 2 * NOW), st.sampled_from(list(RejectReason))),
                min_size=1, max_size=30))
def test_drain_times_strictly_increase(events: list[tuple[int, RejectReason]]) -> None:
    letters = DeadLetters(Published())
    last = -1
    for now_ms, reason in events:
        letters.reject(reason, "d", TOPIC, b"", now_ms)
        lines = letters.drain_points(now_ms)
        stamps = {int(line.rsplit(" ", 1)[1]) for line in lines}
        assert len(stamps) == 1
        (stamp,) = stamps
        assert stamp > last and stamp >= now_ms
        last = stamp


def test_two_instances_draining_in_the_same_millisecond_keep_both_counts(influxd: Any) -> None:
    """Several store workers in one shared group each write their `rejects` points: every
    reject must be counted (SPEC section 3), also when two drain at the same instant."""
    database = f"t_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{database}"', db="")
    lines: list[str] = []
    for instance, times in (("store-1", 3), ("store-2", 4)):
        letters = DeadLetters(Published(), instance)
        for _ in range(times):
            letters.reject(RejectReason.OUT_OF_RANGE, "d", TOPIC, b"{}", NOW)
        lines += letters.drain_points(NOW)
    response = httpx.post(f"{influxd.url}/write", params={"db": database, "precision": "ms"},
                          content="\n".join(lines))
    assert response.status_code == 204, response.text
    rows = influxd.query('SELECT sum("count") FROM "rejects" WHERE "reason" = \'out_of_range\'',
                         db=database)
    assert rows["results"][0]["series"][0]["values"][0][1] == 7
