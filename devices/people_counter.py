"""People counter at a public toilet entrance."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from devices.common import Reading, reading_config


class PeopleCounterReading(Reading):
    model_config = reading_config(
        examples=[
            {
                "ts": 1795507200000,
                "seq": 1042,
                "entries": 7,
                "exits": 5,
                "occupancy": 3,
                "battery_pct": 87.5,
                "rssi_dbm": -71,
            }
        ]
    )

    measurement: ClassVar[str] = "people_flow"

    entries: Annotated[int, Field(ge=0, le=10_000)]
    exits: Annotated[int, Field(ge=0, le=10_000)] | None = None
    occupancy: Annotated[int, Field(ge=0, le=1_000)] | None = None
