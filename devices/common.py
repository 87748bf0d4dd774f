"""Keys every device may send (SPEC section 3), shared by the per-type models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
)
from pydantic_core import PydanticCustomError

INT64_MAX = 2**63 - 1

#: Strict JSON typing: "5" is not an int, true is not a number; unknown keys are ignored
#: because firmware adds keys (SPEC section 3).
READING_CONFIG = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)


def reading_config(examples: list[JsonValue]) -> ConfigDict:
    """A device model's config: the strict reading rules, plus example payloads for its
    published JSON Schema (`docs/schemas/`, `docs/asyncapi.yaml`)."""
    return ConfigDict(**READING_CONFIG, json_schema_extra={"examples": examples})

Percent = Annotated[float, Field(ge=0, le=100)]
MAX_TS_MS = INT64_MAX // 1_000_000
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339_text(value: Any) -> Any:
    # pydantic would also take "1795507200000" or "2026-11-24" as a datetime; SPEC 3 does not.
    if not isinstance(value, str):
        return value
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "rfc3339", "ts must be epoch milliseconds or an RFC 3339 time with its offset"
        )
    text = value.upper().replace(" ", "T").replace("Z", "+00:00")
    if fraction := match.group(1):  # datetime keeps microseconds: cut nanoseconds
        text = text.replace(fraction, fraction[:7].ljust(7, "0"), 1)
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise PydanticCustomError("rfc3339", "ts is not a valid RFC 3339 time: {why}",
                                  {"why": str(exc)}) from None


def _after_epoch(value: datetime) -> datetime:
    if not 0 <= value.timestamp() * 1000 <= MAX_TS_MS:
        raise PydanticCustomError(
            "out_of_range", "ts must lie between 1970-01-01T00:00:00Z and 2262-04-11T00:00:00Z"
        )
    return value


#: `ts`: integer epoch milliseconds, or an RFC 3339 string with its offset.
Timestamp = (
    Annotated[int, Field(ge=0, le=MAX_TS_MS)]
    | Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_after_epoch)]
)


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
