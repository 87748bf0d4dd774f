"""The live progress line of `sanitel simulate` (rich), and its closing summary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulators.runner import RunStats
from simulators.tally import Tally


def sim_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class ProgressView:
    """`with ProgressView(console, tally, pending) as view: run(..., on_progress=view.update)`."""

    def __init__(
        self, console: Console, tally: Tally, pending: Callable[[], int] | None = None
    ) -> None:
        self.console = console
        self.tally = tally
        self.pending = pending
        self._live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> Self:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)
        if not self.console.is_terminal:
            self.console.line()  # rich leaves the last frame without its newline

    def update(self, stats: RunStats) -> None:
        table = Table(box=None, pad_edge=False)
        for column in ("simulated time", "elapsed", "sent/s", "telemetry", "status", "faults"):
            table.add_column(column, justify="right")
        if self.pending:
            table.add_column("unacked", justify="right")
        row = [
            sim_time(stats.sim_ms),
            f"{stats.elapsed_s:.0f} s",
            f"{stats.per_second:,.0f}",
            f"{stats.telemetry:,}",
            f"{stats.status:,}",
            f"{sum(self.tally.faults.values()):,}",
        ]
        if self.pending:
            row.append(f"{self.pending():,}")
        table.add_row(*row)
        self._live.update(table)


def summary(tally: Tally) -> str:
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(tally.rejected.items())) or "none"
    readings = ", ".join(f"{k} {v}" for k, v in sorted(tally.readings.items()))
    return (
        f"sent {tally.messages:,} telemetry messages: {tally.stored:,} good readings "
        f"({readings}); to be rejected: {rejected}; duplicates {tally.duplicates}; "
        f"status {tally.status_online} online / {tally.status_offline} offline"
    )
