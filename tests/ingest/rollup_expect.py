"""The rollups of SPEC section 9 computed in plain Python from raw rows, independently of
the InfluxQL that `ingest.rollups` runs: the tests' expected values."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from statistics import fmean
from typing import Any

HOUR = 3_600_000
Row = dict[str, Any]
Key = tuple[str, int]  # (device_id, hour start)


def _present(rows: list[Row], name: str) -> list[Any]:
    return [row[name] for row in rows if row.get(name) is not None]


def _agg(function: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
    return lambda values: function(values) if values else None


SIMPLE: dict[str, dict[str, tuple[str, Callable[[list[Any]], Any]]]] = {
    "people_flow": {"entries_sum": ("entries", _agg(sum)), "exits_sum": ("exits", _agg(sum)),
                    "occupancy_max": ("occupancy", _agg(max))},
    "odor": {"nh3_ppm_mean": ("nh3_ppm", _agg(fmean)), "nh3_ppm_max": ("nh3_ppm", _agg(max)),
             "h2s_ppm_mean": ("h2s_ppm", _agg(fmean)), "h2s_ppm_max": ("h2s_ppm", _agg(max))},
    "station": {"fill_pct_max": ("fill_pct", _agg(max)), "weight_kg_max": ("weight_kg", _agg(max))},
    "sprayer": {"sprays_sum": ("sprays", _agg(sum)), "liquid_pct_min": ("liquid_pct", _agg(min))},
    "toilet": {"stalls_free_min": ("stalls_free", _agg(min)),
               "rating_good_sum": ("rating_good", _agg(sum)),
               "rating_ok_sum": ("rating_ok", _agg(sum)),
               "rating_bad_sum": ("rating_bad", _agg(sum)),
               "cleanings": ("cleaned_by", len)},
}
METERS = {"water_m3_used": "water_m3", "power_kwh_used": "power_kwh"}


def by_device_hour(rows: Iterable[Row]) -> dict[Key, list[Row]]:
    groups: dict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        groups[(row["device_id"], row["time"] - row["time"] % HOUR)].append(row)
    return groups


def expected(measurement: str, rows: list[Row]) -> dict[Key, Row]:
    """(device_id, hour) -> the rollup fields (None where no reading had the field)."""
    out: dict[Key, Row] = {}
    for key, group in by_device_hour(rows).items():
        fields = {name: function(_present(group, raw))
                  for name, (raw, function) in SIMPLE[measurement].items()}
        tags = {tag: group[0][tag] for tag in ("site_id", "district", "site_kind")}
        out[key] = {**fields, **tags}
    if measurement == "toilet":
        _meter_use(rows, out)
    return out


def _meter_use(rows: list[Row], out: dict[Key, Row]) -> None:
    """An hour's use: its last reading minus the last reading before it (within 24 h),
    or minus its own first reading when there is none; never negative."""
    per_device: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        per_device[row["device_id"]].append(row)
    for device, readings in per_device.items():
        readings.sort(key=lambda r: r["time"])
        for (dev, hour), fields in out.items():
            if dev != device:
                continue
            for used, raw in METERS.items():
                inside = [r[raw] for r in readings
                          if hour <= r["time"] < hour + HOUR and r.get(raw) is not None]
                before = [r[raw] for r in readings
                          if hour - 24 * HOUR <= r["time"] < hour and r.get(raw) is not None]
                start = before[-1] if before else (inside[0] if inside else None)
                fields[used] = None if not inside or start is None else max(
                    0.0, inside[-1] - start)


def same(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(want), float(got), rel_tol=1e-9, abs_tol=1e-9)
    return bool(want == got)


def differences(want: dict[Key, Row], got: dict[Key, Row]) -> list[str]:
    problems = [f"hour {key} missing from the rollup" for key in want.keys() - got.keys()]
    problems += [f"hour {key} in the rollup but has no readings" for key in
                 got.keys() - want.keys()]
    for key in want.keys() & got.keys():
        for name, value in want[key].items():
            if not same(value, got[key].get(name)):
                problems.append(f"{key} {name}: raw gives {value!r}, rollup has "
                                f"{got[key].get(name)!r}")
    return problems


def district_days(people: list[Row], odor: list[Row]) -> dict[tuple[str, str, int], Row]:
    """(district, site_kind, UTC day) -> people_in, nh3_ppm_max, h2s_ppm_max from raw."""
    out: dict[tuple[str, str, int], Row] = defaultdict(dict)
    day = 24 * HOUR
    for row in people:
        key = (row["district"], row["site_kind"], row["time"] - row["time"] % day)
        out[key]["people_in"] = out[key].get("people_in", 0) + row["entries"]
    for row in odor:
        key = (row["district"], row["site_kind"], row["time"] - row["time"] % day)
        for field in ("nh3_ppm", "h2s_ppm"):
            if row.get(field) is not None:
                out[key][f"{field}_max"] = max(out[key].get(f"{field}_max", row[field]),
                                               row[field])
    return dict(out)
