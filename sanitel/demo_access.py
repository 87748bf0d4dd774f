"""The demo's broker with access control on (SPEC section 8): accounts for the demo city.

`sanitel demo` runs `access init` into `<dir>/access` (0700; passwd and credentials.csv
0600) with the demo's crews (those its Alertmanager routes to) and a gateway account per
site, starts
mosquitto with the lines it wrote, and runs ingest and the simulator with their accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from devices.crews import Crews
from devices.sites import Registry, valid_id
from sanitel.access.build import init_access


@dataclass(frozen=True)
class DemoAccess:
    folder: Path
    crews_file: Path
    crews: list[str]

    @property
    def credentials(self) -> Path:
        return self.folder / "credentials.csv"

    @property
    def conf(self) -> str:
        return (self.folder / "mosquitto.conf").read_text()

    def settings(self) -> dict[str, object]:
        """The configuration keys for ingest and `sanitel alerts ack --crew` (no secret:
        the path of the credentials file)."""
        return {"crews": str(self.crews_file.resolve()),
                "access": {"enabled": True, "credentials": str(self.credentials.resolve())}}

    def announce(self) -> str:
        example = self.crews[0] if self.crews else "CREW"
        return (f"access control on: broker accounts and passwords in {self.credentials} "
                f"(mode 0600), crews {', '.join(self.crews)} in {self.crews_file}; acknowledge "
                f"as a crew: sanitel alerts ack ID --crew {example} --config "
                f"{self.folder.parent / 'sanitel.yaml'}")


def demo_access(directory: Path, registry: Registry) -> DemoAccess:
    """Write (or, on a later run, update keeping the passwords) the demo's accounts: the
    crews are those the demo's Alertmanager routes to, limited to the city's districts."""
    from sanitel.demo_alertmanager import demo_crews

    districts = {site.district for site in registry.sites.values()}
    by_name: dict[str, list[str]] = {}
    for crew in demo_crews(registry):
        mine = sorted(set(crew.districts) & districts)
        if mine and valid_id(crew.name):
            by_name.setdefault(crew.name, []).extend(mine)
    crews_file = directory / "crews.yaml"
    crews_file.write_text(
        "# Written by `sanitel demo`: one crew per district of the demo city.\n"
        + yaml.safe_dump({"crews": [{"name": n, "districts": d} for n, d in by_name.items()]},
                         sort_keys=False))
    folder = directory / "access"
    init_access(folder, registry, Crews.load(crews_file), gateways=True)
    return DemoAccess(folder, crews_file, list(by_name))
