"""Reloading rules and registry into a running engine (SPEC section 10): open incidents and
pending `for` timers survive; incidents of a removed device or rule are resolved, saying why."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from alert_city import CITY, MINUTE, RULES, T0, EngineFactory, odor

from devices.sites import Registry
from ingest.alerts import AlertEngine
from ingest.alerts.rules import RuleSet, parse_rules


def reload(engine: AlertEngine, city: dict[str, Any], rules: Any = RULES) -> int:
    """Reload `city` and `rules` (a rule file's data, or a RuleSet in force)."""
    rule_set = rules if isinstance(rules, RuleSet) else parse_rules(rules)
    return engine.reload(engine.prepare(rule_set, Registry.from_dict(city)))


def feed(engine: AlertEngine, device_id: str, values: list[float], start: int = T0) -> list:  # type: ignore[type-arg]
    device = Registry.from_dict(CITY).devices[device_id]
    events = []
    for i, value in enumerate(values):
        ts = start + i * MINUTE
        events += engine.on_reading(device, odor(value), ts, ts)
    return events


def without_device(device_id: str) -> dict:  # type: ignore[type-arg]
    city = copy.deepcopy(CITY)
    for site in city["sites"]:
        site["devices"] = [d for d in site["devices"] if d["id"] != device_id]
    return city


def test_incident_of_a_removed_device_is_resolved_with_the_reason(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine()
    fired = feed(engine, "WC-0001-OD-1", [3, 3, 3, 3])
    assert [e.state for e in fired] == ["firing"]
    assert reload(engine, without_device("WC-0001-OD-1")) == 1
    assert engine.active() == []
    events = engine.sweep(T0 + 10 * MINUTE)
    resolved = [e for e in events if e.alert_id == fired[0].alert_id]
    assert [e.state for e in resolved] == ["resolved"]
    assert "device removed from the registry" in resolved[0].message


def test_open_incident_and_pending_timer_survive_a_reload(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fired = feed(engine, "WC-0001-OD-1", [3, 3, 3, 3])
    # OD-2 above the bound for 1 min of the 2 the rule asks: not firing yet
    assert feed(engine, "WC-0001-OD-2", [3, 3]) == []
    assert reload(engine, CITY) == 0
    assert [i.alert_id for i in engine.active()] == [fired[0].alert_id]
    # same incident goes on: recovering resolves it, no duplicate firing
    assert [e.state for e in feed(engine, "WC-0001-OD-1", [3, 1], start=T0 + 4 * MINUTE)] \
        == ["resolved"]
    # the timer kept counting across the reload: one more minute fires it
    later = feed(engine, "WC-0001-OD-2", [3], start=T0 + 2 * MINUTE)
    assert [e.state for e in later] == ["firing"]


def test_incident_of_a_removed_rule_is_resolved(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fired = feed(engine, "WC-0001-OD-1", [3, 3, 3, 3])
    rules = copy.deepcopy(RULES)
    del rules["rules"]["odor_nh3_high"]
    assert reload(engine, CITY, rules) == 1
    events = engine.sweep(T0 + 10 * MINUTE)
    assert [e.state for e in events if e.alert_id == fired[0].alert_id] == ["resolved"]
    assert "rule removed" in events[0].message
    assert "odor_nh3_high" not in engine.rules


def test_changed_threshold_applies_and_keeps_the_incident(make_engine: EngineFactory) -> None:
    engine = make_engine()
    fired = feed(engine, "WC-0001-OD-1", [3, 3, 3, 3])
    rules = copy.deepcopy(RULES)
    rules["rules"]["odor_nh3_high"]["levels"]["warning"] = {"above": 2.9, "recover": 2.8}
    reload(engine, CITY, rules)
    # 2.7 is below the new recovery bound 2.8 (it was above the old 1.5): resolves
    events = feed(engine, "WC-0001-OD-1", [2.7], start=T0 + 5 * MINUTE)
    assert [(e.alert_id, e.state) for e in events] == [(fired[0].alert_id, "resolved")]


# --- site rules (toilet terminals) ----------------------------------------------------------


def _toilet(tmp_path: Path) -> Any:
    from test_alert_toilet import Toilet

    return Toilet(tmp_path / "state")


def test_site_rule_keeps_its_check_in_across_a_reload(tmp_path: Path) -> None:
    from test_alert_toilet import CITY as TOILET_CITY
    from test_alert_toilet import HOUR, local_ms, of

    toilet = _toilet(tmp_path)
    t = local_ms("2026-11-24T08:00")
    toilet.terminal(t, cleaned_by="Li")
    toilet.terminal(t + HOUR)
    reload(toilet.engine, TOILET_CITY, toilet.engine.rule_set)
    fired = toilet.terminal(t + 4 * HOUR + 60_000)  # counted from 08:00, not the reload
    assert of(fired, "toilet_cleaning_overdue") == [("firing", t + 4 * HOUR)]
    toilet.engine.close()


def test_changed_site_rule_takes_the_check_in_and_a_removed_terminal_resolves(
    tmp_path: Path,
) -> None:
    from test_alert_toilet import CITY as TOILET_CITY
    from test_alert_toilet import HOUR, local_ms, of

    toilet = _toilet(tmp_path)
    t = local_ms("2026-11-24T08:00")
    toilet.terminal(t, cleaned_by="Li")
    busier = copy.deepcopy(TOILET_CITY)
    busier["sites"][0]["alerts"] = {"toilet_cleaning_overdue": {"cleaning_every_h": 2}}
    reload(toilet.engine, busier, toilet.engine.rule_set)
    fired = toilet.terminal(t + 2 * HOUR + 60_000)
    assert of(fired, "toilet_cleaning_overdue") == [("firing", t + 2 * HOUR)]
    gone = copy.deepcopy(busier)
    gone["sites"][0]["devices"] = [d for d in gone["sites"][0]["devices"]
                                   if d["type"] != "toilet_terminal"]
    assert reload(toilet.engine, gone, toilet.engine.rule_set) == 1
    events = toilet.engine.sweep(t + 3 * HOUR)
    assert [(e.rule, e.state) for e in events] == [("toilet_cleaning_overdue", "resolved")]
    assert "device removed from the registry" in events[0].message
    assert toilet.engine.active() == []
    toilet.engine.close()
