"""Automatic fragrance sprayer."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from devices.common import Percent, Reading, reading_config


class SprayerReading(Reading):
    model_config = reading_config(
        examples=[{"ts": 1795507200000, "liquid_pct": 41, "sprays": 12, "state": "ok"}]
    )

    measurement: ClassVar[str] = "sprayer"

    liquid_pct: Percent
    sprays: Annotated[int, Field(ge=0, le=100_000)] | None = None
    state: Literal["ok", "low", "empty", "fault"] | None = None
