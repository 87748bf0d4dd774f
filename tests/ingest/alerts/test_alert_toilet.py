"""The toilet terminal's rules (SPEC v1.1 section 6): paper, soap, full, cleaning overdue
(by opening time in the city's time zone), and the water leak that joins the terminal and
the site's people counter. Time is each reading's `ts`."""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from devices.people_counter import PeopleCounterReading
from devices.sites import Registry
from devices.toilet_terminal import ToiletTerminalReading
from ingest.alerts import AlertEngine, AlertEvent, AlertRulesError
from ingest.alerts.incident_db import store_path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED_RULES = ROOT / "config" / "alerts.yaml"
CHENGDU = ZoneInfo("Asia/Shanghai")
MINUTE, HOUR = 60_000, 3_600_000

CITY: dict[str, Any] = {"sites": [{
    "id": "WC-0001", "kind": "toilet", "name": "People's Park North", "district": "Jinjiang",
    "lat": 30.657, "lon": 104.066, "open_hours": "06:00-23:00",
    "devices": [
        {"id": "WC-0001-PC-1", "type": "people_counter", "interval_s": 60},
        {"id": "WC-0001-TT-1", "type": "toilet_terminal", "interval_s": 300},
    ],
}]}


def local_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=CHENGDU).timestamp() * 1000)


def local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CHENGDU).strftime("%m-%d %H:%M")


class Toilet:
    """An engine on the shipped rules, and the site's two devices feeding it."""

    def __init__(self, state_dir: Path, city: dict[str, Any] | None = None,
                 rules: Path = SHIPPED_RULES) -> None:
        self.state_dir, self.rules = state_dir, rules
        self.registry = Registry.from_dict(city or CITY)
        self.tt = self.registry.devices["WC-0001-TT-1"]
        self.pc = self.registry.devices.get("WC-0001-PC-1")
        self.engine = AlertEngine.open(rules, self.registry, state_dir, CHENGDU)

    def terminal(self, ts: int, **fields: Any) -> list[AlertEvent]:
        reading = ToiletTerminalReading(**{"stalls_free": 2, "stalls_total": 4, **fields})
        return self.engine.on_reading(self.tt, reading, ts, ts)

    def counter(self, ts: int, entries: int, occupancy: int = 0) -> list[AlertEvent]:
        reading = PeopleCounterReading(entries=entries, exits=entries, occupancy=occupancy)
        return self.engine.on_reading(self.pc, reading, ts, ts)

    def restart(self) -> Toilet:
        self.engine.close()
        return Toilet(self.state_dir, rules=self.rules)


@pytest.fixture
def toilet(tmp_path: Path) -> Any:
    made = Toilet(tmp_path / "state")
    yield made
    made.engine.close()


def of(events: list[AlertEvent], rule: str) -> list[tuple[str, int]]:
    return [(e.state, e.ts_ms) for e in events if e.rule == rule]


# --- threshold rules ----------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "field"), [("toilet_paper_low", "paper_pct"),
                                             ("toilet_soap_low", "soap_pct")])
def test_consumable_low_fires_below_15_and_resolves_after_a_refill(
    toilet: Toilet, rule: str, field: str
) -> None:
    t0 = local_ms("2026-11-24T10:00")
    events = []
    for i, pct in enumerate([40, 20, 15, 14.9, 10, 30, 49, 50, 80]):
        events += toilet.terminal(t0 + i * 5 * MINUTE, **{field: pct}, cleaned_by="Li")
    assert of(events, rule) == [("firing", t0 + 15 * MINUTE), ("resolved", t0 + 35 * MINUTE)]
    fired = next(e for e in events if e.rule == rule)
    assert fired.device_id == "WC-0001-TT-1" and fired.value == 14.9 and fired.threshold == 15
    assert "People's Park North" in fired.message


def test_toilet_full_needs_no_free_stall_for_10_minutes(toilet: Toilet) -> None:
    t0 = local_ms("2026-11-24T12:00")
    free = [1, 0, 0, 1, 0, 0, 0, 0, 2]  # a reading a minute... 0 from 4 min to 7 min: 3 min
    events = []
    for i, stalls in enumerate(free):
        events += toilet.terminal(t0 + i * MINUTE, stalls_free=stalls, cleaned_by="Li")
    assert of(events, "toilet_full") == []
    t1 = t0 + HOUR
    for i in range(12):
        events += toilet.terminal(t1 + i * MINUTE, stalls_free=0)
    events += toilet.terminal(t1 + 12 * MINUTE, stalls_free=1)
    assert of(events, "toilet_full") == [("firing", t1 + 10 * MINUTE),
                                         ("resolved", t1 + 12 * MINUTE)]


