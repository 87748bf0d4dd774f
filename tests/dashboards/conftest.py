"""Fixtures of the dashboards tests: the dashboards as exported, and the repository paths."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dashboards

# test modules here import their helpers (dash_city) by name, whatever pytest's import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dash_grafana import FakeGrafana

ROOT = Path(__file__).resolve().parents[2]
ALERTS_FILE = ROOT / "config" / "alerts.yaml"


@pytest.fixture(scope="session")
def boards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON, thresholds from the shipped alert rules."""
    return dashboards.dashboards(ALERTS_FILE)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def alerts_file() -> Path:
    return ALERTS_FILE


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, repo_root: Path) -> pytest.MonkeyPatch:
    """No SANITEL_* / GRAFANA_* from the caller's shell; working directory the repo root."""
    for name in list(os.environ):
        if name.startswith(("SANITEL_", "GRAFANA_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(repo_root)
    return monkeypatch


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    """A recording stand-in for Grafana's HTTP API on 127.0.0.1 (folders, datasources,
    dashboards), with Grafana's semantics for ids, versions and secure fields."""
    server = FakeGrafana()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
