"""Fault injection: the kinds, their rates, and the pure functions that spoil a reading.

Each kind that breaks a message names the reject reason the pipeline must give it
(SPEC section 3); the others (duplicates, silence, a stuck sensor, bursts) send valid
readings in awkward ways.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class FaultKind(StrEnum):
    MALFORMED_JSON = "malformed_json"
    OUT_OF_RANGE = "out_of_range"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_MISMATCH = "device_mismatch"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    CLOCK_SKEW = "clock_skew"
    DUPLICATE = "duplicate"
    SILENCE = "silence"
    STUCK = "stuck"
    BURST = "burst"
    #: A toilet terminal's water starts running (a cistern that does not stop) for hours.
    LEAK = "leak"


#: The reject reason each message-breaking kind must produce.
REJECT_REASON: dict[FaultKind, str] = {
    FaultKind.MALFORMED_JSON: "malformed_json",
    FaultKind.OUT_OF_RANGE: "out_of_range",
    FaultKind.WRONG_TYPE: "schema_invalid",
    FaultKind.UNKNOWN_DEVICE: "unknown_device",
    FaultKind.DEVICE_MISMATCH: "device_mismatch",
    FaultKind.PAYLOAD_TOO_LARGE: "payload_too_large",
    FaultKind.CLOCK_SKEW: "clock_skew",
}
MAX_PAYLOAD_BYTES = 16 * 1024


class FaultRateError(ValueError):
    """A `--fault` or `--faults` value cannot be used; the message says what would be."""


@dataclass(frozen=True)
class FaultRates:
    """Chance per scheduled reading of each fault kind (at most one fault per reading)."""

    rates: dict[FaultKind, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, rate in self.rates.items():
            if not 0 <= rate <= 1:
                raise FaultRateError(f"fault {kind}: rate {rate} is not between 0 and 1")
        if sum(self.rates.values()) > 1 + 1e-9:
            raise FaultRateError(
                f"fault rates add up to {sum(self.rates.values()):.3f}; at most 1 is possible"
            )

    @classmethod
    def parse(cls, specs: list[str], total: float = 0.0) -> FaultRates:
        """`["malformed_json=0.01", ...]`, plus `total` spread evenly over every kind."""
        rates = dict.fromkeys(FaultKind, total / len(FaultKind)) if total else {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            try:
                kind = FaultKind(name.strip())
            except ValueError:
                kinds = ", ".join(FaultKind)
                raise FaultRateError(
                    f"--fault {spec!r}: unknown kind {name!r}; one of {kinds}"
                ) from None
            try:
                rates[kind] = float(value) if sep else 0.0
            except ValueError:
                raise FaultRateError(f"--fault {spec!r}: rate {value!r} is not a number") from None
            if not sep:
                raise FaultRateError(f"--fault {spec!r}: write KIND=RATE, e.g. {kind}=0.01")
        return cls({k: v for k, v in rates.items() if v > 0})

    def pick(self, rng: random.Random) -> FaultKind | None:
        if not self.rates:
            return None
        draw = rng.random()
        for kind, rate in self.rates.items():
            if draw < rate:
                return kind
            draw -= rate
        return None


#: Per type: (key, an out-of-range value); several so every model bound gets exercised.
OUT_OF_RANGE: dict[str, tuple[tuple[str, Any], ...]] = {
    "people_counter": (("entries", -3), ("entries", 10_001), ("occupancy", 1_500)),
    "odor": (("nh3_ppm", 140.0), ("nh3_ppm", -0.5), ("temp_c", 120.0), ("rh_pct", 101.5)),
    "station_terminal": (("fill_pct", 112.0), ("fill_pct", -4.0), ("weight_kg", 250_000.0)),
    "sprayer": (("liquid_pct", -2.0), ("liquid_pct", 130.0), ("sprays", -1)),
    "toilet_terminal": (("stalls_free", -1), ("stalls_free", 501), ("paper_pct", 104.0),
                        ("water_m3", -3.0), ("rating_bad", 10_001)),
}
COMMON_OUT_OF_RANGE: tuple[tuple[str, Any], ...] = (("battery_pct", 140.0), ("rssi_dbm", 12.0))
#: Per type: the required key, whose value a wrong-type fault replaces or drops.
REQUIRED_KEY = {
    "people_counter": "entries",
    "odor": "nh3_ppm",
    "station_terminal": "fill_pct",
    "sprayer": "liquid_pct",
    "toilet_terminal": "stalls_free",
}


def out_of_range(payload: dict[str, Any], device_type: str, rng: random.Random) -> dict[str, Any]:
    key, value = rng.choice(OUT_OF_RANGE[device_type] + COMMON_OUT_OF_RANGE)
    return {**payload, key: value}


def wrong_type(payload: dict[str, Any], device_type: str, rng: random.Random) -> dict[str, Any]:
    key = REQUIRED_KEY[device_type]
    variant = rng.randrange(4)
    if variant == 0:
        return {k: v for k, v in payload.items() if k != key}  # required key missing
    if variant == 1:
        return {**payload, key: str(payload[key])}  # "12.5", not 12.5
    if variant == 2:
        return {**payload, key: [payload[key]]}
    return {**payload, "seq": f"{payload['seq']}"}


def malformed_json(payload: bytes, rng: random.Random) -> bytes:
    variant = rng.randrange(3)
    if variant == 0:
        return payload[: rng.randrange(1, len(payload) - 1)]  # cut off mid-message
    if variant == 1:
        return payload.replace(b'"', b"'", 2)
    return b"\xff\xfe" + payload  # not UTF-8


def too_large(payload: dict[str, Any]) -> bytes:
    return orjson.dumps({**payload, "debug_log": "x" * (MAX_PAYLOAD_BYTES + 100)})