# --- cleaning overdue -----------------------------------------------------------------------


def test_cleaning_overdue_counts_opening_time_only_and_fires_only_while_open(
    toilet: Toilet
) -> None:
    """Checked in at 20:00; open until 23:00 (3 h), again from 06:00: 4 h are up at 07:00."""
    start = local_ms("2026-11-24T20:00")
    events = toilet.terminal(start, cleaned_by="Wang Fang")
    t = start
    while t < local_ms("2026-11-25T12:00"):
        t += 5 * MINUTE
        events += toilet.terminal(t)
    fired = [e for e in events if e.rule == "toilet_cleaning_overdue"]
    assert [(e.state, local(e.ts_ms)) for e in fired] == [("firing", "11-25 07:00")]
    assert fired[0].device_id == "WC-0001-TT-1" and fired[0].field == "cleaned_by"
    assert fired[0].value == 4 and fired[0].threshold == 4
    assert "06:00-23:00" in fired[0].message
    resolved = toilet.terminal(t + 5 * MINUTE, cleaned_by="Wang Fang")
    assert [(e.state, e.rule) for e in resolved] == [("resolved", "toilet_cleaning_overdue")]
    assert "Wang Fang" in resolved[0].message and resolved[0].alert_id == fired[0].alert_id


def test_regular_check_ins_never_fire(toilet: Toilet) -> None:
    t, events = local_ms("2026-11-24T05:00"), []
    for step in range(3 * 24 * 12):
        ts = t + step * 5 * MINUTE
        hour = datetime.fromtimestamp(ts / 1000, CHENGDU).hour
        minute = datetime.fromtimestamp(ts / 1000, CHENGDU).minute
        cleaned = {"cleaned_by": "Li"} if hour % 3 == 0 and minute == 0 else {}
        events += toilet.terminal(ts, **cleaned)
    assert of(events, "toilet_cleaning_overdue") == []


def test_overdue_is_never_raised_at_night_even_with_no_check_in_at_all(toilet: Toilet) -> None:
    t = local_ms("2026-11-24T22:00")  # first heard at 22:00: counting starts there
    events = []
    for step in range(10 * 12):
        events += toilet.terminal(t + step * 5 * MINUTE)
    fired = [e for e in events if e.rule == "toilet_cleaning_overdue"]
    # 1 h open before 23:00, then 3 h from 06:00: due at 09:00, after the 10 hours fed
    assert fired == []
    more = []
    for step in range(10 * 12, 14 * 12):
        more += toilet.terminal(t + step * 5 * MINUTE)
    assert [local(e.ts_ms) for e in more if e.rule == "toilet_cleaning_overdue"] == ["11-25 09:00"]


def test_overdue_fires_on_the_sweep_between_readings(toilet: Toilet) -> None:
    t = local_ms("2026-11-24T08:00")
    toilet.terminal(t, cleaned_by="Li")
    toilet.terminal(t + 3 * HOUR + 58 * MINUTE)  # heard at that (reading and wall) time
    assert toilet.engine.sweep(t + 3 * HOUR + 59 * MINUTE) == []
    swept = toilet.engine.sweep(t + 4 * HOUR + 1000)
    assert [(e.rule, e.state, e.ts_ms) for e in swept] == [
        ("toilet_cleaning_overdue", "firing", t + 4 * HOUR)]


def test_open_hours_follow_the_site_and_its_override(tmp_path: Path) -> None:
    city = copy.deepcopy(CITY)
    city["sites"][0]["open_hours"] = "00:00-24:00"
    city["sites"][0]["alerts"] = {"toilet_cleaning_overdue": {"cleaning_every_h": 2}}
    site = Toilet(tmp_path / "s", city)
    t = local_ms("2026-11-24T23:00")
    events = site.terminal(t, cleaned_by="Li")
    for step in range(1, 30):
        events += site.terminal(t + step * 5 * MINUTE)
    assert [local(e.ts_ms) for e in events if e.rule == "toilet_cleaning_overdue"] == [
        "11-25 01:00"]
    site.engine.close()


