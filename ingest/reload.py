"""Reloading the registry and the alert rules in a running pipeline (SIGHUP, SPEC section 10).

The files are read and checked off the event loop (the registry, which can be large, is
parsed by a child process: `yaml_process`); only a complete new configuration is
put in force, between two messages, so no reading is lost and the MQTT session stays up.
A file that does not load keeps the previous one in force; the error names the file, the
key and, where it can be found, the line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devices.crews import Crews, CrewsError
from devices.sites import Registry, RegistryError
from ingest.config_lines import with_line
from ingest.yaml_process import YamlFileError, load_yaml_in_child

if TYPE_CHECKING:
    from ingest.alerts.rules import RuleSet
    from ingest.pipeline import Pipeline

log = logging.getLogger("sanitel.reload")


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    ok: bool
    summary: str
    errors: list[str] = field(default_factory=list)


class ConfigReloader:
    """`await reloader.reload()`: one reload at a time; its figures are for `/metrics`."""

    def __init__(
        self, pipeline: Pipeline, registry_path: Path, rules_path: Path,
        crews_path: Path | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._registry_path = registry_path
        self._rules_path = rules_path
        self._crews_path = crews_path
        self._lock = asyncio.Lock()
        self.succeeded = 0
        self.failed = 0
        #: The last reload's errors (None: it worked, or none was asked for yet).
        self.last_error: str | None = None
        self.last_success_at = time.time()

    async def reload(self) -> ReloadOutcome:
        async with self._lock:
            outcome = await self._reload()
        if outcome.ok:
            self.succeeded += 1
            self.last_error, self.last_success_at = None, time.time()
            log.info("reloaded: %s", outcome.summary)
        else:
            self.failed += 1
            self.last_error = "; ".join(outcome.errors)
            for error in outcome.errors:
                log.error("reload: %s", error)
            log.error("reload: %s", outcome.summary)
        return outcome

    async def _reload(self) -> ReloadOutcome:
        pipeline, engine = self._pipeline, self._pipeline.alerts
        errors: list[str] = []
        registry = await self._load_registry(errors)
        rules = await self._load_rules(errors) if engine is not None else None
        if registry is None and rules is None:
            return ReloadOutcome(False, "nothing changed", errors)
        registry_now = registry or pipeline.registry
        if engine is not None:
            from ingest.alerts import AlertRulesError

            rules_now = rules or engine.rule_set
            try:
                prepared = await asyncio.to_thread(engine.prepare, rules_now, registry_now)
            except AlertRulesError as exc:
                errors.append(f"{exc}; kept the previous registry and alert rules")
                return ReloadOutcome(False, "nothing changed", errors)
            resolved = engine.reload(prepared)
        before = set(pipeline.registry.devices)
        pipeline.use_registry(registry_now)
        after = set(registry_now.devices)
        summary = (f"registry {len(registry_now.sites)} sites, {len(after)} devices "
                   f"({len(after - before)} added, {len(before - after)} removed)")
        if engine is not None:
            summary += f"; {len(engine.rules)} alert rules; {resolved} incidents resolved"
        summary += self._reload_crews(errors)
        return ReloadOutcome(not errors, summary, errors)

    def _reload_crews(self, errors: list[str]) -> str:
        """The crews file too (SPEC section 8): a crew added with `sanitel access init`
        may acknowledge from now on."""
        if self._crews_path is None:
            return ""
        try:
            crews = Crews.load(self._crews_path)
        except CrewsError as exc:
            errors.append(f"{exc}; kept the previous crews")
            return ""
        self._pipeline.crews = crews
        return f"; {len(crews)} crews"

    async def _load_registry(self, errors: list[str]) -> Registry | None:
        path = self._registry_path
        source = f"registry file {path}"
        try:
            try:
                data = await load_yaml_in_child(path)
            except YamlFileError as exc:
                raise RegistryError(f"{source}: {exc}") from None
            return await asyncio.to_thread(Registry.from_dict, data, source)
        except RegistryError as exc:
            errors.append(f"{with_line(str(exc), path)}; kept the previous registry")
            return None

    async def _load_rules(self, errors: list[str]) -> RuleSet | None:
        from ingest.alerts.rules import AlertRulesError, load_rules

        path = self._rules_path
        try:
            return await asyncio.to_thread(load_rules, path)
        except AlertRulesError as exc:
            errors.append(f"{with_line(str(exc), path)}; kept the previous alert rules")
            return None
