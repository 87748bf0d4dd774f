"""Management terminal of a smart public toilet (SPEC v1.1): the box by the door.

It shows the free stalls outside, reads the water and power meters, tracks paper and
soap, records an attendant's check-in (`cleaned_by`) and counts the visitors' rating
buttons since its last report.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from devices.common import Percent, Reading, reading_config

Stalls = Annotated[int, Field(ge=0, le=500)]
Presses = Annotated[int, Field(ge=0, le=10_000)]


class ToiletTerminalReading(Reading):
    model_config = reading_config(
        examples=[
            {
                "ts": 1795507200000,
                "stalls_free": 3,
                "stalls_total": 8,
                "water_m3": 1520.75,
                "power_kwh": 8830.2,
                "paper_pct": 64,
                "soap_pct": 71,
                "cleaned_by": "attendant-07",
                "rating_good": 5,
                "rating_ok": 1,
                "rating_bad": 0,
            }
        ]
    )

    measurement: ClassVar[str] = "toilet"

    stalls_free: Stalls
    stalls_total: Annotated[int, Field(ge=1, le=500)] | None = None
    #: Meter readings: they only grow (the leak rule watches the water meter rise).
    water_m3: Annotated[float, Field(ge=0, le=10_000_000)] | None = None
    power_kwh: Annotated[float, Field(ge=0, le=100_000_000)] | None = None
    paper_pct: Percent | None = None
    soap_pct: Percent | None = None
    #: The attendant who checked in since the last report. Printable text only, like a
    #: station's fault code: a control character would corrupt the line protocol.
    cleaned_by: Annotated[str, Field(max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    rating_good: Presses | None = None
    rating_ok: Presses | None = None
    rating_bad: Presses | None = None

    @field_validator("stalls_total")
    @classmethod
    def _no_more_free_than_total(cls, total: int | None, info: ValidationInfo) -> int | None:
        free = info.data.get("stalls_free")
        if total is not None and free is not None and free > total:
            # An `out_of_range` (SPEC 3): each value is in range, the pair is not.
            raise PydanticCustomError(
                "out_of_range",
                "stalls_free {free} is more than stalls_total {total}; "
                "at most stalls_total stalls can be free",
                {"free": free, "total": total},
            )
        return total