def test_the_last_check_in_and_the_incident_survive_a_restart(toilet: Toilet) -> None:
    t = local_ms("2026-11-24T08:00")
    toilet.terminal(t, cleaned_by="Li")
    toilet.terminal(t + HOUR)
    again = toilet.restart()
    events = again.terminal(t + 4 * HOUR + 5 * MINUTE)  # counted from 08:00, not the restart
    assert of(events, "toilet_cleaning_overdue") == [("firing", t + 4 * HOUR)]
    third = again.restart()
    assert third.terminal(t + 5 * HOUR) == []  # still open: no duplicate
    assert [i.rule for i in third.engine.active()] == ["toilet_cleaning_overdue"]
    assert of(third.terminal(t + 5 * HOUR + MINUTE, cleaned_by="Li"),
              "toilet_cleaning_overdue") == [("resolved", t + 5 * HOUR + MINUTE)]
    third.engine.close()


# --- water leak: the terminal's meter and the site's people counter -------------------------


def night(toilet: Toilet, start: int, hours: float, flow_m3_h: float, visitors: int = 0,
          water: float = 100.0) -> tuple[list[AlertEvent], float]:
    """Feed `hours` of a night: the counter every minute, the terminal every 5 minutes."""
    events: list[AlertEvent] = []
    for minute in range(int(hours * 60) + 1):
        ts = start + minute * MINUTE
        events += toilet.counter(ts, visitors if minute % 40 == 30 else 0)
        if minute % 5 == 0:
            water += flow_m3_h / 12 if minute else 0
            events += toilet.terminal(ts, water_m3=round(water, 4), cleaned_by="night")
    return events, water


def test_a_night_flow_with_nobody_in_is_a_leak_after_an_hour_and_resolves_when_it_stops(
    toilet: Toilet
) -> None:
    t = local_ms("2026-11-25T01:00")
    events, water = night(toilet, t, 2, flow_m3_h=0.03)
    leak = [e for e in events if e.rule == "toilet_water_leak"]
    assert [(e.state, e.ts_ms) for e in leak] == [("firing", t + HOUR)]
    assert leak[0].severity == "critical" and leak[0].device_id == "WC-0001-TT-1"
    assert leak[0].value == pytest.approx(0.03) and leak[0].threshold == 0.01
    assert "30 L" in leak[0].message
    # The flow stops: the meter stands still at the next reading.
    t2 = t + 2 * HOUR + 5 * MINUTE
    toilet.counter(t2, 0)
    stopped = toilet.terminal(t2, water_m3=round(water, 4))
    assert of(stopped, "toilet_water_leak") == [("resolved", t2)]


def test_use_is_not_a_leak(toilet: Toilet) -> None:
    t = local_ms("2026-11-25T01:00")
    events, _ = night(toilet, t, 3, flow_m3_h=0.03, visitors=1)  # someone every 40 minutes
    assert of(events, "toilet_water_leak") == []


def test_a_trickle_below_the_bound_and_a_still_meter_are_not_leaks(toilet: Toilet) -> None:
    t = local_ms("2026-11-25T01:00")
    events, _ = night(toilet, t, 2, flow_m3_h=0.006)
    events += night(toilet, t + 3 * HOUR, 2, flow_m3_h=0.0)[0]
    assert of(events, "toilet_water_leak") == []


def test_no_counter_readings_means_nobody_is_not_known(toilet: Toilet) -> None:
    t, water, events = local_ms("2026-11-25T01:00"), 100.0, []
    for step in range(25):
        water += 0.0025
        events += toilet.terminal(t + step * 5 * MINUTE, water_m3=water, cleaned_by="x")
    assert of(events, "toilet_water_leak") == []


