"""The city generator and the example registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from devices.sites import Registry
from simulators.city import generate_city, write_registry

ROOT = Path(__file__).resolve().parents[2]


def test_generated_city_is_a_valid_registry_with_both_kinds() -> None:
    registry = Registry.from_dict(generate_city(50, seed=3))
    kinds = Counter(site.kind for site in registry.sites.values())
    assert len(registry.sites) == 50
    assert kinds["toilet"] > kinds["transfer_station"] > 0
    types = {d.type for d in registry.devices.values()}
    assert types == {"people_counter", "odor", "station_terminal", "sprayer", "toilet_terminal"}
    assert len({s.district for s in registry.sites.values()}) > 3


def test_toilets_and_stations_get_their_own_devices() -> None:
    registry = Registry.from_dict(generate_city(200, seed=5))
    for site in registry.sites.values():
        types = {d.type for d in site.devices}
        if site.kind == "toilet":
            assert {"people_counter", "odor"} <= types
            assert "station_terminal" not in types
        else:
            assert {"station_terminal", "odor"} <= types
            assert not {"people_counter", "toilet_terminal"} & types
        assert all(d.id.startswith(site.id + "-") for d in site.devices)


def test_same_seed_same_city_other_seed_other_city() -> None:
    assert generate_city(30, seed=1) == generate_city(30, seed=1)
    assert generate_city(30, seed=1) != generate_city(30, seed=2)


def test_ten_thousand_devices_with_unique_ids() -> None:
    data = generate_city(3_600, seed=0)
    ids = [d["id"] for s in data["sites"] for d in s["devices"]]
    names = [s["name"] for s in data["sites"]]
    registry = Registry.from_dict(data)  # raises on a duplicate id
    assert len(registry) == len(ids) >= 10_000
    assert len(set(names)) == len(names)


def test_sites_lie_around_chengdu() -> None:
    for site in Registry.from_dict(generate_city(300, seed=9)).sites.values():
        assert 30.4 < site.lat < 31.0
        assert 103.7 < site.lon < 104.5


def test_written_registry_loads_back(tmp_path: Path) -> None:
    data = generate_city(12, seed=4)
    path = write_registry(data, tmp_path / "city" / "registry.yaml")
    assert Registry.load(path).to_dict() == Registry.from_dict(data).to_dict()


def test_a_city_needs_a_site() -> None:
    with pytest.raises(ValueError, match="sites=0"):
        generate_city(0)


def test_example_registry_has_every_device_type() -> None:
    registry = Registry.load(ROOT / "config" / "registry.yaml")
    assert 10 <= len(registry.sites) <= 15
    assert {d.type for d in registry.devices.values()} == {
        "people_counter", "odor", "station_terminal", "sprayer", "toilet_terminal"
    }  # fmt: skip
    stations = [s for s in registry.sites.values() if s.kind == "transfer_station"]
    assert stations and all(any(d.type == "station_terminal" for d in s.devices) for s in stations)
