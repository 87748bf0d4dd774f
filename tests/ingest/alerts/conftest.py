"""A small city and small rules for the alert engine's unit tests."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devices.sites import Registry
from ingest.alerts import AlertEngine

# The test modules here share data through `alert_city` (basenames are unique project-wide).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from alert_city import CITY, E2E_RULES, RULES, EngineFactory


@pytest.fixture
def city() -> dict[str, Any]:
    return copy.deepcopy(CITY)


@pytest.fixture
def rules() -> dict[str, Any]:
    return copy.deepcopy(RULES)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[EngineFactory]:
    """`make_engine(rules=None, city=None, state_dir=None)`: an engine on files in tmp_path;
    the same state_dir twice is a restart."""
    opened: list[AlertEngine] = []

    def make(rules: dict[str, Any] | None = None, city: dict[str, Any] | None = None,
             state_dir: Path | None = None) -> AlertEngine:
        path = tmp_path / f"alerts-{len(opened)}.yaml"
        path.write_text(yaml.safe_dump(rules or RULES, sort_keys=False))
        registry = Registry.from_dict(city or CITY)
        engine = AlertEngine.open(path, registry, state_dir or tmp_path / "state")
        opened.append(engine)
        return engine

    yield make
    for engine in opened:
        engine.close()


@pytest.fixture
def registry() -> Registry:
    return Registry.from_dict(CITY)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """The end-to-end rules (`E2E_RULES`) as a file for `sanitel ingest`."""
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(E2E_RULES))
    return path