def test_counter_readings_arriving_late_give_the_same_leak(tmp_path: Path) -> None:
    """The counter's minutes arriving in blocks after the terminal's: the same leak, found
    at the same reading time."""
    t = local_ms("2026-11-25T01:00")
    results = []
    for order in ("in order", "late"):
        site = Toilet(tmp_path / order)
        water, events = 100.0, []
        minutes = list(range(0, 91))
        if order == "late":  # each block of 10 counter minutes arrives after the terminal's
            for block in range(0, 91, 10):
                for minute in range(block, min(block + 10, 91), 5):
                    water = 100.0 + 0.0025 * (minute // 5)
                    events += site.terminal(t + minute * MINUTE, water_m3=water, cleaned_by="x")
                for minute in minutes[block:block + 10]:
                    events += site.counter(t + minute * MINUTE, 0)
        else:
            for minute in minutes:
                events += site.counter(t + minute * MINUTE, 0)
                if minute % 5 == 0:
                    water = 100.0 + 0.0025 * (minute // 5)
                    events += site.terminal(t + minute * MINUTE, water_m3=water, cleaned_by="x")
        results.append(of(events, "toilet_water_leak"))
        site.engine.close()
    assert results[0] == results[1] == [("firing", t + HOUR)]


def test_an_older_counter_reading_after_a_newer_one_changes_nothing(toilet: Toilet) -> None:
    """Out of order (a visitor reported for 01:30 after 01:40 is known) is ignored, as for
    every rule: reading time decides."""
    t, water, events = local_ms("2026-11-25T01:00"), 100.0, []
    for minute in range(0, 66):
        events += toilet.counter(t + minute * MINUTE, 0)
        if minute == 40:
            events += toilet.counter(t + 30 * MINUTE, 3, occupancy=1)
        if minute % 5 == 0:
            water += 0.0025 if minute else 0
            events += toilet.terminal(t + minute * MINUTE, water_m3=water, cleaned_by="x")
    assert of(events, "toilet_water_leak") == [("firing", t + HOUR)]


def stored_rule_marks(state_dir: Path) -> dict[tuple[str, str], int]:
    """The rule marks as another reader of the store sees them (no close, no sweep)."""
    with contextlib.closing(sqlite3.connect(store_path(state_dir))) as db:
        rows = db.execute("SELECT device_id, rule, ts_ms FROM rule_marks").fetchall()
    return {(device_id, rule): ts for device_id, rule, ts in rows}


def test_a_check_in_is_written_with_the_next_sweep_not_per_reading(toilet: Toilet) -> None:
    t = local_ms("2026-11-24T08:00")
    key = (toilet.tt.id, "toilet_cleaning_overdue")
    toilet.terminal(t, cleaned_by="Li")
    toilet.terminal(t + HOUR, cleaned_by="Ana")
    assert key not in stored_rule_marks(toilet.state_dir)  # no durable write per reading
    toilet.engine.sweep(t + HOUR)
    assert stored_rule_marks(toilet.state_dir)[key] == t + HOUR


def test_a_leak_incident_survives_a_restart_and_resolves_after_it(toilet: Toilet) -> None:
    t = local_ms("2026-11-25T01:00")
    events, water = night(toilet, t, 1.2, flow_m3_h=0.03)
    assert [e.state for e in events if e.rule == "toilet_water_leak"] == ["firing"]
    again = toilet.restart()
    t2 = t + 2 * HOUR
    assert of(again.terminal(t2, water_m3=water + 0.01), "toilet_water_leak") == []
    assert of(again.terminal(t2 + 5 * MINUTE, water_m3=water + 0.02), "toilet_water_leak") == []
    assert of(again.terminal(t2 + 10 * MINUTE, water_m3=water + 0.02),
              "toilet_water_leak") == [("resolved", t2 + 10 * MINUTE)]
    again.engine.close()


def test_a_site_without_a_people_counter_never_has_a_leak(tmp_path: Path) -> None:
    city = copy.deepcopy(CITY)
    city["sites"][0]["devices"] = city["sites"][0]["devices"][1:]
    site = Toilet(tmp_path / "s", city)
    events = []
    for step in range(30):
        events += site.terminal(local_ms("2026-11-25T01:00") + step * 5 * MINUTE,
                                water_m3=100 + step * 0.01, cleaned_by="x")
    assert of(events, "toilet_water_leak") == []
    site.engine.close()


# --- the rules file and the registry's overrides ------------------------------------------


def _rules_with(tmp_path: Path, **rules: Any) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": rules}))
    return path


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "flood"}, ["rule 'r'", "key 'kind'", "cleaning_overdue, water_leak"]),
        ({"kind": "water_leak", "for": "ages"}, ["rule 'r'", "key 'for'"]),
        ({"kind": "water_leak", "min_rise_m3": 0},
         ["rule 'r'", "key 'min_rise_m3'", "more than 0"]),
        ({"kind": "cleaning_overdue", "cleaning_every_h": "4h"},
         ["rule 'r'", "key 'cleaning_every_h'", "number"]),
        ({"kind": "cleaning_overdue", "above": 3}, ["rule 'r'", "unknown key 'above'"]),
        ({"kind": "cleaning_overdue", "severity": "urgent"}, ["rule 'r'", "key 'severity'"]),
        ({"kind": "water_leak", "enabled": "yes"}, ["rule 'r'", "key 'enabled'"]),
    ],
    ids=repr,
)
def test_bad_site_rules_name_file_rule_and_key(tmp_path: Path, spec: dict[str, Any],
                                               words: list[str]) -> None:
    path = _rules_with(tmp_path, r=spec)
    with pytest.raises(AlertRulesError) as info:
        AlertEngine.open(path, Registry.from_dict(CITY), tmp_path / "state")
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("where", "override", "words"),
    [
        ("site", {"toilet_water_leak": {"min_rise": 1}}, ["site 'WC-0001'", "'min_rise'"]),
        ("site", {"toilet_cleaning_overdue": {"cleaning_every_h": -2}},
         ["site 'WC-0001'", "'cleaning_every_h'"]),
        ("pc", {"toilet_water_leak": {"for": "2h"}},
         ["device 'WC-0001-PC-1'", "toilet_terminal"]),
        ("tt", {"toilet_cleaning_overdue": {"every": 2}}, ["device 'WC-0001-TT-1'", "'every'"]),
    ],
    ids=repr,
)
def test_bad_overrides_of_site_rules_name_the_entry(tmp_path: Path, where: str,
                                                    override: dict[str, Any],
                                                    words: list[str]) -> None:
    city = copy.deepcopy(CITY)
    site = city["sites"][0]
    target = site if where == "site" else site["devices"][0 if where == "pc" else 1]
    target["alerts"] = override
    with pytest.raises(AlertRulesError) as info:
        AlertEngine.open(SHIPPED_RULES, Registry.from_dict(city), tmp_path / "state")
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_disabled_site_rule_on_one_device_is_off_there_only(tmp_path: Path) -> None:
    city = copy.deepcopy(CITY)
    city["sites"][0]["devices"][1]["alerts"] = {"toilet_water_leak": {"enabled": False}}
    site = Toilet(tmp_path / "s", city)
    events, _ = night(site, local_ms("2026-11-25T01:00"), 2, flow_m3_h=0.05)
    assert of(events, "toilet_water_leak") == []
    site.engine.close()


