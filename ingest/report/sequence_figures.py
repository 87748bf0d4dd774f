"""Figures over consecutive readings of one device: transfer stations (peak fill,
collections, tonnage hauled) and sprayers (refills). InfluxDB computes the steps between
readings (`difference()` in a subquery), so no reading crosses the wire; these hold the
answers and say what counts."""

from __future__ import annotations

from dataclasses import dataclass

#: A drop of the container's weight by at least this much between two consecutive readings
#: is a collection (the hauler took the container away); smaller ones are scale noise.
COLLECTION_MIN_DROP_KG = 50.0
#: A rise of the liquid level by at least this much between two consecutive readings is a
#: refill.
REFILL_MIN_RISE_PCT = 5.0


@dataclass(slots=True)
class StationTally:
    device_id: str
    site_id: str
    peak_fill_pct: float | None = None
    collections: int = 0
    hauled_kg: float = 0.0


@dataclass(slots=True)
class SprayerTally:
    device_id: str
    site_id: str
    refills: int = 0
    sprays: int = 0
    min_liquid_pct: float | None = None


def steps_query(measurement: str, field: str, where: str, condition: str) -> str:
    """Per device: how many steps between consecutive readings of `field` meet `condition`
    (on `d`, the step), and their sum."""
    return (f'SELECT count("d") AS n, sum("d") AS total FROM (SELECT difference("{field}") '
            f'AS d FROM "{measurement}" WHERE {where} GROUP BY "device_id", "site_id") '
            f'WHERE {condition} GROUP BY "device_id", "site_id"')
