"""The mosquitto ACL file of SPEC section 8: least privilege per role.

mosquitto's `acl_file` denies whatever no line grants. `read` governs what a client
receives, checked on every message (retained ones too): mosquitto 2.0 accepts a
SUBSCRIBE to a wider filter (`sanitation/v1/#`, or `$share/<group>/...`) and then delivers
only the messages whose topic a `read` line grants. `write` governs publishing,
including a client's last will.
"""

from __future__ import annotations

from collections.abc import Iterable

from devices.credentials import Account
from devices.crews import Crews
from devices.sites import Device, Registry
from ingest.topics import ROOT, device_topic

HEADER = (
    "# Written by `sanitel access init` (SPEC section 8); run it again rather than edit.\n"
    "# Whatever no line grants is refused by the broker.\n"
)


def device_lines(device: Device) -> list[str]:
    """What one device may do: write its telemetry and status, read its commands."""
    site, kind, name = device.site.id, device.type, device.id
    return [
        f"topic write {device_topic(site, kind, name, 'telemetry')}",
        f"topic write {device_topic(site, kind, name, 'status')}",
        f"topic read {ROOT}/{site}/{kind}/{name}/cmd",
    ]


INGEST_LINES = [
    f"topic read {ROOT}/+/+/+/telemetry",
    f"topic read {ROOT}/+/+/+/status",
    f"topic read {ROOT}/_ack/#",
    f"topic write {ROOT}/_alerts/#",
    f"topic write {ROOT}/_dlq/#",
]


def crew_lines(crew: str, sites: Iterable[str]) -> list[str]:
    """A crew reads the alerts of its sites and writes only its own ack topic."""
    return [
        *(f"topic read {ROOT}/_alerts/{site}/#" for site in sites),
        f"topic write {ROOT}/_ack/{crew}",
    ]


#: `--device-patterns`: one rule for every device, `%u` being the username (= device id).
DEVICE_PATTERNS = [
    f"pattern write {ROOT}/+/+/%u/telemetry",
    f"pattern write {ROOT}/+/+/%u/status",
    f"pattern read {ROOT}/+/+/%u/cmd",
]


def render_acl(
    accounts: Iterable[Account], registry: Registry, crews: Crews, device_patterns: bool = False
) -> str:
    """The ACL file. With `device_patterns`, devices get the three `pattern` lines instead
    of a block each: mosquitto 2.0.11 loads an ACL slowly as its `user` blocks grow (3.4 s
    for 10,600 devices, 20 s with 3,000 gateways too; 0.1 s and 1.5 s with patterns), and
    serves no one while it does, at start and at every SIGHUP. The price: a device may
    then also write its own id under another site or type, which the pipeline rejects
    (`device_mismatch`), and every account gets the pattern for its own name."""
    by_site: dict[str, list[Device]] = {}
    for device in registry.devices.values():
        by_site.setdefault(device.site.id, []).append(device)
    blocks = [HEADER]
    if device_patterns:
        blocks.append("# every device (%u: its username, the device id)\n" + "".join(
            f"{line}\n" for line in DEVICE_PATTERNS))
    for account in accounts:
        if account.role == "device" and device_patterns:
            continue
        if account.role == "device":
            lines = device_lines(registry.devices[account.device_id])
        elif account.role == "gateway":
            lines = [line for d in by_site.get(account.site_id, []) for line in device_lines(d)]
        elif account.role == "ingest":
            lines = INGEST_LINES
        else:
            crew = crews.by_name[account.username]
            sites = [s.id for s in registry.sites.values() if s.district in crew.districts]
            lines = crew_lines(account.username, sites)
        blocks.append(f"# {account.role}\nuser {account.username}\n" + "".join(
            f"{line}\n" for line in lines))
    return "\n".join(blocks)
