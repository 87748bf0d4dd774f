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


def raw_or_rollup(
    measurement: str, raw_select: str, rollup_select: str, where: str, group_by: str,
    raw_interval: str = "$__interval", alias: str | None = None,
) -> list[InfluxQL]:
    """`A` (raw) and `B` (rollup) for one panel.

    `where` is the shared filter (variables and `$timeFilter`); `group_by` the tags
    after `time(...)`; the rollup is grouped by `$__interval` (over 7 days, Grafana's
    interval for a panel is ten minutes or more: hourly points fall in it whole)."""
    raw = InfluxQL(f"""
        SELECT {raw_select} FROM "{measurement}" WHERE {where} AND {RAW_RANGE}
        GROUP BY time({raw_interval}), {group_by} fill(none)
    """).ref_id("A")
    rollup = InfluxQL(f"""
        SELECT {rollup_select} FROM {rollup_of(measurement)} WHERE {where} AND {ROLLUP_RANGE}
        GROUP BY time($__interval), {group_by} fill(none)
    """).ref_id("B")
    if alias is not None:
        raw.alias(alias)
        rollup.alias(alias)
    return [raw, rollup]
