"""Readiness (SPEC section 10): ready when subscribed and storing, that is InfluxDB takes
writes or the spool is below its bound. Pure: plain conditions in, a verdict out.

Reasons (why `/readyz` answers 503) and warnings (shown, still 200) are stable codes an
operator can alert on; `detail` says the same in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

STARTING = "starting"
STOPPING = "stopping"
BROKER_UNAVAILABLE = "broker_unavailable"
INFLUXDB_UNAVAILABLE = "influxdb_unavailable"
INFLUXDB_CREDENTIALS_REFUSED = "influxdb_credentials_refused"
SPOOL_FULL = "spool_full"
SPOOL_NEAR_FULL = "spool_near_full"
SPOOL_UNWRITABLE = "spool_unwritable"
CONFIG_RELOAD_FAILED = "config_reload_failed"

#: Share of `spool.max_bytes` from which the spool is reported near full.
NEAR_FULL = 0.9


@dataclass(frozen=True, slots=True)
class Conditions:
    """What readiness depends on, read from the running pipeline."""

    started: bool
    #: SIGTERM received: draining, taking no more messages.
    stopping: bool = False
    subscribed: bool = False
    influx_unavailable: bool = False
    credentials_refused: bool = False
    spool_bytes: int = 0
    spool_max_bytes: int = 1
    #: The store stopped acknowledging: the spool refused a batch (full or unwritable).
    paused: bool = False
    #: Why the spool cannot be written (disk full, read-only); empty when it can.
    spool_error: str = ""
    reload_error: str | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    detail: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return orjson.dumps({"ready": self.ready, "reasons": self.reasons,
                             "warnings": self.warnings, "detail": self.detail})


def assess(c: Conditions) -> Readiness:
    if not c.started:
        return Readiness(False, [STARTING], [], {STARTING: "the pipeline is starting"})
    reasons: list[str] = []
    warnings: list[str] = []
    detail: dict[str, str] = {}
    if c.stopping:
        reasons.append(STOPPING)
        detail[STOPPING] = "stopping: storing what it holds, taking no more messages"
    if not c.subscribed:
        reasons.append(BROKER_UNAVAILABLE)
        detail[BROKER_UNAVAILABLE] = "not connected and subscribed to the MQTT broker"
    share = c.spool_bytes / max(c.spool_max_bytes, 1)
    full = c.paused or c.spool_bytes >= c.spool_max_bytes or bool(c.spool_error)
    influx = _influx_problem(c)
    if influx is not None:
        # Readings go to the spool meanwhile: still storing until the spool is full.
        (reasons if full else warnings).append(influx[0])
        detail[influx[0]] = influx[1]
    if c.spool_error:
        reasons.append(SPOOL_UNWRITABLE)
        detail[SPOOL_UNWRITABLE] = (f"the spool cannot be written ({c.spool_error}); readings "
                                    "are left unacknowledged with the broker")
    elif full:
        reasons.append(SPOOL_FULL)
        detail[SPOOL_FULL] = (f"the spool holds {c.spool_bytes} of {c.spool_max_bytes} bytes "
                              "and refused the next batch; readings are left unacknowledged "
                              "with the broker")
    elif share >= NEAR_FULL:
        warnings.append(SPOOL_NEAR_FULL)
        detail[SPOOL_NEAR_FULL] = f"the spool holds {share:.0%} of its bound"
    if c.reload_error is not None:
        # The previous configuration is still in force: storing goes on.
        warnings.append(CONFIG_RELOAD_FAILED)
        detail[CONFIG_RELOAD_FAILED] = c.reload_error
    return Readiness(not reasons, reasons, warnings, detail)


def _influx_problem(c: Conditions) -> tuple[str, str] | None:
    if c.credentials_refused:
        return INFLUXDB_CREDENTIALS_REFUSED, ("InfluxDB refuses our credentials (401/403); "
                                              "readings wait in the spool")
    if c.influx_unavailable:
        return INFLUXDB_UNAVAILABLE, "InfluxDB does not take writes; readings go to the spool"
    return None
