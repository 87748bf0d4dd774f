"""`sanitel report`: the department's work report for a period (SPEC section 9)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devices.sites import Registry, RegistryError
from ingest.alerts.rules import AlertRulesError
from ingest.report.charts import charts
from ingest.report.collect import ReportData, collect, steps
from ingest.report.document import Document, ReportOutputError, write
from ingest.report.influx_reader import InfluxReader, ReportQueryError
from ingest.report.period import Period, ReportPeriodError, city_timezone
from ingest.report.summary import retention_warning, summary
from ingest.report.tables import all_tables
from ingest.report.thresholds import WarningLevels, warning_levels
from ingest.settings import Settings
from sanitel.cli_support import ConfigOption, fail, load_settings

COMMAND = "sanitel report"


def report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (inclusive), "
                                                      "in the city's timezone.")],
    end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD "
                                                  "(exclusive).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md, report.html, "
                                                    "the CSVs and the charts.")],
    district: Annotated[str | None, typer.Option(help="Only this district's sites.")] = None,
    config: ConfigOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """The period's figures for the department's work report, from the raw readings."""
    settings = load_settings(config, COMMAND)
    period, registry, levels = _inputs(settings, start, end, district)
    console = Console(stderr=True, quiet=quiet)
    now_ms = time.time_ns() // 1_000_000
    data = ReportData(period, registry, district, now_ms)
    try:
        with InfluxReader(settings.influx) as reader, _progress(console) as progress:
            task = progress.add_task("querying", total=steps(period))
            def on_step(what: str) -> None:
                progress.update(task, advance=1, description=what)
            collect(reader, data, levels, on_step)
    except ReportQueryError as exc:
        fail(str(exc), 1, COMMAND)
    tables = all_tables(data)
    scope = f"district {district}" if district else "whole city"
    warning = retention_warning(period, settings.retention.raw_days, now_ms)
    doc = Document(f"Sanitation work report: {period.label()}",
                   f"{scope}; figures from the raw readings in InfluxDB "
                   f"(database {settings.influx.database!r})",
                   [*([warning] if warning else []), *summary(data, tables)], tables,
                   charts(data, tables))
    try:
        written = write(doc, out)
    except ReportOutputError as exc:
        fail(str(exc), 1, COMMAND)
    console.print(f"{COMMAND}: wrote {len(written)} files to {out} ({written[1].name} to open)")
    for line in doc.summary:
        console.print(f"  - {line}", markup=False, highlight=False)


def _inputs(settings: Settings, start: str, end: str, district: str | None
            ) -> tuple[Period, Registry, WarningLevels]:
    """The period, the registry and the odor warning levels, or exit 2 naming the option."""
    try:
        period = Period.parse(start, end, city_timezone(settings.timezone))
    except ReportPeriodError as exc:
        fail(str(exc), 2, COMMAND)
    try:
        registry = Registry.load(settings.registry)
        levels = warning_levels(settings.alerts, registry)
    except RegistryError as exc:
        fail(f"{exc} (configuration key registry / SANITEL_REGISTRY)", 2, COMMAND)
    except AlertRulesError as exc:
        fail(f"{exc} (configuration key alerts / SANITEL_ALERTS)", 2, COMMAND)
    districts = sorted({site.district for site in registry.sites.values()})
    if district is not None and district not in districts:
        fail(f"--district {district!r} is not a district of the registry; one of "
             f"{', '.join(districts)}", 2, COMMAND)
    return period, registry, levels


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)
