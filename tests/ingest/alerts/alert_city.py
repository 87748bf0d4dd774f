"""Shared data of the alert tests: a small city, small rules, readings (imported by them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devices.common import Reading
from devices.odor import OdorReading

if TYPE_CHECKING:
    from ingest.alerts import AlertEngine

#: `make_engine(rules=None, city=None, state_dir=None)`, the fixture of conftest.py
EngineFactory = Callable[..., "AlertEngine"]

#: 2025-11-24T16:00:00Z
T0 = 1_764_000_000_000
MINUTE = 60_000

CITY: dict[str, Any] = {
    "sites": [
        {
            "id": "WC-0001", "kind": "toilet", "name": "People's Park North",
            "district": "Jinjiang", "lat": 30.657, "lon": 104.066,
            "devices": [
                {"id": "WC-0001-OD-1", "type": "odor", "interval_s": 60},
                {"id": "WC-0001-OD-2", "type": "odor", "interval_s": 60},
                {"id": "WC-0001-SP-1", "type": "sprayer", "interval_s": 300},
                {"id": "WC-0001-PC-1", "type": "people_counter", "interval_s": 60},
            ],
        },
        {
            "id": "TS-0001", "kind": "transfer_station", "name": "Shahe Transfer Station",
            "district": "Chenghua", "lat": 30.68, "lon": 104.1,
            "devices": [
                {"id": "TS-0001-ST-1", "type": "station_terminal", "interval_s": 60},
                {"id": "TS-0001-OD-1", "type": "odor", "interval_s": 60},
            ],
        },
    ]
}

RULES: dict[str, Any] = {
    "rules": {
        "odor_nh3_high": {
            "device_type": "odor", "field": "nh3_ppm", "for": "2m",
            "levels": {"warning": {"above": 2.0, "recover": 1.5},
                       "critical": {"above": 5.0, "recover": 4.0}},
            "site_kind": {"transfer_station": {"levels": {"warning": {"above": 6.0,
                                                                      "recover": 5.0},
                                                          "critical": {"above": 30.0,
                                                                       "recover": 20.0}}}},
        },
        "station_compactor_fault": {"device_type": "station_terminal", "field": "compactor",
                                    "equals": "fault", "severity": "critical"},
        "sprayer_fault": {"device_type": "sprayer", "field": "state",
                          "equals": ["fault", "empty"]},
        "sprayer_liquid_low": {"device_type": "sprayer", "field": "liquid_pct",
                               "below": 15, "recover": 30},
        "battery_low": {"device_type": "*", "field": "battery_pct", "below": 15, "recover": 30},
        "offline": {"missed_intervals": 3, "severity": "warning"},
    }
}


def odor(nh3: float, **extra: Any) -> Reading:
    return OdorReading(nh3_ppm=nh3, **extra)


#: The rules of the end-to-end tests (through `sanitel ingest`), as `rules_file` writes them.
E2E_RULES: dict[str, Any] = {
    "rules": {
        "odor_nh3_high": {"device_type": "odor", "field": "nh3_ppm",
                          "levels": {"warning": {"above": 2.0, "recover": 1.5},
                                     "critical": {"above": 5.0, "recover": 4.0}}},
        "battery_low": {"field": "battery_pct", "below": 15, "recover": 30},
        "offline": {"missed_intervals": 3},
    }
}
