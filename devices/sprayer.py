"""Automatic fragrance sprayer."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from devices.common import Percent, Reading


class SprayerReading(Reading):
    measurement: ClassVar[str] = "sprayer"

    liquid_pct: Percent
    sprays: Annotated[int, Field(ge=0, le=100_000)] | None = None
    state: Literal["ok", "low", "empty", "fault"] | None = None
