"""The warning levels of NH3 and H2S for each odor device: the alert rules with the
overrides of its site kind, its site and itself, exactly as the alert engine uses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devices.sites import Registry
from ingest.alerts.plan import compile_plan
from ingest.alerts.rules import AlertRule, load_rules

GASES = ("nh3_ppm", "h2s_ppm")


@dataclass(frozen=True, slots=True)
class WarningLevels:
    """Per device id and field: the bound past which a reading is at warning level."""

    by_device: dict[str, dict[str, float]]

    def bound(self, device_id: str, field: str) -> float | None:
        return self.by_device.get(device_id, {}).get(field)


def warning_levels(rules_path: Path, registry: Registry) -> WarningLevels:
    """Raises `AlertRulesError` (naming file, rule and key) when the rules cannot be used."""
    rules = load_rules(rules_path)
    found: dict[str, dict[str, float]] = {}
    for device in registry.devices.values():
        if device.type != "odor":
            continue
        plan = compile_plan(rules, device)
        levels = {watch.rule.field: bound for watch in plan.watches
                  if watch.rule.field in GASES and (bound := _warning(watch.rule)) is not None}
        found[device.id] = levels
    return WarningLevels(found)


def _warning(rule: AlertRule) -> float | None:
    """The `warning` level's bound, else the least severe one; None for other than `above`."""
    if rule.kind != "above" or not rule.levels:
        return None
    level = next((lv for lv in rule.levels if lv.severity == "warning"), rule.levels[0])
    return level.bound
