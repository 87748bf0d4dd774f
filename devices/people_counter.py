"""People counter at a public toilet entrance."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from devices.common import Reading


class PeopleCounterReading(Reading):
    measurement: ClassVar[str] = "people_flow"

    entries: Annotated[int, Field(ge=0, le=10_000)]
    exits: Annotated[int, Field(ge=0, le=10_000)] | None = None
    occupancy: Annotated[int, Field(ge=0, le=1_000)] | None = None
