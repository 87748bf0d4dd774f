"""Alertmanager in `sanitel demo`, when it is installed: the shipped routing
(`config/alertmanager.yml`, made from `config/crews.yaml`) for the demo city's districts,
its crews' webhooks pointed at a local `CrewInbox` that keeps what each crew would get.

A district of the generated city that no shipped crew covers gets a crew of its own
(`crew-<district>`), so that every crew receiver shows its own district's alerts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from devices.sites import Registry
from ingest.settings import SHIPPED_CONFIG
from sanitel.alertmanager_config import CrewRoute, build, load_crews, retarget
from sanitel.crew_inbox import CrewInbox
from sanitel.local_servers import ALERTMANAGER_BINARY, Alertmanager, ServerError, find_binary

#: Shorter than the shipped 30 s: a demo should show the first notifications soon.
DEMO_GROUP_WAIT = "10s"


@dataclass
class DemoAlertmanager:
    server: Alertmanager
    inbox: CrewInbox
    crews: list[CrewRoute]

    @property
    def url(self) -> str:
        return self.server.url


def demo_crews(registry: Registry, crews_file: Path = SHIPPED_CONFIG / "crews.yaml"
               ) -> list[CrewRoute]:
    crews = load_crews(crews_file) if crews_file.exists() else []
    covered = {district for crew in crews for district in crew.districts}
    for district in sorted({site.district for site in registry.sites.values()} - covered):
        crews.append(CrewRoute(f"crew-{district.lower().replace(' ', '-')}", (district,)))
    return crews


@contextlib.contextmanager
def demo_alertmanager(directory: Path, registry: Registry, port: int
                      ) -> Iterator[DemoAlertmanager | None]:
    """Alertmanager and the crews' inbox while the block runs; None when not installed."""
    try:
        find_binary("prometheus-alertmanager", ALERTMANAGER_BINARY)
    except ServerError:
        yield None
        return
    crews = demo_crews(registry)
    with CrewInbox(directory / "inbox") as inbox:
        config = retarget(build(crews, (s.district for s in registry.sites.values())),
                          inbox.url, wait=DEMO_GROUP_WAIT)
        server = Alertmanager(directory, port=port, config=yaml.safe_dump(config))
        with server:
            yield DemoAlertmanager(server, inbox, crews)


def announce(alertmanager: DemoAlertmanager | None) -> str:
    """The demo's line about Alertmanager: where its UI is, or how to get it."""
    if alertmanager is None:
        return ("Alertmanager is not installed: alerts stay on MQTT (apt-get install "
                "prometheus-alertmanager, or .ci/setup, to route them to crews)")
    return (f"Alertmanager UI {alertmanager.url} (routing of config/alertmanager.yml for "
            f"{len(alertmanager.crews)} crews; what each crew gets: "
            f"{alertmanager.inbox.directory}/)")