def test_a_leak_watch_reads_the_terminal_and_its_own_sites_counters_only() -> None:
    """SPEC 6: the leak joins a terminal and the people counters of *its* site; with
    several sites, each terminal reads its site's counters (in registry order), no other."""
    from ingest.alerts.rules import load_rules
    from ingest.alerts.site_watch import build_watches

    def site(n: int, types: list[str]) -> dict[str, Any]:
        return {**CITY["sites"][0], "id": f"WC-000{n}", "name": f"Toilet {n}",
                "devices": [{"id": f"WC-000{n}-{i}", "type": t} for i, t in enumerate(types)]}

    city = {"sites": [
        site(1, ["people_counter", "toilet_terminal", "odor", "people_counter"]),
        site(2, ["people_counter"]),
        site(3, ["toilet_terminal", "people_counter", "toilet_terminal", "people_counter"]),
        site(4, ["toilet_terminal"]),
    ]}
    watches = build_watches(load_rules(SHIPPED_RULES).site_rules, Registry.from_dict(city),
                            CHENGDU)
    leaks = {w.owner.id: w.reads for w in watches if w.rule.name == "toilet_water_leak"}
    assert leaks == {
        "WC-0001-1": ("WC-0001-1", "WC-0001-0", "WC-0001-3"),
        "WC-0003-0": ("WC-0003-0", "WC-0003-1", "WC-0003-3"),
        "WC-0003-2": ("WC-0003-2", "WC-0003-1", "WC-0003-3"),
        "WC-0004-0": ("WC-0004-0",),
    }
    overdue = sorted(w.owner.id for w in watches if w.rule.name == "toilet_cleaning_overdue")
    assert overdue == ["WC-0001-1", "WC-0003-0", "WC-0003-2", "WC-0004-0"]
