"""`sanitel influx setup`: database, retention policies and users (SPEC sections 8 and 9).

Idempotent: run again, it changes only what differs from the configuration. Through the
InfluxQL `/query` API (1.x; 2.x and 3.x manage buckets and tokens their own way, see
`docs/retention.md`). With authentication on, it needs an admin
(`influx.admin_username` / `SANITEL_INFLUX__ADMIN_PASSWORD`); on an influxd that has no
user yet, it creates that admin first (the one statement InfluxDB then accepts).

Users: `sanitel-ingest` may only write (ingest's own), `sanitel-grafana` may only read
(Grafana's datasource, and the rollup task's reads). A password not given in the
environment is generated once and kept in `<data_dir>/influx-users.csv` (mode 0600).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from ingest.influxql_client import Credentials, InfluxQL, InfluxRightsMissing, rows
from ingest.settings import Settings

log = logging.getLogger("sanitel.influx")

RAW_RP = "raw"
ROLLUP_RP = "rollup"
WRITER_USER = "sanitel-ingest"
READER_USER = "sanitel-grafana"
USERS_FILE = "influx-users.csv"


class InfluxSetupError(Exception):
    """The setup cannot be done; the message says what to change."""


@dataclass
class SetupReport:
    """What the setup did, one line per object, for the operator (no secret in it)."""

    actions: list[str] = field(default_factory=list)
    users_file: Path | None = None

    def note(self, text: str) -> None:
        self.actions.append(text)
        log.info("influx setup: %s", text)


def quote(name: str) -> str:
    """An InfluxQL identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def admin_credentials(settings: Settings) -> Credentials:
    influx = settings.influx
    if influx.admin_username and influx.admin_password is not None:
        return Credentials(influx.admin_username, influx.admin_password)
    return Credentials(influx.username, influx.password, influx.token)


def setup(settings: Settings) -> SetupReport:
    """Apply sections 8 and 9 to the configured InfluxDB; raises `InfluxRightsMissing`
    when our credentials may not, `InfluxUnreachable` when it does not answer."""
    report = SetupReport()
    auth_on = _authentication_on(settings)
    client = InfluxQL(settings.influx.url, admin_credentials(settings), settings.influx.timeout_s)
    try:
        if auth_on and settings.influx.admin_username:
            _bootstrap_admin(settings, report)
        _database(client, settings, report)
        _retention_policies(client, settings, report)
        if auth_on and settings.influx.admin_username:
            _users(client, settings, report)
        elif auth_on:
            report.note("users left as they are: set influx.admin_username (and "
                        "SANITEL_INFLUX__ADMIN_PASSWORD) for the write-only and read-only users")
    finally:
        client.close()
    return report


def _authentication_on(settings: Settings) -> bool:
    anonymous = InfluxQL(settings.influx.url, Credentials(), settings.influx.timeout_s)
    try:
        anonymous.run("SHOW DATABASES")
    except InfluxRightsMissing:
        return True
    finally:
        anonymous.close()
    return False


def _bootstrap_admin(settings: Settings, report: SetupReport) -> None:
    """On an influxd with authentication on and no user at all, create the admin."""
    influx = settings.influx
    if influx.admin_password is None or not influx.admin_username:
        return
    anonymous = InfluxQL(influx.url, Credentials(), influx.timeout_s)
    try:
        anonymous.run(f"CREATE USER {quote(influx.admin_username)} WITH PASSWORD "
                      f"{_literal(influx.admin_password.get_secret_value())} "
                      "WITH ALL PRIVILEGES")
        report.note(f"created admin user {influx.admin_username} (InfluxDB had no user)")
    except InfluxRightsMissing:
        pass  # users exist already: the admin's credentials are checked by what follows
    finally:
        anonymous.close()


def _database(client: InfluxQL, settings: Settings, report: SetupReport) -> None:
    database = settings.influx.database
    names = {row["name"] for row in rows(client.run("SHOW DATABASES")[0])}
    if database in names:
        report.note(f"database {database} exists")
        return
    client.run(f"CREATE DATABASE {quote(database)}")
    report.note(f"created database {database}")


