"""InfluxDB line protocol for readings, status and the pipeline's own points (SPEC section 5).

Integers are written with `i`, numbers as floats, so that a field never changes type;
times are epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from devices.common import Reading
from devices.registry import DEVICE_TYPES
from devices.sites import Device, Registry, escape_tag

FieldValue = int | float | bool | str

#: Per model, the payload keys stored as fields (everything but `ts` and `device_id`).
_FIELDS: dict[type[Reading], tuple[str, ...]] = {
    model: tuple(name for name in model.model_fields if name not in ("ts", "device_id"))
    for model in DEVICE_TYPES.values()
}


def field_value(value: FieldValue) -> str:
    kind = type(value)
    if kind is float:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return f"{value}i"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


#: `repr` of floats already written: sensors repeat their values (a drain of 50,000
#: simulated readings held 202,000 floats, 16,000 distinct), and `repr` of a float (the
#: shortest round-trip digits) was half of `reading_line` (callgrind). Zero is never kept:
#: 0.0 and -0.0 are equal keys with different texts. Cleared when full (about 2 MB).
_FLOAT_TEXT: dict[float, str] = {}
FLOAT_TEXT_MAX = 16_384


def reading_line(device: Device, reading: Reading, ts_ms: int) -> str:
    """One point per good reading: the hot path. Reads the model's `__dict__` and formats
    floats and integers inline (`field_value` for the rest): callgrind counted 31,000
    instructions per reading with `getattr` and `field_value` per field, 22,000 this way."""
    values = reading.__dict__
    parts = []
    for name in _FIELDS[type(reading)]:
        value = values[name]
        if value is None:
            continue
        kind = type(value)
        if kind is float:
            text = _FLOAT_TEXT.get(value)
            if text is None:
                text = repr(value)
                if value:
                    if len(_FLOAT_TEXT) >= FLOAT_TEXT_MAX:
                        _FLOAT_TEXT.clear()
                    _FLOAT_TEXT[value] = text
            parts.append(f"{name}={text}")
        elif kind is int:
            parts.append(f"{name}={value}i")
        else:
            parts.append(f"{name}={field_value(value)}")
    return f"{reading.measurement},{device.tags} {','.join(parts)} {ts_ms}"


def status_line(device: Device, online: bool, ts_ms: int) -> str:
    return (
        f"device_status,device_id={escape_tag(device.id)},device_type={device.type},"
        f"site_id={escape_tag(device.site.id)} online={'true' if online else 'false'} {ts_ms}"
    )


def point(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue | None],
    ts_ms: int,
) -> str:
    """A general point; tags with empty values and fields with None are left out."""
    tag_part = "".join(
        f",{escape_tag(key)}={escape_tag(value)}" for key, value in sorted(tags.items()) if value
    )
    field_part = ",".join(
        f"{escape_tag(key)}={field_value(value)}" for key, value in fields.items()
        if value is not None
    )
    return f"{escape_tag(measurement)}{tag_part} {field_part} {ts_ms}"


def join_lines(lines: Iterable[str]) -> bytes:
    return "\n".join(lines).encode()


def site_points(registry: Registry, ts_ms: int) -> list[str]:
    """One `sites` point per site (name, place, how many devices), for the map panels."""
    counts: dict[str, int] = {}
    for device in registry.devices.values():
        counts[device.site.id] = counts.get(device.site.id, 0) + 1
    return [
        point(
            "sites", {"site_id": site.id, "district": site.district, "site_kind": site.kind},
            {"name": site.name, "lat": float(site.lat), "lon": float(site.lon),
             "devices": counts.get(site.id, 0)},
            ts_ms,
        )
        for site in registry.sites.values()
    ]
