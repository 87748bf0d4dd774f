"""A site's `open_hours` (SPEC v1.1 section 4): "HH:MM-HH:MM" in the city's time zone,
default 06:00-23:00; a bad value names the site and the key."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from devices.open_hours import OpenHours, OpenHoursError
from devices.sites import Registry, RegistryError

SITE: dict[str, Any] = {
    "id": "WC-0001", "kind": "toilet", "name": "People's Park North", "district": "Jinjiang",
    "lat": 30.657, "lon": 104.066,
    "devices": [{"id": "WC-0001-TT-1", "type": "toilet_terminal", "interval_s": 300}],
}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def registry(**changes: Any) -> Registry:
    site = copy.deepcopy(SITE) | changes
    return Registry.from_dict({"sites": [site]}, "city.yaml")


def ms(text: str, zone: ZoneInfo) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=zone).timestamp() * 1000)


def test_the_default_is_six_to_eleven() -> None:
    site = registry().sites["WC-0001"]
    assert site.open_hours == "06:00-23:00"
    assert site.hours == OpenHours(6 * 60, 23 * 60)


def test_a_toilet_terminal_registers_like_any_device() -> None:
    device = registry().devices["WC-0001-TT-1"]
    assert (device.type, device.interval_s) == ("toilet_terminal", 300)


@pytest.mark.parametrize(
    ("text", "open_at", "closed_at"),
    [
        ("06:00-23:00", ["06:00", "12:00", "22:59"], ["05:59", "23:00", "00:00"]),
        ("22:00-06:00", ["22:00", "23:59", "00:00", "05:59"], ["06:00", "12:00", "21:59"]),
        ("00:00-24:00", ["00:00", "12:00", "23:59"], []),
        ("07:30-07:45", ["07:30", "07:44"], ["07:29", "07:45"]),
    ],
)
def test_open_and_closed_minutes(text: str, open_at: list[str], closed_at: list[str]) -> None:
    hours = registry(open_hours=text).sites["WC-0001"].hours
    for moment, expected in [(m, True) for m in open_at] + [(m, False) for m in closed_at]:
        instant = ms(f"2026-11-24T{moment}:00", SHANGHAI)
        assert hours.is_open(instant, SHANGHAI) is expected, (text, moment)


def test_local_time_is_the_city_zone_not_utc() -> None:
    hours = OpenHours.parse("06:00-23:00")
    seven_local = ms("2026-11-24T07:00:00", SHANGHAI)  # 23:00 UTC the day before
    assert hours.is_open(seven_local, SHANGHAI)
    assert not hours.is_open(seven_local)  # in UTC it is 23:00: closed


@pytest.mark.parametrize(
    "text",
    ["6:00-23:00", "06:00", "06:00-23:60", "24:00-06:00", "06:00-24:30", "08:00-08:00",
     "06.00-23.00", "", "always"],
)
def test_bad_open_hours_name_the_site_and_key(text: str) -> None:
    with pytest.raises(RegistryError) as info:
        registry(open_hours=text)
    message = str(info.value)
    assert "city.yaml" in message and "site 'WC-0001'" in message
    assert "key 'open_hours'" in message, message
    assert any(word in message for word in ("HH:MM-HH:MM", "00-23", "00:00-24:00")), message


def test_open_hours_must_be_text() -> None:
    with pytest.raises(RegistryError, match="site 'WC-0001' key 'open_hours'"):
        registry(open_hours=600)


def test_parse_errors_say_what_is_accepted() -> None:
    with pytest.raises(OpenHoursError, match="HH:MM-HH:MM"):
        OpenHours.parse("noon")
    with pytest.raises(OpenHoursError, match="00:00-24:00"):
        OpenHours.parse("09:00-09:00")


def _plain_open_after(hours: OpenHours, from_ms: int, open_ms: int, zone: tzinfo) -> int:
    """The plain formula: walk the opening stretches day by day from the day before, each
    converted afresh (what `open_after` computes with its conversions memoized)."""
    def epoch_ms(day: date, minute: int) -> int:
        local = datetime.combine(day, time()) + timedelta(minutes=minute)
        return int(local.replace(tzinfo=zone).timestamp() * 1000)

    remaining = open_ms
    day = datetime.fromtimestamp(from_ms / 1000, zone).date() - timedelta(days=1)
    while True:
        end_day = day if hours.start_min < hours.end_min else day + timedelta(days=1)
        start = max(epoch_ms(day, hours.start_min), from_ms)
        end = epoch_ms(end_day, hours.end_min)
        if end - start > remaining:
            return start + remaining
        remaining -= max(0, end - start)
        day += timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 23 * 60 + 59), end=st.integers(1, 24 * 60),
    from_ms=st.integers(0, 4_102_444_800_000),  # 1970 to 2100
    open_min=st.integers(1, 3 * 24 * 60),
    zone=st.sampled_from([UTC, SHANGHAI, ZoneInfo("America/New_York"),
                          ZoneInfo("Europe/Berlin"), ZoneInfo("Australia/Lord_Howe")]),
)
def test_open_after_with_memoized_conversions_is_the_plain_formula(
    start: int, end: int, from_ms: int, open_min: int, zone: tzinfo
) -> None:
    assume(start != end % (24 * 60) or end == 24 * 60)
    hours = OpenHours(start, end)
    expected = _plain_open_after(hours, from_ms, open_min * 60_000, zone)
    assert hours.open_after(from_ms, open_min * 60_000, zone) == expected
    # again from a close instant: the memoized days are reused
    later = from_ms + 3_600_000
    assert hours.open_after(later, open_min * 60_000, zone) == \
        _plain_open_after(hours, later, open_min * 60_000, zone)
