"""The report's charts as PNG bytes (matplotlib, drawn off-screen), each shown after the
table it illustrates."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.report.collect import ReportData
from ingest.report.site_figures import people_by_day
from ingest.report.tables import Table

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TOP = 12
BLUE, ORANGE, RED = "#2b6cb0", "#dd6b20", "#c53030"


@dataclass(frozen=True, slots=True)
class Chart:
    name: str  # file name without `.png`
    title: str
    after: str  # the table it follows
    png: bytes


def _figure(height: float = 3.6) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, height), dpi=110, layout="constrained")
    ax = fig.subplots()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    return fig, ax


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _barh(title: str, labels: list[str], values: list[float], xlabel: str, color: str
          ) -> bytes:
    fig, ax = _figure(max(2.2, 0.32 * len(labels) + 1.0))
    ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    for y, value in enumerate(values[::-1]):
        ax.annotate(f"{value:,.0f}" if value >= 10 else f"{value:,.1f}", (value, y),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    return _png(fig)


def people_per_day(data: ReportData) -> Chart | None:
    days = people_by_day(data.people)
    if not days:
        return None
    fig, ax = _figure()
    ax.bar(list(days), list(days.values()), color=BLUE)
    ax.set_title("People served per day", loc="left")
    ax.set_ylabel("people")
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    return Chart("people_per_day", "People served per day", "people_by_district", _png(fig))


def charts(data: ReportData, tables: list[Table]) -> list[Chart]:
    t = {table.name: table for table in tables}
    found = [people_per_day(data)]
    toilets = [r for r in t["people_by_toilet"].rows[:TOP] if r[3]]
    if toilets:
        found.append(Chart("busiest_toilets", "Busiest toilets", "people_by_toilet", _barh(
            f"Busiest toilets (top {len(toilets)})", [str(r[1]) for r in toilets],
            [float(r[3] or 0) for r in toilets], "people served", BLUE)))
    odor = [r for r in t["odor_hours"].rows[:TOP] if r[3]]
    if odor:
        found.append(Chart("odor_hours", "Hours above the odor warning level", "odor_hours",
                           _barh("Hours above the odor warning level (worst sites)",
                                 [str(r[1]) for r in odor], [float(r[3] or 0) for r in odor],
                                 "hours", ORANGE)))
    found.append(crew_response(t["alerts_by_district"]))
    stations = [r for r in t["stations"].rows[:TOP] if r[6]]
    if stations:
        found.append(Chart("tonnage", "Tonnes hauled per station", "stations", _barh(
            "Tonnes hauled per transfer station", [str(r[1]) for r in stations],
            [float(r[6] or 0) for r in stations], "tonnes", BLUE)))
    return [chart for chart in found if chart is not None]


def crew_response(alerts: Table) -> Chart | None:
    rows = [r for r in alerts.rows if r[5] is not None or r[6] is not None]
    if not any(float(r[5] or 0) > 0 or float(r[6] or 0) > 0 for r in rows):
        return None  # nothing to draw: no incident took any time
    fig, ax = _figure(max(2.4, 0.45 * len(rows) + 1.0))
    labels = [str(r[0]) for r in rows][::-1]
    ys = range(len(rows))
    ack = [float(r[5] or 0) for r in rows][::-1]
    fix = [float(r[6] or 0) for r in rows][::-1]
    ax.barh([y + 0.2 for y in ys], ack, height=0.4, color=ORANGE, label="to acknowledge")
    ax.barh([y - 0.2 for y in ys], fix, height=0.4, color=RED, label="to resolve")
    ax.set_yticks(list(ys), labels)
    ax.set_xlabel("median minutes")
    ax.set_title("Crew response per district (median)", loc="left")
    ax.legend(loc="lower right", frameon=False)
    return Chart("crew_response", "Crew response per district", "alerts_by_district", _png(fig))
