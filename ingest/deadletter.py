"""Dead letters: a rejected message is published to `sanitation/v1/_dlq/{reason}` and counted.

The record is `{"reason", "detail", "topic", "payload_b64", "received_at"}` (SPEC section 3).
The counts per reason become `rejects` points with each flush of the pipeline.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import MQTTErrorCode

from ingest.lineproto import point
from ingest.paho_fastpath import acknowledged
from ingest.receiver import Arrival
from ingest.rejects import RejectReason
from ingest.topics import dlq_topic

#: The most of an oversized payload kept in its dead letter, so the record stays publishable.
MAX_KEPT_BYTES = 64 * 1024

Publish = Callable[[str, bytes], MQTTMessageInfo]
#: Dead letters published and the message each answers for (None: the pipeline's own).
DeadLetterList = list[tuple[MQTTMessageInfo, Arrival | None]]
#: How often the store looks whether the broker took the dead letters it waits for.
POLL_S = 0.005


def rfc3339_ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter(
    reason: RejectReason, detail: str, topic: str, payload: bytes, received_ms: int
) -> bytes:
    record: dict[str, object] = {
        "reason": str(reason),
        "detail": detail,
        "topic": topic,
        "payload_b64": base64.b64encode(payload[:MAX_KEPT_BYTES]).decode(),
        "received_at": rfc3339_ms(received_ms),
    }
    if len(payload) > MAX_KEPT_BYTES:
        record["payload_bytes"] = len(payload)
        record["payload_truncated"] = True
    return orjson.dumps(record)


class DeadLetters:
    """Publishes dead letters and counts them until the next `drain_points`.

    `instance` tags the `rejects` points (as it tags `pipeline`): several ingest processes
    in one shared group each count their own rejects, and two of them draining in the same
    millisecond would otherwise write the same point (same series, same time), the second
    overwriting the first's count in InfluxDB."""

    def __init__(self, publish: Publish, instance: str = "") -> None:
        self._publish = publish
        self._tags = {"instance": instance}
        self._pending: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self._last_ts = 0

    def reject(
        self, reason: RejectReason, detail: str, topic: str, payload: bytes, received_ms: int
    ) -> MQTTMessageInfo:
        """Publish (QoS 1) and count; the message's ack waits for the broker's PUBACK of
        the returned publish (dead letters are at least once)."""
        info = self._publish(
            dlq_topic(reason), dead_letter(reason, detail, topic, payload, received_ms)
        )
        self._pending[reason] += 1
        self.total[reason] += 1
        return info

    @property
    def pending_points(self) -> int:
        """How many `rejects` points the next `drain_points` gives (one per reason)."""
        return len(self._pending)

    def drain_points(self, now_ms: int) -> list[str]:
        """`rejects` points for the counts since the last call; each call a distinct time."""
        if not self._pending:
            return []
        ts = self._last_ts = max(now_ms, self._last_ts + 1)
        lines = [
            point("rejects", {**self._tags, "reason": reason}, {"count": count}, ts)
            for reason, count in sorted(self._pending.items())
        ]
        self._pending.clear()
        return lines


async def until_published(dead: DeadLetterList) -> set[int]:
    """Wait until the broker has acknowledged every dead letter (paho sends those queued
    while it was away once it is back). Returns the ids of the arrivals whose dead letter
    paho refused to queue (its queue full): those must stay unacknowledged."""
    unsent: set[int] = set()
    for info, origin in dead:
        while not acknowledged(info):
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                unsent.add(id(origin))
                break
            await asyncio.sleep(POLL_S)
    return unsent
