"""`sanitel access init --out DIR`: broker accounts and ACLs (SPEC section 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devices.credentials import CredentialsError
from devices.crews import Crews, CrewsError
from devices.sites import Registry, RegistryError
from sanitel.access.accounts import AccountError
from sanitel.access.build import init_access
from sanitel.access.files import AccessFileError
from sanitel.cli_support import ConfigOption, fail, load_settings

app = typer.Typer(help="Broker accounts and ACLs for mosquitto 2.x.", no_args_is_help=True)
COMMAND = "sanitel access"


@app.command("init")
def init(
    out: Annotated[Path, typer.Option("--out", help="Folder for mosquitto.conf, passwd, acl, "
                                      "credentials.csv (created 0700 when missing).")],
    registry: Annotated[Path | None, typer.Option(
        help="Registry YAML [default: the configuration's `registry`].")] = None,
    crews: Annotated[Path | None, typer.Option(
        help="Crews YAML, a list of {name, districts} [default: the configuration's `crews`, "
        "config/crews.yaml].")] = None,
    gateways: Annotated[bool | None, typer.Option(
        "--gateways/--no-gateways", help="One account per site, <site_id>-gw, for a site "
        "gateway [default: as the previous run in --out; none on the first].")] = None,
    rotate: Annotated[list[str] | None, typer.Option(
        help="Give this account a new password (repeatable).", metavar="USERNAME")] = None,
    ingest_instances: Annotated[int | None, typer.Option(
        min=1, help="Pipeline accounts: sanitel-ingest, sanitel-ingest-2, ... one per `sanitel "
        "ingest` process (the broker makes the username the client id) [default: as the "
        "previous run; 1 on the first].")] = None,
    device_patterns: Annotated[bool, typer.Option(
        "--device-patterns", help="Devices by three `pattern` lines (%u = device id) instead "
        "of a block each: for fleets of thousands, whose ACL mosquitto loads slowly; see "
        "docs/access-control.md.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write the broker's accounts and ACLs for every device, the pipeline and the crews.

    Run it as the broker's user. A re-run keeps existing passwords, adds new accounts and
    removes gone ones; send mosquitto SIGHUP to apply. Passwords go only to
    credentials.csv (0600), never to the terminal.
    """
    settings = load_settings(config, COMMAND)
    try:
        city = Registry.load(registry or settings.registry)
        teams = Crews.load(crews or settings.crews)
        plan = init_access(out, city, teams, gateways=gateways, rotate=rotate,
                           ingest_instances=ingest_instances, device_patterns=device_patterns)
    except (RegistryError, CrewsError, CredentialsError, AccountError, AccessFileError) as exc:
        fail(str(exc), 2, COMMAND)
    roles: dict[str, int] = {}
    for account in plan.accounts:
        roles[account.role] = roles.get(account.role, 0) + 1
    counts = ", ".join(f"{n} {role}" for role, n in roles.items())
    typer.echo(f"{len(plan.accounts)} accounts ({counts}) in {out.resolve()}")
    for what, names in (("added", plan.added), ("removed", plan.removed),
                        ("new password", plan.rotated)):
        if names:
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10
                                              else "")
            typer.echo(f"  {what}: {shown}")
    typer.echo(f"passwords: {(out / 'credentials.csv').resolve()} (mode 0600; keep it secret)")
    typer.echo(f"broker: add {(out / 'mosquitto.conf').resolve()}'s lines to its listener, "
               "then reload it: kill -HUP <mosquitto pid>")


@app.command("ca")
def ca(
    out: Annotated[Path, typer.Option("--out", help="Folder for the CA, the broker's and the "
                                      "devices' certificates (keys 0600).")],
    host: Annotated[list[str] | None, typer.Option(
        help="Broker host name or IP for its certificate (repeatable) [default: localhost, "
        "127.0.0.1].")] = None,
    port: Annotated[int, typer.Option(help="TLS listener port in mosquitto-tls.conf.")] = 8883,
    registry: Annotated[Path | None, typer.Option(
        help="Registry YAML [default: the configuration's `registry`].")] = None,
    renew: Annotated[list[str] | None, typer.Option(
        help="Issue this device's certificate again (repeatable).", metavar="DEVICE_ID")] = None,
    config: ConfigOption = None,
) -> None:
    """A CA and one client certificate per device (common name = device id), for
    mosquitto's `use_identity_as_username`: devices then log in by certificate, under the
    same ACL as `access init`. Needs the openssl command."""
    from sanitel.access.ca import CertificateError, make_certificates

    settings = load_settings(config, COMMAND)
    try:
        city = Registry.load(registry or settings.registry)
        issued = make_certificates(out, city.devices, host or ["localhost", "127.0.0.1"], port,
                                   renew or [])
    except (RegistryError, CertificateError, AccessFileError) as exc:
        fail(str(exc), 2, COMMAND)
    typer.echo(f"{len(issued.added)} device certificates issued, {issued.kept} kept, in "
               f"{(out / 'devices').resolve()}; CA {(out / 'ca.crt').resolve()}")
    typer.echo(f"broker: add {(out / 'mosquitto-tls.conf').resolve()}'s lines (a TLS listener "
               "that takes the certificate's CN as the username) beside `access init`'s acl_file")
