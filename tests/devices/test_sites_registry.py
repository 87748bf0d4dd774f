"""The site registry (SPEC section 4): loading, errors that name site/device/key,
uniqueness, defaults and the escaped line-protocol tag set of each device."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.sites import (
    Device,
    Registry,
    RegistryError,
    SiteEntry,
    escape_tag,
    valid_id,
)

ROOT = Path(__file__).resolve().parents[2]

CITY: dict[str, Any] = {
    "sites": [
        {
            "id": "WC-0001",
            "kind": "toilet",
            "name": "People's Park North",
            "district": "Jinjiang",
            "lat": 30.657,
            "lon": 104.066,
            "devices": [
                {"id": "WC-0001-PC-1", "type": "people_counter", "interval_s": 60},
                {"id": "WC-0001-OD-1", "type": "odor"},
                {"id": "WC-0001-SP-1", "type": "sprayer", "interval_s": 300,
                 "alerts": {"sprayer_liquid_low": {"below": 10}}},
            ],
        },
        {
            "id": "TS-0001",
            "kind": "transfer_station",
            "name": "West Gate Station",
            "district": "Wu Hou, West=1",
            "lat": -90,
            "lon": 180,
            "alerts": {"station_fill_high": {"above": 95}},
            "devices": [{"id": "TS-0001-ST-1", "type": "station_terminal", "interval_s": 30.5}],
        },
    ]
}


def city(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CITY)
    data["sites"][0].update(changes)
    return data


def with_device(**fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(CITY)
    data["sites"][0]["devices"][0].update(fields)
    return data


def error_of(data: Any, source: str = "city.yaml") -> str:
    with pytest.raises(RegistryError) as info:
        Registry.from_dict(data, source)
    return str(info.value)


# --- a good registry ------------------------------------------------------------------


def test_devices_are_indexed_by_id_with_their_site() -> None:
    registry = Registry.from_dict(CITY)
    assert len(registry) == 4
    assert set(registry.devices) == {"WC-0001-PC-1", "WC-0001-OD-1", "WC-0001-SP-1",
                                     "TS-0001-ST-1"}
    assert set(registry.sites) == {"WC-0001", "TS-0001"}
    odor = registry.devices["WC-0001-OD-1"]
    assert isinstance(odor, Device)
    assert (odor.id, odor.type, odor.interval_s) == ("WC-0001-OD-1", "odor", 60)
    assert isinstance(odor.site, SiteEntry)
    assert (odor.site.id, odor.site.kind, odor.site.name, odor.site.district) == (
        "WC-0001", "toilet", "People's Park North", "Jinjiang")
    assert (odor.site.lat, odor.site.lon) == (30.657, 104.066)
    assert registry.devices["TS-0001-ST-1"].interval_s == 30.5
    assert registry.devices["WC-0001-SP-1"].interval_s == 300


def test_alert_overrides_are_kept_per_site_and_device() -> None:
    registry = Registry.from_dict(CITY)
    assert registry.devices["WC-0001-SP-1"].alerts == {"sprayer_liquid_low": {"below": 10}}
    assert registry.devices["WC-0001-OD-1"].alerts == {}
    assert registry.sites["TS-0001"].alerts == {"station_fill_high": {"above": 95}}
    assert registry.sites["WC-0001"].alerts == {}


def test_a_site_without_devices_and_an_empty_city_are_valid() -> None:
    data = city()
    del data["sites"][0]["devices"]
    registry = Registry.from_dict(data)
    assert registry.sites["WC-0001"].devices == []
    assert len(registry) == 1
    assert len(Registry.from_dict({"sites": []})) == 0


def test_tags_are_the_four_site_tags_escaped() -> None:
    registry = Registry.from_dict(CITY)
    assert registry.devices["WC-0001-OD-1"].tags == (
        "district=Jinjiang,device_id=WC-0001-OD-1,site_id=WC-0001,site_kind=toilet")
    assert registry.devices["TS-0001-ST-1"].tags == (
        r"district=Wu\ Hou\,\ West\=1,device_id=TS-0001-ST-1,site_id=TS-0001,"
        "site_kind=transfer_station")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a b", r"a\ b"),
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ("two\nlines", r"two\nlines"),
        ("中文 区", r"中文\ 区"),
    ],
    ids=repr,
)
def test_escape_tag(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


def test_escape_tag_leaves_a_lone_backslash_as_is() -> None:
    assert escape_tag("a\\b") == "a\\b"


def test_a_district_ending_in_a_backslash_is_refused_or_writable() -> None:
    try:
        registry = Registry.from_dict(city(district="end\\"))
    except RegistryError as exc:
        assert "district" in str(exc)
        return
    assert "\\," not in registry.devices["WC-0001-OD-1"].tags


def test_load_reads_yaml_and_to_dict_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(CITY), encoding="utf-8")
    registry = Registry.load(path)
    again = Registry.from_dict(registry.to_dict())
    assert again.to_dict() == registry.to_dict()
    assert {d: v.tags for d, v in again.devices.items()} == {
        d: v.tags for d, v in registry.devices.items()}
    assert registry.to_dict()["sites"][0]["devices"][1] == {
        "id": "WC-0001-OD-1", "type": "odor", "interval_s": 60, "alerts": {}}


def test_the_shipped_example_registry_loads() -> None:
    registry = Registry.load(ROOT / "config" / "registry.yaml")
    assert len(registry) > 0
    assert all(device.site.id in registry.sites for device in registry.devices.values())


# --- ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "A" * 64, "WC-0001", "9_x-Y", "0"], ids=repr)
def test_valid_ids(value: str) -> None:
    assert valid_id(value)
    assert Registry.from_dict(with_device(id=value)).devices[value].id == value


@pytest.mark.parametrize(
    "value", ["", "A" * 65, "_alerts", "-x", "a b", "a/b", "a+b", "a#", "é", "a.b", "a\tb"],
    ids=repr,
)
def test_invalid_ids(value: str) -> None:
    assert not valid_id(value)
    message = error_of(with_device(id=value))
    assert "site 'WC-0001'" in message and "key 'id'" in message
    message = error_of(city(id=value))
    assert "key 'id'" in message


def test_an_id_with_a_trailing_newline_is_invalid() -> None:
    assert not valid_id("WC-0001\n")


def test_the_registry_refuses_an_id_with_a_trailing_newline() -> None:
    assert "key 'id'" in error_of(with_device(id="WC-0001-OD-1\n"))


# --- errors name the file, site, device and key --------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "toaster"}, ["device 'WC-0001-PC-1'", "key 'type'", "toaster", "odor"]),
        ({"type": "_dlq"}, ["device 'WC-0001-PC-1'", "key 'type'"]),
        ({"interval_s": 0}, ["device 'WC-0001-PC-1'", "key 'interval_s'"]),
        ({"interval_s": -5}, ["device 'WC-0001-PC-1'", "key 'interval_s'"]),
        ({"interval_s": 86_401}, ["device 'WC-0001-PC-1'", "key 'interval_s'"]),
        ({"interval_s": "often"}, ["device 'WC-0001-PC-1'", "key 'interval_s'"]),
        ({"colour": "red"}, ["device 'WC-0001-PC-1'", "key 'colour'"]),
        ({"alerts": ["x"]}, ["device 'WC-0001-PC-1'", "key 'alerts'"]),
    ],
    ids=repr,
)
def test_device_errors_name_file_site_device_and_key(
    change: dict[str, Any], words: list[str]
) -> None:
    message = error_of(with_device(**change))
    assert message.startswith("city.yaml:")
    for word in ["site 'WC-0001'", *words]:
        assert word in message, (word, message)


def test_interval_s_accepts_its_edges() -> None:
    assert Registry.from_dict(with_device(interval_s=86_400)).devices[
        "WC-0001-PC-1"].interval_s == 86_400
    assert Registry.from_dict(with_device(interval_s=0.001)).devices[
        "WC-0001-PC-1"].interval_s == 0.001


def test_a_device_without_id_is_named_by_position() -> None:
    data = copy.deepcopy(CITY)
    data["sites"][0]["devices"].append({"type": "odor"})
    message = error_of(data)
    assert "site 'WC-0001' device #4 key 'id'" in message
    assert "Field required" in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"kind": "park"}, "kind"),
        ({"lat": 90.0001}, "lat"),
        ({"lat": -91}, "lat"),
        ({"lon": 180.5}, "lon"),
        ({"lon": -181}, "lon"),
        ({"name": None}, "name"),
        ({"district": 5}, "district"),
        ({"devices": {"id": "x"}}, "devices"),
        ({"colour": "red"}, "colour"),
    ],
    ids=repr,
)
def test_site_errors_name_the_site_and_key(change: dict[str, Any], key: str) -> None:
    message = error_of(city(**change))
    assert "site 'WC-0001'" in message and f"key '{key}'" in message, message


def test_site_lat_lon_edges_are_accepted() -> None:
    for lat, lon in [(90, 180), (-90, -180), (0, 0)]:
        site = Registry.from_dict(city(lat=lat, lon=lon)).sites["WC-0001"]
        assert (site.lat, site.lon) == (lat, lon)


def test_a_site_without_id_is_named_by_position_and_each_missing_key_listed() -> None:
    data = copy.deepcopy(CITY)
    data["sites"].append({"kind": "toilet"})
    message = error_of(data)
    for key in ("id", "name", "district", "lat", "lon"):
        assert f"site #3 key '{key}'" in message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], ["expected a mapping", "'sites'"]),
        (None, ["expected a mapping"]),
        ("sites", ["expected a mapping"]),
        ({}, ["key 'sites'", "required"]),
        ({"sites": "x"}, ["key 'sites'"]),
        ({"sites": [], "extra": 1}, ["key 'extra'"]),
    ],
    ids=repr,
)
def test_top_level_errors(data: Any, words: list[str]) -> None:
    message = error_of(data)
    assert message.startswith("city.yaml:")
    for word in words:
        assert word in message


def test_duplicate_site_ids_are_refused() -> None:
    data = copy.deepcopy(CITY)
    data["sites"].append({**copy.deepcopy(CITY["sites"][1]), "devices": []})
    message = error_of(data)
    assert "site 'TS-0001'" in message and "twice" in message


def test_duplicate_device_ids_are_refused_naming_both_sites() -> None:
    data = copy.deepcopy(CITY)
    data["sites"][1]["devices"].append({"id": "WC-0001-OD-1", "type": "odor"})
    message = error_of(data)
    assert "device 'WC-0001-OD-1'" in message
    assert "'TS-0001'" in message and "'WC-0001'" in message


def test_duplicate_device_ids_within_a_site_are_refused() -> None:
    data = copy.deepcopy(CITY)
    data["sites"][0]["devices"].append({"id": "WC-0001-OD-1", "type": "sprayer"})
    assert "device 'WC-0001-OD-1'" in error_of(data)


def test_a_duplicate_in_a_file_names_the_file(tmp_path: Path) -> None:
    data = copy.deepcopy(CITY)
    data["sites"][1]["devices"].append({"id": "WC-0001-OD-1", "type": "odor"})
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        Registry.load(path)
    assert str(path) in str(info.value)


def test_an_empty_district_does_not_produce_an_empty_tag() -> None:
    try:
        registry = Registry.from_dict(city(district=""))
    except RegistryError as exc:
        assert "district" in str(exc)
        return
    tags = registry.devices["WC-0001-OD-1"].tags
    assert "district=," not in tags and not tags.endswith("=")


# --- files ---------------------------------------------------------------------------------


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(RegistryError) as info:
        Registry.load(path)
    assert str(path) in str(info.value) and "cannot be read" in str(info.value)


def test_load_names_a_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sites: [\n  - {id: x\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        Registry.load(path)
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value)


def test_load_names_the_file_in_schema_errors(tmp_path: Path) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(with_device(type="toaster")), encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        Registry.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "site 'WC-0001' device 'WC-0001-PC-1' key 'type'" in message


def test_load_of_an_empty_file_says_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        Registry.load(path)
    assert str(path) in str(info.value) and "'sites'" in str(info.value)
