"""The status message a device publishes (retained, and as its MQTT last will)."""

from __future__ import annotations

from pydantic import BaseModel

from devices.common import Timestamp, reading_config, timestamp_ms


class StatusMessage(BaseModel):
    model_config = reading_config(
        examples=[{"online": True}, {"online": False, "ts": 1795507200000}]
    )

    online: bool
    ts: Timestamp | None = None
    device_id: str | None = None

    def ts_ms(self, default_ms: int) -> int:
        return timestamp_ms(self.ts, default_ms)
