"""What the simulator sent, so a test can compare it with what the pipeline stored and rejected.

`readings` counts distinct good readings per device type: each should end up as exactly
one point (a duplicate writes the same point again, which InfluxDB keeps once).
`rejected` counts the messages each reject reason should take.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from devices.registry import DEVICE_TYPES


@dataclass
class Tally:
    #: Good readings published, by device type (each counted once, however often sent).
    readings: Counter[str] = field(default_factory=Counter)
    #: Messages the pipeline should reject, by reason.
    rejected: Counter[str] = field(default_factory=Counter)
    #: Faults injected, by kind (an episode counts once: one silence, one stuck run, one burst).
    faults: Counter[str] = field(default_factory=Counter)
    #: Extra copies of good readings published.
    duplicates: int = 0
    #: Good readings frozen by a stuck sensor, or sent in a burst (part of `readings`).
    stuck_readings: int = 0
    burst_readings: int = 0
    #: Readings not sent while a device was silent.
    silenced_readings: int = 0
    status_online: int = 0
    status_offline: int = 0
    #: Telemetry messages published (good, faulty and duplicates).
    messages: int = 0

    @property
    def stored(self) -> int:
        return sum(self.readings.values())

    def stored_by_measurement(self) -> dict[str, int]:
        """Good readings by InfluxDB measurement (`people_flow`, `odor`, `station`, `sprayer`)."""
        out: Counter[str] = Counter()
        for device_type, count in self.readings.items():
            out[DEVICE_TYPES[device_type].measurement] += count
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "readings": dict(sorted(self.readings.items())),
            "stored": self.stored,
            "stored_by_measurement": dict(sorted(self.stored_by_measurement().items())),
            "rejected": dict(sorted(self.rejected.items())),
            "faults": {str(k): v for k, v in sorted(self.faults.items())},
            "duplicates": self.duplicates,
            "stuck_readings": self.stuck_readings,
            "burst_readings": self.burst_readings,
            "silenced_readings": self.silenced_readings,
            "status_online": self.status_online,
            "status_offline": self.status_offline,
            "messages": self.messages,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_json() + b"\n")
        return path
