"""The short summary on top of the report: what a monthly meeting asks first. Pure."""

from __future__ import annotations

from datetime import datetime

from ingest.report.collect import ReportData
from ingest.report.period import DAY_MS, Period
from ingest.report.tables import Table

TOP = 3


def _by_name(tables: list[Table]) -> dict[str, Table]:
    return {t.name: t for t in tables}


def _fmt(value: float | int) -> str:
    return f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value:,.1f}"


def summary(data: ReportData, tables: list[Table]) -> list[str]:
    """Bullet lines (plain text with `**bold**`)."""
    t = _by_name(tables)
    lines = [_people(t["people_by_toilet"], t["people_by_district"]), _odor(t["odor_hours"]),
             _crews(t["alerts_by_district"]), _stations(t["stations"]),
             _availability(t["device_availability"])]
    return [line for line in lines if line]


def _people(toilets: Table, districts: Table) -> str:
    total = sum(int(r[3] or 0) for r in toilets.rows)
    busiest = [f"{r[1]} ({r[2]}, {_fmt(int(r[3] or 0))})" for r in toilets.rows[:TOP]
               if r[3]]
    text = f"**{_fmt(total)} people served** at {_n(len(toilets.rows), 'toilet')}"
    if districts.rows:
        text += f" in {_n(len(districts.rows), 'district')}"
    return text + (f"; busiest: {'; '.join(busiest)}." if busiest else ".")


def _odor(odor: Table) -> str:
    worst = [f"{r[1]} ({r[2]}, {r[3]} h)" for r in odor.rows[:TOP] if r[3]]
    if not odor.rows:
        return "No odor readings in the period."
    if not worst:
        return f"**No hour above the odor warning level** at the {len(odor.rows)} odor sites."
    total = sum(int(r[3] or 0) for r in odor.rows)
    sites = sum(1 for r in odor.rows if r[3])
    return (f"**{total} hours above the odor warning level** at {sites} of {len(odor.rows)} "
            f"sites; worst: {'; '.join(worst)}.")


def _crews(alerts: Table) -> str:
    raised = sum(int(r[2] or 0) for r in alerts.rows)
    acked = sum(int(r[3] or 0) for r in alerts.rows)
    resolved = sum(int(r[4] or 0) for r in alerts.rows)
    text = f"**{_n(raised, 'alert')} raised**, {acked} acknowledged, {resolved} resolved"
    timed = sorted((r for r in alerts.rows if r[5] is not None),
                   key=lambda r: -float(r[5] or 0))
    if timed:
        slow = [f"{r[0]} ({_fmt(float(r[5] or 0))} min to acknowledge, "
                f"{_minutes(r[6])} to resolve)" for r in timed[:TOP]]
        text += f"; slowest crews (median): {'; '.join(slow)}"
    silent = [f"{r[0]} ({r[2]})" for r in alerts.rows if r[2] and not r[3]]
    if silent:
        text += f"; none acknowledged in {', '.join(silent)}"
    return text + "."


def _minutes(value: object) -> str:
    return f"{_fmt(float(value))} min" if isinstance(value, (int, float)) else "none"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _stations(stations: Table) -> str:
    if not stations.rows:
        return ""
    tonnes = sum(float(r[6] or 0) for r in stations.rows)
    collections = sum(int(r[5] or 0) for r in stations.rows)
    fullest = max(stations.rows, key=lambda r: float(r[4] or 0))
    return (f"**{tonnes:,.1f} t hauled** from {_n(len(stations.rows), 'transfer station')} "
            f"in {_n(collections, 'collection')}; highest fill {fullest[4]} % at {fullest[1]}.")


def _availability(avail: Table) -> str:
    if not avail.rows:
        return ""
    shares = [float(r[6] or 0) for r in avail.rows]
    poor = sum(1 for s in shares if s < 90)
    text = f"**Devices reported {sum(shares) / len(shares):.1f} %** of expected readings"
    if poor:
        text += f"; {poor} of {len(shares)} below 90 % (worst: {avail.rows[0][0]}, " \
                f"{avail.rows[0][6]} %)"
    return text + "."


def retention_warning(period: Period, raw_days: int, now_ms: int) -> str | None:
    """Said on top when the period starts before the oldest raw reading InfluxDB keeps."""
    horizon_ms = now_ms - raw_days * DAY_MS
    if period.start_ms >= horizon_ms:
        return None
    oldest = datetime.fromtimestamp(horizon_ms / 1000, period.tz).strftime("%Y-%m-%d %H:%M")
    return (f"**Incomplete:** raw readings are kept {raw_days} days (`retention.raw_days`); "
            f"the period starts before {oldest}, so the figures miss what came before.")
