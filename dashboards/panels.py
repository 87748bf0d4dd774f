"""Panel kinds the Sanitel dashboards are made of, each wired to the InfluxDB datasource.

Small constructors over `grafana-foundation-sdk` builders: a dashboard module says
what it shows (title, queries, unit, thresholds) and these say how it looks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import ascii_uppercase
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    GraphDrawStyle,
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
    VisibilityMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardSpecialValueMapOptions,
    DataTransformerConfig,
    DynamicConfigValue,
    SpecialValueMap,
    SpecialValueMatch,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

from dashboards.influxql import DATASOURCE, InfluxQL
from dashboards.thresholds import RuleLevels

P = TypeVar(
    "P", timeseries.Panel, statetimeline.Panel, table.Panel, stat.Panel, bargauge.Panel
)

#: Colours of alert severities and states, used by maps, tables and timelines alike.
SEVERITY_COLOURS = {"info": "blue", "warning": "orange", "critical": "red"}


def _wire(panel: P, title: str, queries: Sequence[InfluxQL], height: int, width: int) -> P:
    """Title, size, datasource and targets with refIds A, B, ... in order."""
    panel.title(title).datasource(DATASOURCE).height(height).span(width)
    for letter, query in zip(ascii_uppercase, queries, strict=False):
        panel.with_target(query.ref_id(letter))
    return panel


def levels_thresholds(levels: RuleLevels | None) -> ThresholdsConfig:
    """Steps coloured by severity at the rule's bounds; green on the safe side."""
    marks = sorted(levels.levels, key=lambda level: level[1]) if levels else []
    if levels is not None and levels.bound == "below":
        # colours apply from a value upward: the worst colour first, green past the last bound
        colours = [SEVERITY_COLOURS[sev] for sev, _ in marks] + ["green"]
        steps = [Threshold(None, colours[0])]
        steps += [Threshold(value, colours[i + 1]) for i, (_, value) in enumerate(marks)]
    else:
        steps = [Threshold(None, "green")]
        steps += [Threshold(value, SEVERITY_COLOURS[sev]) for sev, value in marks]
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def value_colours(colours: Mapping[str, str]) -> list[ValueMapping]:
    """Text values (states, severities) to colours."""
    options = {
        value: ValueMappingResult(color=colour, index=i)
        for i, (value, colour) in enumerate(colours.items())
    }
    return [ValueMap(options)]


def bool_colours(true: tuple[str, str], false: tuple[str, str]) -> list[ValueMapping]:
    """Booleans to (text, colour)."""
    return [
        SpecialValueMap(DashboardSpecialValueMapOptions(
            SpecialValueMatch.TRUE, ValueMappingResult(text=true[0], color=true[1], index=0))),
        SpecialValueMap(DashboardSpecialValueMapOptions(
            SpecialValueMatch.FALSE, ValueMappingResult(text=false[0], color=false[1], index=1))),
    ]


def override(key: str, value: object) -> DynamicConfigValue:
    """One field-config property, for `override_by_name` and friends."""
    return DynamicConfigValue(id_val=key, value=value)


def transformation(kind: str, options: Mapping[str, Any]) -> DataTransformerConfig:
    return DataTransformerConfig(id_val=kind, options=dict(options))


def graph(
    title: str,
    queries: Sequence[InfluxQL],
    *,
    unit: str = "short",
    height: int = 8,
    width: int = 12,
    levels: RuleLevels | None = None,
    bars: bool = False,
) -> timeseries.Panel:
    """A time series; with `levels`, the alert bounds drawn as dashed lines."""
    panel = (
        timeseries.Panel()
        .unit(unit)
        .legend(VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM).calcs([]))
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
        .span_nulls(True)
    )
    if bars:
        panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80).line_width(1)
    if levels is not None:
        panel.thresholds(levels_thresholds(levels)).thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED_AND_AREA)
        )
    return _wire(panel, title, queries, height, width)


def timeline(
    title: str,
    queries: Sequence[InfluxQL],
    mappings: list[ValueMapping],
    *,
    height: int = 8,
    width: int = 12,
) -> statetimeline.Panel:
    """States over time (compactor, door, online), one row per series."""
    panel = (
        statetimeline.Panel()
        .mappings(mappings)
        .show_value(VisibilityMode.AUTO)
        .merge_values(True)
        .legend(VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM).calcs([]))
        .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.SINGLE).sort(SortOrder.NONE))
    )
    return _wire(panel, title, queries, height, width)


def grid(
    title: str,
    queries: Sequence[InfluxQL],
    *,
    height: int = 8,
    width: int = 12,
    transformations: Sequence[DataTransformerConfig] = (),
) -> table.Panel:
    """A table of the query results, after `transformations`."""
    panel = table.Panel().show_header(True).transformations(list(transformations))
    return _wire(panel, title, queries, height, width)


def figure(
    title: str,
    queries: Sequence[InfluxQL],
    *,
    unit: str = "short",
    height: int = 4,
    width: int = 6,
    thresholds: ThresholdsConfig | None = None,
) -> stat.Panel:
    """One big number per query: the last value."""
    panel = (
        stat.Panel()
        .unit(unit)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(VizOrientation.AUTO)
    )
    if thresholds is not None:
        panel.thresholds(thresholds)
    return _wire(panel, title, queries, height, width)


def gauges(
    title: str,
    queries: Sequence[InfluxQL],
    *,
    unit: str = "short",
    height: int = 8,
    width: int = 12,
    thresholds: ThresholdsConfig | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> bargauge.Panel:
    """One horizontal bar per series (device, site): the last value."""
    panel = (
        bargauge.Panel()
        .unit(unit)
        .display_mode(BarGaugeDisplayMode.LCD)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if thresholds is not None:
        panel.thresholds(thresholds)
    if minimum is not None:
        panel.min(minimum)
    if maximum is not None:
        panel.max(maximum)
    return _wire(panel, title, queries, height, width)
