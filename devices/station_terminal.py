"""Management terminal of a garbage transfer station."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from devices.common import Percent, Reading, reading_config


class StationTerminalReading(Reading):
    model_config = reading_config(
        examples=[
            {
                "ts": 1795507200000,
                "fill_pct": 72.5,
                "weight_kg": 8420,
                "compactor": "idle",
                "door_open": False,
            }
        ]
    )

    measurement: ClassVar[str] = "station"

    fill_pct: Percent
    weight_kg: Annotated[float, Field(ge=0, le=100_000)] | None = None
    compactor: Literal["idle", "running", "fault"] | None = None
    door_open: bool | None = None
    # Printable text only: a control character has no place in a fault code and would
    # corrupt the line protocol.
    fault_code: Annotated[str, Field(max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
