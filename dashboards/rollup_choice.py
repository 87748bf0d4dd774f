"""Raw readings for short ranges, hourly rollups beyond 7 days (SPEC section 9).

A panel carries two queries: `A` over the raw measurement and `B` over its rollup in
the `rollup` retention policy (`people_flow_1h`, ...). Each also holds a condition on
the dashboard's range, written with Grafana's global variables `${__from}` and
`${__to}` (epoch milliseconds), which InfluxQL evaluates as a constant: over 7 days
or less `A` answers and `B` is empty, beyond 7 days the other way round. Both name
their columns alike, so the legend does not change when the range does. Grafana users
find the choice in the panel's query editor, in plain InfluxQL.
"""

from __future__ import annotations

from dashboards.influxql import InfluxQL

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
RAW_RANGE = f"${{__to}} - ${{__from}} <= {SEVEN_DAYS_MS}"
ROLLUP_RANGE = f"${{__to}} - ${{__from}} > {SEVEN_DAYS_MS}"
ROLLUP_RP = "rollup"


def rollup_of(measurement: str) -> str:
    """The rollup measurement of a readings measurement, with its retention policy."""
    return f'"{ROLLUP_RP}"."{measurement}_1h"'


def _target(select: str, source: str, where: str, group_by: str, interval: str,
            ref_id: str, alias: str | None) -> InfluxQL:
    query = InfluxQL(f"""
        SELECT {select} FROM {source} WHERE {where}
        GROUP BY time({interval}), {group_by} fill(none)
    """).ref_id(ref_id)
    return query.alias(alias) if alias is not None else query


def raw_or_rollup(
    measurement: str, raw_select: str, rollup_select: str, where: str, group_by: str,
    raw_interval: str = "$__interval", alias: str | None = None,
) -> list[InfluxQL]:
    """`A` (raw) and `B` (rollup) for one panel.

    `where` is the shared filter (variables and `$timeFilter`); `group_by` the tags
    after `time(...)`; the rollup is grouped by `$__interval` (over 7 days, Grafana's
    interval for a panel is ten minutes or more: hourly points fall in it whole)."""
    return [
        _target(raw_select, f'"{measurement}"', f"{where} AND {RAW_RANGE}", group_by,
                raw_interval, "A", alias),
        _target(rollup_select, rollup_of(measurement), f"{where} AND {ROLLUP_RANGE}",
                group_by, "$__interval", "B", alias),
    ]


NINETY_DAYS_MS = 90 * 24 * 3600 * 1000
HOURLY_RANGE = f"{ROLLUP_RANGE} AND ${{__to}} - ${{__from}} <= {NINETY_DAYS_MS}"
DAILY_RANGE = f"${{__to}} - ${{__from}} > {NINETY_DAYS_MS}"
#: Daily figures per district (`ingest.district_rollups`), for ranges beyond 90 days.
DISTRICT_DAILY = f'"{ROLLUP_RP}"."district_1d"'


def raw_hourly_or_daily(
    measurement: str, selects: tuple[str, str, str], where: str, daily_where: str,
    alias: str,
) -> list[InfluxQL]:
    """Per district: `A` raw up to 7 days, `B` hourly rollups up to 90, `C` the daily
    district figures beyond (a year of them answers at once, whatever the city's size).
    `selects`: (raw, hourly, daily). `daily_where` cannot name sites: the daily figures
    are per district."""
    raw, hourly, daily = selects
    group = '"district"'
    return [
        _target(raw, f'"{measurement}"', f"{where} AND {RAW_RANGE}", group, "$__interval",
                "A", alias),
        _target(hourly, rollup_of(measurement), f"{where} AND {HOURLY_RANGE}", group,
                "$__interval", "B", alias),
        _target(daily, DISTRICT_DAILY, f"{daily_where} AND {DAILY_RANGE}", group,
                "$__interval", "C", alias),
    ]
