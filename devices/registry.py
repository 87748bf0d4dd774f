"""The device types: a type name (the topic's `device_type` segment) -> its model.

Adding a device type is adding one module and one line here.
"""

from __future__ import annotations

from types import MappingProxyType

from devices.common import Reading
from devices.odor import OdorReading
from devices.people_counter import PeopleCounterReading
from devices.sprayer import SprayerReading
from devices.station_terminal import StationTerminalReading
from devices.toilet_terminal import ToiletTerminalReading

DEVICE_TYPES: MappingProxyType[str, type[Reading]] = MappingProxyType(
    {
        "people_counter": PeopleCounterReading,
        "odor": OdorReading,
        "station_terminal": StationTerminalReading,
        "sprayer": SprayerReading,
        "toilet_terminal": ToiletTerminalReading,
    }
)


def model_for(device_type: str) -> type[Reading] | None:
    return DEVICE_TYPES.get(device_type)
