"""Grafana dashboards as code for the operations center, their provisioning, and `push`.

`dashboards()` builds every dashboard as Grafana JSON; `dashboards.provisioning`
writes them with Grafana's provisioning files; `dashboards.push` uploads them
through the HTTP API; `sanitel.dashboards_cli.app` is `sanitel dashboards`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import (
    city_overview,
    device_health,
    pipeline_health,
    public_toilets,
    transfer_stations,
)
from dashboards.document import render
from dashboards.influxql import DATASOURCE_UID
from dashboards.thresholds import AlertLevels, load_levels

Builder = Callable[[AlertLevels], Dashboard]

#: File stem -> builder, in the order an operator reads them.
BUILDERS: dict[str, Builder] = {
    "city-overview": city_overview.build,
    "public-toilets": public_toilets.build,
    "transfer-stations": transfer_stations.build,
    "device-health": device_health.build,
    "pipeline": pipeline_health.build,
}


def dashboards(alerts_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON by file stem, thresholds read from `alerts_file` if usable."""
    levels = load_levels(alerts_file)
    return {stem: render(build(levels)) for stem, build in BUILDERS.items()}


__all__ = ["BUILDERS", "DATASOURCE_UID", "dashboards"]
