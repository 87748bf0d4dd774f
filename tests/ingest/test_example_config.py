"""The documented example configuration is valid and states the real defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from ingest.settings import Settings, load

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "sanitel.example.yaml"


def test_example_config_loads_and_matches_the_defaults() -> None:
    settings = load(EXAMPLE)
    defaults = Settings()
    for section in ("mqtt", "influx", "spool", "webhooks", "pipeline", "alertmanager",
                    "grafana", "retention", "http", "log"):
        documented = yaml.safe_load(EXAMPLE.read_text())[section]
        for key, value in documented.items():
            assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"
    assert settings.influx.api == "v1" and settings.mqtt.port == 1883
