"""`sanitel demo`'s view: what the operator sees while the demo runs, from InfluxDB, the
pipeline's incident store and the demo's Alertmanager receiver; shown live in the terminal
or as a line every 5 s (`--no-live`)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from devices.sites import Registry
from sanitel.demo_alertmanager import DemoAlertmanager
from sanitel.local_servers import Influxd


def watch(
    view: DemoView, console: Console, stop: dict[str, bool], duration: float | None,
    live: bool, children: tuple[subprocess.Popen[bytes], ...],
) -> None:
    """Show what flows (live, or a line every 5 s) until a signal, `duration` or a child
    process ends."""
    ends = time.monotonic() + duration if duration else None
    last_line = 0.0
    with Live(view.render(), console=console, refresh_per_second=1, transient=False) if live \
            else contextlib.nullcontext() as screen:
        while not stop["now"] and (ends is None or time.monotonic() < ends):
            if any(child.poll() is not None for child in children):
                console.print("[red]a child process ended; see ingest.log / simulate.log[/red]")
                break
            time.sleep(0.5)
            if screen is not None:
                screen.update(view.render())
            elif time.monotonic() - last_line >= 5:
                console.print(view.line())
                last_line = time.monotonic()


class DemoView:
    """What the operator sees: throughput, stored, rejects, active alerts, busiest toilets."""

    def __init__(self, influx: Influxd, registry: Registry, state_dir: Path, grafana: Path,
                 alertmanager: DemoAlertmanager | None = None) -> None:
        self.influx = influx
        self.alertmanager = alertmanager
        self.registry = registry
        #: The pipeline's incident store is in `state_dir`; the Grafana files in `grafana`.
        self.state_dir, self.grafana = state_dir, grafana
        self.started_ms = int(time.time() * 1000)

    def _rows(self, query: str) -> list[dict[str, Any]]:
        try:
            return self.influx.rows(query)
        except Exception:
            return []

    def figures(self) -> dict[str, Any]:
        since = f"time >= {self.started_ms}ms"
        totals = self._rows(
            f"SELECT sum(received) AS received, sum(stored) AS stored, sum(rejected) AS "
            f"rejected FROM pipeline WHERE {since}"
        )
        rate = self._rows("SELECT last(msgs_per_s) AS rate FROM pipeline")
        rejects = self._rows(f"SELECT sum(count) AS n FROM rejects WHERE {since} GROUP BY reason")
        return {
            **(totals[0] if totals else {"received": 0, "stored": 0, "rejected": 0}),
            "rate": rate[0]["rate"] if rate else 0.0,
            "rejects": {row["reason"]: row["n"] for row in rejects},
        }

    def busiest(self, top: int = 5) -> list[tuple[str, int]]:
        last = self._rows("SELECT last(entries) FROM people_flow")
        if not last:
            return []
        hour_ago = last[0]["time"] - 3_600_000
        rows = self._rows(
            f"SELECT sum(entries) AS n FROM people_flow WHERE time > {hour_ago}ms GROUP BY site_id"
        )
        names = {site.id: site.name for site in self.registry.sites.values()}
        ranked = sorted(rows, key=lambda row: row["n"] or 0, reverse=True)[:top]
        return [(names.get(row["site_id"], row["site_id"]), int(row["n"] or 0)) for row in ranked]

    def free_stalls(self, top: int = 5) -> list[tuple[str, str, str]]:
        """Toilets with a terminal, the most free stalls first: (name, free/total, paper)."""
        rows = self._rows('SELECT last(stalls_free) AS free, last(stalls_total) AS total, '
                          'last(paper_pct) AS paper FROM toilet WHERE time > now() - 30d '
                          'GROUP BY site_id')
        names = {site.id: site.name for site in self.registry.sites.values()}
        ranked = sorted(rows, key=lambda row: -(row["free"] or 0))[:top]
        return [(names.get(row["site_id"], row["site_id"]),
                 f"{_shown(row['free'])}/{_shown(row['total'])}",
                 "?" if row["paper"] is None else f"{row['paper']:.0f} %") for row in ranked]

    def alerts(self) -> list[Any]:
        from ingest.alerts.incident_db import read_open_incidents

        try:
            return read_open_incidents(self.state_dir)
        except Exception:  # the pipeline may be creating the store right now
            return []

    def line(self) -> str:
        f = self.figures()
        return (f"{f['rate']:.0f} msg/s; received {f['received']}, stored {f['stored']}, "
                f"rejected {f['rejected']} {f['rejects']}; {len(self.alerts())} active alerts"
                + (f"; notified {self.alertmanager.inbox.counts()}" if self.alertmanager else ""))

    def render(self) -> Group:
        f = self.figures()
        flow = Table.grid(padding=(0, 2))
        flow.add_row("messages/s", f"{f['rate']:.0f}")
        flow.add_row("received", str(f["received"] or 0))
        flow.add_row("stored points", str(f["stored"] or 0))
        flow.add_row("rejected", str(f["rejected"] or 0))
        for reason, count in sorted(f["rejects"].items()):
            flow.add_row(f"  {reason}", str(count))
        alerts = Table("site", "rule", "severity", "value", "ack", box=None)
        incidents = self.alerts()
        for incident in sorted(incidents, key=lambda i: -i.started_ms)[:8]:
            alerts.add_row(incident.site_name, incident.rule, incident.severity,
                           str(incident.value), incident.acknowledged_by or "")
        busiest = Table("toilet", "people, last hour", box=None)
        for name, count in self.busiest():
            busiest.add_row(name, str(count))
        free = Table("toilet", "free stalls", "paper", box=None)
        for row in self.free_stalls():
            free.add_row(*row)
        crews = Table("receiver", "alerts notified", box=None)
        if self.alertmanager is not None:
            for name, count in sorted(self.alertmanager.inbox.counts().items()):
                crews.add_row(name, str(count))
        return Group(
            Panel(flow, title="pipeline"),
            Panel(alerts, title=f"active alerts ({len(incidents)})"),
            *([Panel(crews, title=f"Alertmanager {self.alertmanager.url}: crews notified")]
              if self.alertmanager is not None else []),
            Panel(busiest, title="busiest toilets"),
            Panel(free, title="free stalls now (toilet terminals)"),
            f"InfluxDB {self.influx.url} database sanitation; Grafana files in "
            f"{self.grafana} (see README); Ctrl-C stops.",
        )


def _shown(value: Any) -> str:
    return "?" if value is None else str(value)
