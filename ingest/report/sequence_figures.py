"""Figures that need each reading after the one before it: transfer stations (peak fill,
collections, tonnage hauled) and sprayers (refills). Pure; fed in time order per device,
in as many slices of the period as the caller likes."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A drop of the container's weight by at least this much between two readings is a
#: collection (the hauler took the container away); smaller ones are scale noise.
COLLECTION_MIN_DROP_KG = 50.0
#: A rise of the liquid level by at least this much between two readings is a refill.
REFILL_MIN_RISE_PCT = 5.0


@dataclass(slots=True)
class StationTally:
    device_id: str
    site_id: str
    peak_fill_pct: float | None = None
    collections: int = 0
    hauled_kg: float = 0.0
    readings: int = 0
    _last_weight: float | None = field(default=None, repr=False)

    def feed(self, fill_pct: float | None, weight_kg: float | None) -> None:
        self.readings += 1
        if fill_pct is not None:
            top = self.peak_fill_pct
            self.peak_fill_pct = fill_pct if top is None else max(top, fill_pct)
        if weight_kg is None:
            return
        last, self._last_weight = self._last_weight, weight_kg
        if last is not None and last - weight_kg >= COLLECTION_MIN_DROP_KG:
            self.collections += 1
            self.hauled_kg += last - weight_kg


@dataclass(slots=True)
class SprayerTally:
    device_id: str
    site_id: str
    refills: int = 0
    sprays: int = 0
    min_liquid_pct: float | None = None
    readings: int = 0
    _last_liquid: float | None = field(default=None, repr=False)

    def feed(self, liquid_pct: float | None, sprays: int | None) -> None:
        self.readings += 1
        self.sprays += sprays or 0
        if liquid_pct is None:
            return
        low = self.min_liquid_pct
        self.min_liquid_pct = liquid_pct if low is None else min(low, liquid_pct)
        last, self._last_liquid = self._last_liquid, liquid_pct
        if last is not None and liquid_pct - last >= REFILL_MIN_RISE_PCT:
            self.refills += 1
