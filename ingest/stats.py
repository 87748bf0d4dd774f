"""The pipeline's own health figures, as a `pipeline` point every few seconds (SPEC section 5)."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from ingest.lineproto import point
from ingest.rejects import RejectReason
from ingest.store_stage import StoreFigures


@dataclass
class PipelineStats:
    instance: str
    received: int = 0
    rejected: int = 0
    alerts: int = 0
    #: Messages taken from the broker and not yet acknowledged.
    inflight: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    _last: dict[str, int] = field(default_factory=dict)
    _last_time: float = field(default_factory=time.monotonic)

    def point(
        self, store: StoreFigures, queue_depth: int, spool_bytes: int, spool_batches: int,
        now_ms: int,
    ) -> str:
        """The figures since the previous call (counts are deltas over the interval)."""
        now = time.monotonic()
        interval = max(now - self._last_time, 1e-6)
        totals = {
            "received": self.received, "stored": store.stored, "rejected": self.rejected,
            "alerts": self.alerts, "credentials_refusals": store.credentials_refusals,
            **{f"rejected_{reason}": self.rejected_by_reason[reason] for reason in RejectReason},
        }
        deltas = {key: value - self._last.get(key, 0) for key, value in totals.items()}
        latencies, store.latencies_ms = store.latencies_ms, []
        self._last, self._last_time = totals, now
        return point(
            "pipeline", {"instance": self.instance},
            {
                **deltas,
                "interval_s": round(interval, 3),
                "msgs_per_s": round(deltas["received"] / interval, 2),
                "write_latency_ms_p50": round(statistics.median(latencies), 2) if latencies
                else None,
                "write_latency_ms_max": round(max(latencies), 2) if latencies else None,
                "queue_depth": queue_depth,
                "inflight": self.inflight,
                "spool_bytes": spool_bytes,
                "spool_batches": spool_batches,
                "paused": store.paused,
                "credentials_refused": store.credentials_refused,
            },
            now_ms,
        )
