"""`config/alertmanager.yml`, made from the crews and the registry (SPEC section 11).

Routing: a critical alert also goes to the duty phone (repeated every 30 minutes while it
lasts); every alert goes to the crew(s) of its district; anything else (a district no crew
has) to the control room. Alerts are grouped per site; a device's `offline` inhibits its
other alerts. Receivers are webhooks under `EXAMPLE_BASE`: an operator replaces them with
`email_configs` or `wechat_configs` (README), the tests and the demo point them elsewhere
with `retarget`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from devices.crews import Crews, CrewsError
from devices.sites import Registry, RegistryError
from sanitel.cli_support import ConfigOption, fail, load_settings

EXAMPLE_BASE = "https://alerts.city.example"
DUTY_PHONE = "duty-phone"
CONTROL_ROOM = "control-room"

HEADER = """\
# Prometheus Alertmanager routing for Sanitel's alerts (SPEC section 11), made by
#   sanitel alerts alertmanager-config --crews config/crews.yaml > config/alertmanager.yml
# from the crews and the districts of the registry: run it again when either changes.
#
# Every alert carries the labels alertname (the rule), severity, site_id, device_id,
# device_type, district, site_kind, and the annotations summary, value, threshold,
# alert_id and dashboard (a Grafana link). Replace each receiver's webhook with what the
# crew reads (email_configs, wechat_configs, ...; see README "Alerts to Alertmanager").
"""


@dataclass(frozen=True, slots=True)
class CrewRoute:
    """A crew as routing sees it: its receiver's name and its districts, in order."""

    name: str
    districts: tuple[str, ...]


def load_crews(path: Path) -> list[CrewRoute]:
    """The crews file of SPEC section 8 (`crews: [{name, districts}]`), in its order;
    raises `CrewsError` naming the file and key."""
    return routes_of(Crews.load(path))


def routes_of(crews: Crews) -> list[CrewRoute]:
    return [CrewRoute(crew.name, tuple(sorted(crew.districts))) for crew in crews]


def _webhook(path: str, base: str = EXAMPLE_BASE) -> dict[str, Any]:
    return {"webhook_configs": [{"url": f"{base}/{path}", "send_resolved": True}]}


def build(crews: Iterable[CrewRoute], districts: Iterable[str]) -> dict[str, Any]:
    """The whole alertmanager.yml as a mapping: one route per district of the registry (in
    name order) to each crew that covers it."""
    crews = list(crews)
    routes: list[dict[str, Any]] = [{
        "receiver": DUTY_PHONE, "matchers": ['severity="critical"'],
        "group_wait": "10s", "repeat_interval": "30m", "continue": True,
    }]
    for district in sorted(set(districts)):
        covering = [crew.name for crew in crews if district in crew.districts]
        for index, name in enumerate(covering):
            routes.append({"receiver": name, "matchers": [f'district="{district}"'],
                           "continue": index < len(covering) - 1})
    receivers = [{"name": CONTROL_ROOM, **_webhook("control-room")},
                 {"name": DUTY_PHONE, **_webhook("duty-phone")}]
    receivers += [{"name": crew.name, **_webhook(f"crews/{crew.name}")} for crew in crews]
    return {
        "route": {"receiver": CONTROL_ROOM, "group_by": ["site_id"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h", "routes": routes},
        "inhibit_rules": [{
            "source_matchers": ['alertname="offline"'],
            "target_matchers": ['alertname!="offline"'],
            "equal": ["site_id", "device_id"],
        }],
        "receivers": receivers,
    }


def render(config: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100)


def retarget(config: dict[str, Any], base: str, wait: str | None = None) -> dict[str, Any]:
    """A copy whose webhooks under `EXAMPLE_BASE` point to `base` instead (a local recorder),
    with every group_wait and group_interval set to `wait` when given."""
    text = yaml.safe_dump(config, sort_keys=False).replace(EXAMPLE_BASE, base.rstrip("/"))
    copy: dict[str, Any] = yaml.safe_load(text)
    if wait:
        copy["route"]["group_interval"] = wait
        stack = [copy["route"]]
        while stack:
            route = stack.pop()
            route["group_wait"] = wait
            stack.extend(route.get("routes", []))
    return copy


def alertmanager_config(
    config: ConfigOption = None,
    crews: Annotated[Path | None, typer.Option(help=(
        "The crews file (SPEC section 8) [default: the configuration's `crews`, "
        "config/crews.yaml]."))] = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Write an alertmanager.yml routing each district's alerts to its crews (the registry
    from the configuration), critical ones also to the duty phone."""
    settings = load_settings(config, "sanitel alerts alertmanager-config")
    try:
        registry = Registry.load(settings.registry)
        teams = Crews.load(crews or settings.crews)
        teams.check_districts(site.district for site in registry.sites.values())
        routes = routes_of(teams)
    except (RegistryError, CrewsError) as exc:
        fail(str(exc), 2, "sanitel alerts alertmanager-config")
    text = render(build(routes, (site.district for site in registry.sites.values())))
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
