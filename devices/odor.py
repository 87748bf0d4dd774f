"""Odor sensor (NH3 / H2S) in a toilet or at a transfer station."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from devices.common import Percent, Reading, reading_config

Ppm = Annotated[float, Field(ge=0, le=100)]


class OdorReading(Reading):
    model_config = reading_config(
        examples=[
            {
                "ts": "2026-11-24T08:00:00Z",
                "seq": 311,
                "nh3_ppm": 0.8,
                "h2s_ppm": 0.02,
                "temp_c": 21.5,
                "rh_pct": 64,
            }
        ]
    )

    measurement: ClassVar[str] = "odor"

    nh3_ppm: Ppm
    h2s_ppm: Ppm | None = None
    temp_c: Annotated[float, Field(ge=-40, le=85)] | None = None
    rh_pct: Percent | None = None
