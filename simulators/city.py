"""A seeded city generator: toilets and transfer stations across the districts of Chengdu.

`generate_city(sites, seed)` returns a registry dict (SPEC section 4) that
`devices.sites.Registry.from_dict` accepts; `write_registry` writes it as YAML.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

#: District -> (lat, lon) of its centre, roughly; sites scatter around it.
DISTRICTS: dict[str, tuple[float, float]] = {
    "Jinjiang": (30.642, 104.085),
    "Qingyang": (30.674, 104.047),
    "Jinniu": (30.698, 104.052),
    "Wuhou": (30.628, 104.043),
    "Chenghua": (30.676, 104.102),
    "Gaoxin": (30.583, 104.063),
    "Longquanyi": (30.557, 104.271),
    "Shuangliu": (30.574, 103.923),
    "Pidu": (30.808, 103.888),
    "Xindu": (30.823, 104.159),
}

#: Central districts get most of the sites.
DISTRICT_WEIGHTS = (14, 12, 12, 12, 11, 10, 6, 6, 6, 6)

PLACES = (
    "Tianfu",
    "Chunxi",
    "Kuanzhai",
    "Wenshu",
    "Jinli",
    "Huaxi",
    "Tongzilin",
    "Yulin",
    "Hongxing",
    "Shuangqiao",
    "Jiuyanqiao",
    "Wangjiang",
    "Qingshui",
    "Funan",
    "Shahe",
    "Baihuatan",
    "Dongjiao",
    "Jinsha",
    "Huanhua",
    "Caotang",
    "Moxi",
    "Longtan",
    "Xipu",
    "Taisheng",
    "Luomashi",
    "Yangxi",
    "Guixi",
    "Shiyang",
    "Jincheng",
    "Xinhong",
)
#: Landmarks a toilet is named after; "Park", "Station", "Square", "Market" make a busy site
#: (see simulators.people_counter.popularity).
TOILET_LANDMARKS = (
    "Park",
    "Metro Station",
    "Square",
    "Market",
    "Street",
    "Lane",
    "Bus Terminal",
    "Riverside",
    "Community Center",
    "Railway Station",
    "Park",
    "Old Street",
)
COMPASS = ("North", "South", "East", "West", "Gate", "")

#: Reporting interval per device type, seconds.
INTERVALS: dict[str, int] = {
    "people_counter": 60,
    "odor": 60,
    "station_terminal": 60,
    "sprayer": 300,
    "toilet_terminal": 300,
}
TYPE_CODES: dict[str, str] = {
    "people_counter": "PC",
    "odor": "OD",
    "station_terminal": "ST",
    "sprayer": "SP",
    "toilet_terminal": "TT",
}
#: Share of toilets with a management terminal (SPEC v1.1), and the landmarks whose
#: toilets never close.
TERMINAL_SHARE = 0.8
ALWAYS_OPEN = ("Metro Station", "Railway Station", "Bus Terminal")
#: Share of transfer stations among the sites.
STATION_SHARE = 0.15


def generate_city(sites: int, seed: int = 0) -> dict[str, Any]:
    """A registry dict of `sites` sites: about 85 % toilets (people counter, odor sensor and,
    mostly, a sprayer and a management terminal) and 15 % transfer stations (terminal, odor
    sensor, mostly a sprayer). Toilets at stations are open day and night."""
    if sites < 1:
        raise ValueError(f"a city needs at least one site, got sites={sites}")
    rng = random.Random(f"city/{seed}")
    stations = max(1, round(sites * STATION_SHARE)) if sites > 1 else 0
    kinds = ["transfer_station"] * stations + ["toilet"] * (sites - stations)
    rng.shuffle(kinds)
    counters = {"toilet": 0, "transfer_station": 0}
    names: set[str] = set()
    entries = []
    for kind in kinds:
        counters[kind] += 1
        entries.append(_site(rng, kind, counters[kind], names, seed))
    return {"sites": entries}


def _site(rng: random.Random, kind: str, number: int, names: set[str], seed: int
          ) -> dict[str, Any]:
    district = rng.choices(list(DISTRICTS), weights=DISTRICT_WEIGHTS)[0]
    lat0, lon0 = DISTRICTS[district]
    if kind == "toilet":
        site_id = f"WC-{number:04d}"
        name = f"{rng.choice(PLACES)} {rng.choice(TOILET_LANDMARKS)} {rng.choice(COMPASS)}"
        types = ["people_counter", "odor"] + (["sprayer"] if rng.random() < 0.85 else [])
    else:
        site_id = f"TS-{number:04d}"
        name = f"{rng.choice(PLACES)} Transfer Station"
        types = ["station_terminal", "odor"] + (["sprayer"] if rng.random() < 0.9 else [])
    name = _unique(name.strip(), names)
    extra: dict[str, Any] = {}
    if kind == "toilet":
        # Its own draw: the rest of the city is the same as before terminals existed.
        if random.Random(f"city/{seed}/terminal/{site_id}").random() < TERMINAL_SHARE:
            types.append("toilet_terminal")
        if any(landmark in name for landmark in ALWAYS_OPEN):
            extra["open_hours"] = "00:00-24:00"
    return {
        "id": site_id,
        "kind": kind,
        "name": name,
        "district": district,
        "lat": round(lat0 + rng.gauss(0, 0.02), 5),
        "lon": round(lon0 + rng.gauss(0, 0.02), 5),
        "devices": [
            {
                "id": f"{site_id}-{TYPE_CODES[t]}-1",
                "type": t,
                "interval_s": INTERVALS[t],
            }
            for t in types
        ],
        **extra,
    }


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} No. {n}"
    taken.add(candidate)
    return candidate


def write_registry(data: dict[str, Any], path: str | Path) -> Path:
    """Write a registry dict as YAML, one flow-style line per device."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    header = "# Generated by `sanitel simulate --sites N --write-registry PATH`.\n"
    body = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(header + body, encoding="utf-8")
    return path
