"""What one spool file holds: the points of a batch, and for each reading among them the
message it came from, so that a point InfluxDB refuses on replay is dead-lettered with its
original topic and payload (SPEC section 3), as it would have been before the outage.

A record is a marker line, then JSON: `{"lines": "<line protocol>", "origins": [[index,
topic, payload, received_ms], ...]}`; payloads are kept as latin-1 text, which round-trips
any bytes. A file without the marker is a spool of an earlier release: line protocol only.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ingest.receiver import Arrival

MARKER = b"#sanitel-spool 2\n"

#: An origin read back from the spool: its message was acknowledged when it was spooled.
REPLAYED = -1


class SpoolRecordError(ValueError):
    """A spool file that is neither a record nor line protocol; the message names the file."""


def encode(lines: Sequence[str], origins: Sequence[Arrival | None]) -> bytes:
    kept = [
        [index, origin.topic, origin.payload.decode("latin-1"), origin.received_ms]
        for index, origin in enumerate(origins) if origin is not None
    ]
    return MARKER + orjson.dumps({"lines": "\n".join(lines), "origins": kept})


def decode(body: bytes, name: str) -> tuple[list[str], list[Arrival | None]]:
    """The lines and their origins (None for the pipeline's own points)."""
    try:
        if not body.startswith(MARKER):
            lines = body.decode().split("\n")
            return lines, [None] * len(lines)
        record = orjson.loads(body[len(MARKER):])
        lines = record["lines"].split("\n")
        origins: list[Arrival | None] = [None] * len(lines)
        for index, topic, payload, received_ms in record["origins"]:
            origins[index] = Arrival(topic, payload.encode("latin-1"), 0, 0, REPLAYED,
                                     received_ms)
    except (UnicodeError, orjson.JSONDecodeError, KeyError, TypeError, ValueError,
            IndexError, AttributeError) as exc:
        raise SpoolRecordError(f"spool file {name} cannot be read back: {exc}") from None
    return lines, origins
