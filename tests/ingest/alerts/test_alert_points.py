"""The `alerts` points as InfluxDB stores them (SPEC section 5, v1.1: `acknowledged_by`)."""

from __future__ import annotations

import httpx

from ingest.alerts import AlertEvent
from sanitel.local_servers import Influxd


def event(state: str, acknowledged_by: str | None, ts_ms: int) -> AlertEvent:
    return AlertEvent(
        alert_id="a1b2c3", rule="odor_nh3_high", severity="warning", state=state,
        site_id="WC-0001", device_id="WC-0001-OD-1", device_type="odor", field="nh3_ppm",
        value=3.4, threshold=2.0, started_at="2026-11-24T08:00:00Z", resolved_at=None,
        message='NH3 3.4 ppm "high" at People\'s Park', acknowledged_by=acknowledged_by,
        ts_ms=ts_ms, event_id=f"a1b2c3-{ts_ms}",
    )


def test_alerts_points_carry_who_acknowledged(influxd: Influxd) -> None:
    db = "alert_points"
    influxd.query(f'CREATE DATABASE "{db}"')
    body = "\n".join(e.line() for e in (
        event("firing", None, 1_795_507_200_000),
        event("acknowledged", "crew-jinjiang", 1_795_507_260_000),
        event("resolved", "crew-jinjiang", 1_795_507_320_000),
    ))
    response = httpx.post(f"{influxd.url}/write", params={"db": db, "precision": "ms"},
                          content=body)
    assert response.status_code == 204, response.text
    rows = influxd.rows('SELECT "state", "acknowledged_by", "alert_id", "message", "value", '
                        '"threshold" FROM "alerts"', db)
    assert [(r["state"], r["acknowledged_by"]) for r in rows] == [
        ("firing", None), ("acknowledged", "crew-jinjiang"), ("resolved", "crew-jinjiang")]
    assert {(r["alert_id"], r["value"], r["threshold"]) for r in rows} == {("a1b2c3", 3.4, 2.0)}
    assert rows[0]["message"] == 'NH3 3.4 ppm "high" at People\'s Park'
