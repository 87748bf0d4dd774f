"""`access init` as one call: read the folder, plan the accounts, write the four files."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from devices.credentials import read_credentials, render_credentials
from devices.crews import Crews
from devices.sites import Registry
from sanitel.access import files
from sanitel.access.accounts import Plan, merge, wanted_accounts
from sanitel.access.acl import render_acl
from sanitel.access.passwd import parse_passwd, render_passwd

PASSWORD_BYTES = 24


def new_password() -> str:
    """32 URL-safe characters (192 bits): no `:` or `,` to quote in passwd or CSV."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def init_access(
    out_dir: Path, registry: Registry, crews: Crews, *, gateways: bool | None = None,
    ingest_instances: int | None = None, device_patterns: bool = False,
    rotate: list[str] | None = None, password: Callable[[], str] = new_password,
) -> Plan:
    """Write `mosquitto.conf`, `passwd`, `acl` and `credentials.csv` in `out_dir`;
    the accounts, with what was added, removed and rotated. `gateways=None` keeps
    gateway accounts when the previous run made them, `ingest_instances=None` as many
    ingest accounts as it made (at least one)."""
    crews.check_districts(site.district for site in registry.sites.values())
    try:
        if not out_dir.exists():  # an existing folder keeps its mode: it may be /etc/...
            out_dir.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise files.AccessFileError(f"{out_dir}: cannot be created ({exc.strerror})") from None
    existing = read_credentials(out_dir / files.CREDENTIALS, missing_ok=True)
    if gateways is None:
        gateways = any(account.role == "gateway" for account in existing)
    if ingest_instances is None:
        ingest_instances = max(1, sum(account.role == "ingest" for account in existing))
    wanted = wanted_accounts(registry, crews, gateways, ingest_instances)
    plan = merge(wanted, existing, password, rotate or [])
    previous = parse_passwd(files.read_text(out_dir / files.PASSWD))
    passwords = {account.username: account.password for account in plan.accounts}
    # Credentials first: if we stop half-way, the next run still knows every password.
    files.write_file(out_dir / files.CREDENTIALS, render_credentials(plan.accounts), 0o600)
    files.write_file(out_dir / files.PASSWD, render_passwd(passwords, previous), 0o600)
    acl = render_acl(plan.accounts, registry, crews, device_patterns)
    files.write_file(out_dir / files.ACL, acl, 0o600)
    files.write_file(out_dir / files.CONF, files.render_conf(out_dir), 0o644)
    return plan
