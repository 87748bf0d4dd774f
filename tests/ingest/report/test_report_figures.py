"""The report's pure figures (SPEC section 9) from hand-made rows: no server needed."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest

from ingest.report.alert_figures import AlertRow, by_district_and_rule, incidents
from ingest.report.influx_reader import ReportQueryError
from ingest.report.period import Period, ReportPeriodError
from ingest.report.site_figures import OdorHourRow, availability, meter_increase, odor_hours
from ingest.report.summary import retention_warning
from ingest.report.thresholds import WarningLevels

MIN = 60_000


def test_period_is_local_midnight_to_local_midnight() -> None:
    period = Period.parse("2026-11-01", "2026-12-01", ZoneInfo("Asia/Shanghai"))
    assert period.start_ms == 1_793_462_400_000  # 2026-10-31T16:00:00Z (date -d @...)
    assert period.seconds == 30 * 86_400
    assert [end - start for start, end in period.chunks(7)][-1] == 2 * 86_400_000


@pytest.mark.parametrize(("start", "end", "named"), [
    ("2026-11-31", "2026-12-01", "--from"), ("2026-11-01", "soon", "--to"),
    ("2026-11-02", "2026-11-01", "--to"), ("2026-11-01", "2026-11-01", "--to"),
])
def test_bad_dates_name_the_option(start: str, end: str, named: str) -> None:
    with pytest.raises(ReportPeriodError, match=named):
        Period.parse(start, end, ZoneInfo("UTC"))


def test_incident_raised_acknowledged_resolved_across_an_escalation() -> None:
    rows = [
        AlertRow("a", 0, "firing", "odor_nh3_high", "WC-1"),
        # escalation: resolved on the warning series, firing on the critical one, same time
        AlertRow("a", 5 * MIN, "resolved", "odor_nh3_high", "WC-1"),
        AlertRow("a", 5 * MIN, "firing", "odor_nh3_high", "WC-1"),
        AlertRow("a", 12 * MIN, "acknowledged", "odor_nh3_high", "WC-1"),
        AlertRow("a", 40 * MIN, "resolved", "odor_nh3_high", "WC-1"),
        # raised before the period: only its later changes are here
        AlertRow("b", 3 * MIN, "acknowledged", "offline", "WC-1"),
        AlertRow("b", 9 * MIN, "resolved", "offline", "WC-1"),
        # still open at the end
        AlertRow("c", 20 * MIN, "firing", "offline", "WC-2"),
    ]
    found = {i.alert_id: i for i in incidents(rows)}
    assert set(found) == {"a", "c"}
    assert (found["a"].raised_ms, found["a"].acknowledged_ms, found["a"].resolved_ms) == (
        0, 12 * MIN, 40 * MIN)
    assert found["c"].resolved_ms is None
    groups = by_district_and_rule(found.values(), {"WC-1": "East", "WC-2": "West"}.__getitem__)
    east = next(g for g in groups if g.district == "East")
    assert (east.raised, east.acknowledged, east.resolved) == (1, 1, 1)
    assert (east.median_ack_min, east.median_resolve_min) == (12.0, 40.0)
    west = next(g for g in groups if g.district == "West")
    assert (west.raised, west.acknowledged, west.median_ack_min) == (1, 0, None)


def test_odor_hour_counts_on_the_mean_against_the_device_level() -> None:
    levels = WarningLevels({"OD-1": {"nh3_ppm": 2.0, "h2s_ppm": 0.03},
                            "OD-2": {"nh3_ppm": 5.7, "h2s_ppm": 0.23}})
    rows = [
        OdorHourRow("OD-1", "WC-1", 0, 2.5, 0.01),          # NH3 above
        OdorHourRow("OD-1", "WC-1", 3_600_000, 2.5, 0.05),  # both: one hour
        OdorHourRow("OD-1", "WC-1", 7_200_000, 2.0, 0.03),  # at the level: not above
        OdorHourRow("OD-2", "TS-1", 0, 5.0, 0.2),           # station levels: below
        OdorHourRow("OD-2", "TS-1", 3_600_000, None, 0.3),
    ]
    sites = odor_hours(rows, levels)
    assert (sites["WC-1"].hours_any, sites["WC-1"].hours_nh3, sites["WC-1"].hours_h2s) == (2, 2, 1)
    assert sites["WC-1"].hours_measured == 3
    assert (sites["TS-1"].hours_any, sites["TS-1"].worst_nh3_mean) == (1, 5.0)


def test_availability_is_capped_and_lists_silent_devices() -> None:
    shares = {a.device_id: a.share for a in availability(
        {"A": 30, "B": 2000}, {"A": 60, "B": 60, "C": 300}, 3600)}
    assert shares == {"A": 0.5, "B": 1.0, "C": 0.0}


def test_meter_increase_starts_at_the_reading_before_the_period() -> None:
    assert meter_increase(130.0, 100.0, 105.0) == 30.0
    assert meter_increase(130.0, None, 105.0) == 25.0  # no reading in the day before
    assert meter_increase(90.0, 100.0, 91.0) == 0.0  # replaced meter: never negative
    assert meter_increase(None, 100.0, None) is None


def test_a_period_older_than_the_raw_retention_says_it_is_incomplete() -> None:
    period = Period.parse("2026-08-01", "2026-09-01", ZoneInfo("UTC"))
    now = Period.parse("2026-11-20", "2026-11-21", ZoneInfo("UTC")).start_ms
    warning = retention_warning(period, 90, now)
    assert warning is not None and "2026-08-22 00:00" in warning and "90 days" in warning
    assert retention_warning(period, 120, now) is None


def test_reader_takes_chunked_and_whole_answers() -> None:
    """A server that ignores `chunked=true` (or pretty-prints) is read whole."""
    from ingest.report.influx_reader import InfluxReader
    from ingest.settings import InfluxSettings

    series = {"name": "odor", "tags": {"site_id": "WC-1"}, "columns": ["time", "n"],
              "values": [[0, 1], [1, 2]]}
    chunked = [json.dumps({"results": [{"statement_id": 0, "series": [series]}]})] * 2
    pretty = json.dumps({"results": [{"statement_id": 0, "series": [series]}]}, indent=2)
    with InfluxReader(InfluxSettings()) as reader:
        rows = list(reader._answer_rows(iter(chunked), "q"))
        assert [r["n"] for r in rows] == [1, 2, 1, 2] and rows[0]["site_id"] == "WC-1"
        rows = list(reader._answer_rows(iter(pretty.splitlines()), "q"))
        assert [r["n"] for r in rows] == [1, 2]
        with pytest.raises(ReportQueryError, match="not JSON"):
            list(reader._answer_rows(iter(["<html>", "oops"]), "q"))
        with pytest.raises(ReportQueryError, match="database does not exist"):
            list(reader._answer_rows(iter(['{"results":[{"error":"database not found: x"}]}']),
                                     "q"))
