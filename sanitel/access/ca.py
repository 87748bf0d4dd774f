"""Device certificates (X.509) for mosquitto's `use_identity_as_username`.

A small CA made with the `openssl` command: the CA, the broker's certificate for the
given host names, and one client certificate per device whose common name is the
device id, so that the ACL of `sanitel access init` applies to it unchanged. Keys are
written 0600; a re-run keeps the CA and every certificate it already issued.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sanitel.access.files import write_file

CA_DAYS = 3650
LEAF_DAYS = 825
#: EC P-256: small keys that constrained devices handle, and fast to make by the thousand.
KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class CertificateError(RuntimeError):
    """A certificate could not be made; the message names it and what openssl said."""


@dataclass
class Issued:
    added: list[str] = field(default_factory=list)
    kept: int = 0


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise CertificateError("openssl is not installed; install it with: "
                               "sudo apt-get install -y openssl")
    old = os.umask(0o077)  # keys are never readable by others, not even for a moment
    try:
        result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    finally:
        os.umask(old)
    if result.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.strip()[-400:]}")


def _ensure_ca(out: Path) -> None:
    if (out / "ca.crt").exists() and (out / "ca.key").exists():
        return
    _openssl("req", "-x509", *KEY_ARGS, "-keyout", str(out / "ca.key"),
             "-out", str(out / "ca.crt"), "-days", str(CA_DAYS),
             "-subj", "/CN=Sanitel device CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _issue(ca: Path, folder: Path, name: str, common_name: str, extensions: str) -> None:
    """`folder/name.key` (0600) and `folder/name.crt`, signed by the CA in `ca`."""
    key, csr, crt, ext_file = (folder / f"{name}{ext}" for ext in (".key", ".csr", ".crt", ".ext"))
    try:
        _openssl("req", "-new", *KEY_ARGS, "-keyout", str(key), "-out", str(csr),
                 "-subj", f"/CN={common_name}")
        ext_file.write_text(extensions + "\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca / "ca.crt"),
                 "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-out", str(crt),
                 "-days", str(LEAF_DAYS), "-extfile", str(ext_file))
    finally:
        csr.unlink(missing_ok=True)
        ext_file.unlink(missing_ok=True)


def _san(hosts: Iterable[str]) -> str:
    names = []
    for host in hosts:
        try:
            names.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def tls_conf(out: Path, port: int) -> str:
    root = out.resolve()
    return (
        "# Written by `sanitel access ca`: a TLS listener where each device authenticates with\n"
        "# its certificate (CN = device id = username; the ACL of `access init` applies).\n"
        f"listener {port}\n"
        f"cafile {root / 'ca.crt'}\n"
        f"certfile {root / 'server.crt'}\n"
        f"keyfile {root / 'server.key'}\n"
        "require_certificate true\n"
        "use_identity_as_username true\n"
    )


def make_certificates(
    out: Path, device_ids: Iterable[str], hosts: list[str], port: int = 8883,
    renew: Iterable[str] = (),
) -> Issued:
    """The CA, the broker's certificate for `hosts`, one certificate per device."""
    devices = out / "devices"
    for folder in (out, devices):
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
    _ensure_ca(out)
    if not (out / "server.crt").exists():
        _issue(out, out, "server", hosts[0], f"subjectAltName={_san(hosts)}\n"
               "extendedKeyUsage=serverAuth")
    issued, again, wanted = Issued(), set(renew), list(device_ids)
    unknown = sorted(again - set(wanted))
    if unknown:
        raise CertificateError(f"--renew {unknown[0]}: no such device in the registry")
    for device_id in wanted:
        if (devices / f"{device_id}.crt").exists() and device_id not in again:
            issued.kept += 1
            continue
        _issue(out, devices, device_id, device_id, "extendedKeyUsage=clientAuth")
        issued.added.append(device_id)
    write_file(out / "mosquitto-tls.conf", tls_conf(out, port), 0o644)
    return issued
