"""Keys every device may send (SPEC section 3), shared by the per-type models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1

#: Strict JSON typing: "5" is not an int, true is not a number; unknown keys are ignored
#: because firmware adds keys (SPEC section 3).
READING_CONFIG = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)

Percent = Annotated[float, Field(ge=0, le=100)]
#: `ts`: integer epoch milliseconds, or an RFC 3339 string with its offset.
Timestamp = Annotated[int, Field(ge=0, le=INT64_MAX // 1_000_000)] | AwareDatetime


class Reading(BaseModel):
    """The common keys of a telemetry payload; every one is optional."""

    model_config = READING_CONFIG

    #: Influx measurement the type is stored in; set by each subclass.
    measurement: ClassVar[str] = ""

    ts: Timestamp | None = None
    seq: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    device_id: str | None = None
    battery_pct: Percent | None = None
    rssi_dbm: Annotated[float, Field(ge=-150, le=0)] | None = None

    def ts_ms(self, default_ms: int) -> int:
        """The measurement time in epoch milliseconds; `default_ms` (receipt) when absent."""
        return timestamp_ms(self.ts, default_ms)


def timestamp_ms(ts: int | datetime | None, default_ms: int) -> int:
    if ts is None:
        return default_ms
    if isinstance(ts, int):
        return ts
    return int(ts.timestamp() * 1000)
