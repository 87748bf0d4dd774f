"""`credentials.csv` of `sanitel access init` (SPEC section 8), read by every side.

Header `role,username,password,site_id,device_id`; one row per broker account. The
pipeline, the simulator and `sanitel alerts ack` read it to connect as their account.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Role = Literal["device", "gateway", "ingest", "crew"]
ROLES: tuple[Role, ...] = ("device", "gateway", "ingest", "crew")
HEADER = ["role", "username", "password", "site_id", "device_id"]


class CredentialsError(ValueError):
    """A credentials file cannot be used; the message names the file and line, never a
    password."""


@dataclass(frozen=True, slots=True)
class Account:
    role: Role
    username: str
    password: str = field(default="", repr=False)
    site_id: str = ""
    device_id: str = ""


def read_credentials(path: Path, missing_ok: bool = False) -> list[Account]:
    """The rows of a credentials file ([] for a missing one when `missing_ok`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise CredentialsError(f"credentials file {path}: does not exist") from None
    except OSError as exc:
        raise CredentialsError(
            f"credentials file {path}: cannot be read ({exc.strerror})"
        ) from None
    return parse_credentials(text, f"credentials file {path}")


def parse_credentials(text: str, source: str) -> list[Account]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != HEADER:
        raise CredentialsError(f"{source}: first line must be {','.join(HEADER)}")
    accounts = []
    for number, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(HEADER) or row[0] not in ROLES or not row[1] or not row[2]:
            raise CredentialsError(
                f"{source} line {number}: expected {len(HEADER)} columns, role one of "
                f"{', '.join(ROLES)}, a username and a password"
            )
        accounts.append(Account(row[0], row[1], row[2], row[3], row[4]))
    return accounts


def render_credentials(accounts: list[Account]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for a in accounts:
        writer.writerow([a.role, a.username, a.password, a.site_id, a.device_id])
    return out.getvalue()


def find_account(accounts: list[Account], role: Role, username: str | None = None) -> Account:
    """The first row of `role` (named `username` when given), or `CredentialsError`."""
    for account in accounts:
        if account.role == role and (username is None or account.username == username):
            return account
    named = f" {username!r}" if username else ""
    raise CredentialsError(f"no {role} account{named} in the credentials file; run "
                           "`sanitel access init` again with the current registry and crews")
