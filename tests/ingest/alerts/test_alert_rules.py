"""Rule files and registry overrides: the shipped file, and errors that name rule and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from alert_city import CITY, RULES, EngineFactory

from devices.sites import Registry
from ingest.alerts import AlertEngine, AlertRulesError
from ingest.alerts.rules import load_rules, parse_duration, parse_rules

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_rules_load_with_every_default_rule(tmp_path: Path) -> None:
    rules = load_rules(ROOT / "config" / "alerts.yaml")
    assert rules.names() == [
        "odor_nh3_high", "odor_h2s_high", "station_fill_high", "station_compactor_fault",
        "sprayer_liquid_low", "sprayer_fault", "toilet_crowded", "toilet_paper_low",
        "toilet_soap_low", "toilet_full", "battery_low",
        # SPEC v1.1 site rules (a `kind` over a site's devices), then the built-in offline
        "toilet_cleaning_overdue", "toilet_water_leak", "offline",
    ]
    by_name = {rule.name: rule for rule in rules.rules}
    for name in ("odor_nh3_high", "odor_h2s_high"):
        assert [lv.severity for lv in by_name[name].levels] == ["warning", "critical"]
    station = by_name["odor_nh3_high"].for_site_kind("transfer_station")
    assert station.levels[0].bound > by_name["odor_nh3_high"].levels[0].bound
    assert by_name["sprayer_fault"].equals == {"fault", "empty"}
    assert by_name["battery_low"].device_types is None
    engine = AlertEngine.open(ROOT / "config" / "alerts.yaml", Registry.from_dict(CITY), tmp_path)
    assert len(engine.rules) == 14
    engine.close()


def test_shipped_thresholds_cite_their_source() -> None:
    text = (ROOT / "config" / "alerts.yaml").read_text()
    for source in ("GB/T 17217", "GB 14554", "CJJ/T 47", "GBZ 2.1", "Operating practice",
                   "EPA WaterSense"):
        assert source in text


@pytest.mark.parametrize(("rule", "change", "expected"), [
    ("odor_nh3_high", {"severity": "warning"}, "'levels' replaces"),
    ("battery_low", {"colour": "red"}, "rule 'battery_low': unknown key 'colour'; accepted keys:"),
    ("battery_low", {"severity": "urgent"},
     "rule 'battery_low' key 'severity': 'urgent' is not one of info, warning, critical"),
    ("battery_low", {"field": "charge"}, "rule 'battery_low' key 'field': 'charge' is not a field"),
    ("battery_low", {"recover": 10}, "key 'recover' (warning): 10 must be at or above the 'below'"),
    ("battery_low", {"for": "soon"}, "rule 'battery_low' key 'for': expected a duration like"),
    ("battery_low", {"above": 90}, "give exactly one of 'above', 'below', 'equals'"),
    ("battery_low", {"below": "low"}, "rule 'battery_low' key 'below': expected a number"),
    ("sprayer_fault", {"device_type": "kiosk"},
     "rule 'sprayer_fault' key 'device_type': unknown type 'kiosk'; one of people_counter"),
    ("sprayer_fault", {"equals": [{"a": 1}]}, "rule 'sprayer_fault' key 'equals': expected"),
    ("sprayer_fault", {"above": 3}, "'equals' rules take 'equals', 'for' and 'severity'"),
    ("odor_nh3_high", {"levels": {"warning": {"above": 2}, "critical": {"above": 1}}},
     "key 'levels.critical': above 1 must be beyond the warning bound 2"),
    ("odor_nh3_high", {"levels": {"severe": {"above": 2}}},
     "key 'levels' key 'severity': 'severe' is not one of"),
    ("odor_nh3_high", {"levels": {"warning": {"above": 2}, "critical": {"below": 9}}},
     "every level needs the same one of 'above' or 'below'"),
    ("offline", {"missed_intervals": 0},
     "rule 'offline' key 'missed_intervals': expected a number"),
    ("odor_nh3_high", {"site_kind": {"airport": {}}}, "key 'site_kind': expected a mapping of"),
])
def test_bad_rule_names_file_rule_and_key(rule: str, change: dict[str, Any], expected: str
                                          ) -> None:
    data = copy.deepcopy(RULES)
    data["rules"][rule].update(change)
    with pytest.raises(AlertRulesError) as caught:
        parse_rules(data, "alert rules file /etc/sanitel/alerts.yaml")
    assert str(caught.value).startswith("alert rules file /etc/sanitel/alerts.yaml: ")
    assert expected in str(caught.value)


def test_unreadable_or_invalid_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AlertRulesError, match=r"alerts\.yaml: cannot be read"):
        load_rules(tmp_path / "alerts.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(AlertRulesError, match=r"bad\.yaml: not valid YAML"):
        load_rules(bad)
    bad.write_text("- a list")
    with pytest.raises(AlertRulesError, match=r"bad\.yaml: expected a mapping with a 'rules'"):
        load_rules(bad)


@pytest.mark.parametrize(("where", "overrides", "expected"), [
    ("site", {"no_such_rule": {}}, "registry site 'WC-0001' alerts: unknown rule 'no_such_rule'"),
    ("site", {"battery_low": {"above": 3}},
     "registry site 'WC-0001' alerts.battery_low: unknown key 'above'; accepted keys: below,"),
    ("site", {"battery_low": {"below": 50, "recover": 40}},
     "registry site 'WC-0001' alerts.battery_low key 'recover' (warning): 40 must be at or above"),
    ("site", {"odor_nh3_high": {"levels": {"info": {"above": 1}}}},
     "alerts.odor_nh3_high key 'levels.info': rule 'odor_nh3_high' has no info level"),
    ("site", {"odor_nh3_high": {"above": 3}}, "unknown key 'above'; accepted keys: enabled, for,"),
    ("site", {"offline": {"missed_intervals": "x"}}, "alerts.offline key 'missed_intervals'"),
    ("device", {"station_compactor_fault": {"equals": "idle"}},
     "registry device 'WC-0001-OD-1' (site 'WC-0001') alerts.station_compactor_fault: rule does "
     "not apply to odor devices"),
    ("device", {"odor_nh3_high": {"enabled": "no"}},
     "alerts.odor_nh3_high key 'enabled': expected true or false"),
    ("device", {"odor_nh3_high": {"for": "-1m"}}, "alerts.odor_nh3_high key 'for': expected"),
    ("device", {"nh3": {}}, "registry device 'WC-0001-OD-1' (site 'WC-0001') alerts: unknown "
                            "rule 'nh3'; one of battery_low, odor_nh3_high, offline"),
])
def test_bad_registry_override_is_named(make_engine: EngineFactory, where: str,
                                        overrides: dict[str, Any], expected: str) -> None:
    city = copy.deepcopy(CITY)
    owner = city["sites"][0] if where == "site" else city["sites"][0]["devices"][0]
    owner["alerts"] = overrides
    with pytest.raises(AlertRulesError) as caught:
        make_engine(city=city)
    assert expected in str(caught.value)


@pytest.mark.parametrize(("text", "ms"), [
    ("30s", 30_000), ("2m", 120_000), ("1.5h", 5_400_000), ("500ms", 500), (90, 90_000),
    ("5 min", 300_000), (0, 0),
])
def test_durations(text: Any, ms: int) -> None:
    assert parse_duration(text, "rule 'x'") == ms