def _retention_policies(client: InfluxQL, settings: Settings, report: SetupReport) -> None:
    database, retention = settings.influx.database, settings.retention
    existing = {row["name"]: row for row in
                rows(client.run(f"SHOW RETENTION POLICIES ON {quote(database)}")[0])}
    for name, days, default in ((RAW_RP, retention.raw_days, True),
                                (ROLLUP_RP, retention.rollup_days, False)):
        wanted = f"{days * 24}h0m0s"
        row = existing.get(name)
        target = f"RETENTION POLICY {quote(name)} ON {quote(database)} DURATION {days}d"
        suffix = " DEFAULT" if default else ""
        if row is None:
            client.run(f"CREATE {target} REPLICATION 1{suffix}")
            report.note(f"created retention policy {name}: {days} days"
                        + (", the default" if default else ""))
        elif row["duration"] != wanted or (bool(row["default"]) != default and default):
            client.run(f"ALTER {target}{suffix}")
            report.note(f"changed retention policy {name} to {days} days"
                        + (", the default" if default else ""))
        else:
            report.note(f"retention policy {name} is {days} days"
                        + (", the default" if default else ""))


@dataclass(frozen=True)
class InfluxUser:
    role: str  # writer | reader
    username: str
    password: SecretStr
    generated: bool


def planned_users(settings: Settings) -> list[InfluxUser]:
    """The writer and the reader, with their passwords: from the environment, else kept in
    the users file, else new."""
    influx = settings.influx
    kept = read_users_file(settings.data_dir / USERS_FILE)
    wanted = [("writer", influx.username, influx.password, WRITER_USER),
              ("reader", influx.read_username, influx.read_password, READER_USER)]
    users = []
    for role, name, password, default_name in wanted:
        if name == influx.admin_username:
            name = None  # the admin itself is never narrowed down to one right
        username = name or default_name
        if password is not None and name:
            users.append(InfluxUser(role, username, password, False))
        elif username in kept:
            users.append(InfluxUser(role, username, SecretStr(kept[username]), True))
        else:
            users.append(InfluxUser(role, username, SecretStr(secrets.token_urlsafe(18)), True))
    return users


def _users(client: InfluxQL, settings: Settings, report: SetupReport) -> None:
    database = quote(settings.influx.database)
    existing = {row["user"]: row for row in rows(client.run("SHOW USERS")[0])}
    users = planned_users(settings)
    for user in users:
        name, secret = quote(user.username), _literal(user.password.get_secret_value())
        if user.username in existing:
            client.run(f"SET PASSWORD FOR {name} = {secret}")
            if existing[user.username].get("admin"):
                client.run(f"REVOKE ALL PRIVILEGES FROM {name}")
        else:
            client.run(f"CREATE USER {name} WITH PASSWORD {secret}")
        right = "WRITE" if user.role == "writer" else "READ"
        client.run(f"REVOKE ALL ON {database} FROM {name}")
        client.run(f"GRANT {right} ON {database} TO {name}")
        report.note(f"user {user.username} may only {right.lower()} {settings.influx.database}")
    generated = [user for user in users if user.generated]
    if generated:
        report.users_file = write_users_file(settings.data_dir / USERS_FILE, generated)
        report.note(f"passwords of {', '.join(u.username for u in generated)} are in "
                    f"{report.users_file} (mode 0600)")


def read_users_file(path: Path) -> dict[str, str]:
    """username -> password from a users file; empty when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InfluxSetupError(f"users file {path}: cannot be read ({exc.strerror})") from None
    return {row["username"]: row["password"] for row in csv.DictReader(io.StringIO(text))
            if row.get("username") and row.get("password")}


def write_users_file(path: Path, users: list[InfluxUser]) -> Path:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["role", "username", "password"])
    for user in users:
        out.writerow([user.role, user.username, user.password.get_secret_value()])
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return path


def setup_at_start(settings: Settings) -> bool:
    """`sanitel ingest`'s start: the setup when our credentials may; said once when not.
    True when it was done."""
    from ingest.influxql_client import InfluxQueryError, InfluxUnreachable

    if settings.influx.api == "v2":
        return False  # buckets and tokens: `sanitel influx setup` (v2) by an operator
    try:
        setup(settings)
    except InfluxRightsMissing:
        log.info("influx setup skipped: our InfluxDB credentials may not create retention "
                 "policies; an admin runs `sanitel influx setup` (SPEC section 9)")
        return False
    except InfluxUnreachable as exc:
        log.warning("influx setup skipped: %s; run `sanitel influx setup` once it answers", exc)
        return False
    except (InfluxQueryError, InfluxSetupError) as exc:
        log.error("influx setup failed: %s", exc)
        return False
    return True
