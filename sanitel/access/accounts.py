"""Who gets a broker account (SPEC section 8), and how a re-run keeps their passwords.

Pure: the registry and the crews in, `Account` rows out; passwords come from a function
the caller passes (`secrets` in production).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from devices.credentials import Account
from devices.crews import Crews
from devices.sites import Registry

INGEST_USERNAME = "sanitel-ingest"
GATEWAY_SUFFIX = "-gw"


class AccountError(ValueError):
    """Accounts that cannot be made: two with one username, or an unknown one to rotate."""


def gateway_username(site_id: str) -> str:
    return f"{site_id}{GATEWAY_SUFFIX}"


def ingest_username(instance: int) -> str:
    """`sanitel-ingest`, then `sanitel-ingest-2`, ... for more pipeline instances."""
    return INGEST_USERNAME if instance <= 1 else f"{INGEST_USERNAME}-{instance}"


def wanted_accounts(
    registry: Registry, crews: Crews, gateways: bool, ingest_instances: int = 1
) -> list[Account]:
    """Every account the registry and crews call for, without passwords, in file order.

    The broker makes each account's username its client id, so several pipeline
    instances (a shared group, an alerts instance) need one account each."""
    accounts = [
        Account("device", device.id, site_id=device.site.id, device_id=device.id)
        for device in registry.devices.values()
    ]
    if gateways:
        accounts += [
            Account("gateway", gateway_username(site.id), site_id=site.id)
            for site in registry.sites.values()
        ]
    accounts += [Account("ingest", ingest_username(n)) for n in range(1, ingest_instances + 1)]
    accounts += [Account("crew", crew.name) for crew in crews]
    _check_unique(accounts)
    return accounts


def _check_unique(accounts: Iterable[Account]) -> None:
    seen: dict[str, Account] = {}
    for account in accounts:
        other = seen.get(account.username)
        if other is not None:
            raise AccountError(
                f"username {account.username!r} is wanted twice ({other.role} and "
                f"{account.role}); rename the crew or the device so that every account is unique"
            )
        seen[account.username] = account


@dataclass(frozen=True, slots=True)
class Plan:
    accounts: list[Account]
    added: list[str]
    removed: list[str]
    rotated: list[str]


def merge(
    wanted: list[Account], existing: Iterable[Account], new_password: Callable[[], str],
    rotate: Iterable[str] = (),
) -> Plan:
    """The accounts to write: existing passwords kept (same username and role), new
    accounts given one, gone ones dropped, those in `rotate` given a new one."""
    before = {account.username: account for account in existing}
    to_rotate = set(rotate)
    names = {account.username for account in wanted}
    unknown = sorted(to_rotate - names)
    if unknown:
        raise AccountError(
            f"--rotate {unknown[0]}: no such account; the accounts are the device ids, "
            f"{INGEST_USERNAME}, the crews' names and, with --gateways, <site_id>{GATEWAY_SUFFIX}"
        )
    accounts, added, rotated = [], [], []
    for account in wanted:
        old = before.get(account.username)
        if account.username in to_rotate:
            rotated.append(account.username)
            password = new_password()
        elif old is not None and old.role == account.role and old.password:
            password = old.password
        else:
            added.append(account.username)
            password = new_password()
        accounts.append(replace(account, password=password))
    removed = [name for name in before if name not in names]
    return Plan(accounts, added, removed, rotated)
