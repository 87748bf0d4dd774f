"""The output folder of `sanitel access init`: read what a previous run wrote, write the new.

Secrets are written 0600 from the first byte (created with that mode, then renamed
into place), so no other user can read them even for a moment.
"""

from __future__ import annotations

import os
from pathlib import Path

CREDENTIALS = "credentials.csv"
PASSWD = "passwd"
ACL = "acl"
CONF = "mosquitto.conf"


class AccessFileError(ValueError):
    """A file of the access folder cannot be read or written; the message names it."""


def render_conf(out_dir: Path) -> str:
    root = out_dir.resolve()
    return (
        "# Written by `sanitel access init`: add these lines to the mosquitto listener's\n"
        "# configuration (or `include_dir` this folder). Reload with SIGHUP after a re-run.\n"
        "allow_anonymous false\n"
        "# The client id is the username: no account can take over another's session\n"
        "# (a device using the pipeline's client id would otherwise get its queued readings).\n"
        "use_username_as_clientid true\n"
        f"password_file {root / PASSWD}\n"
        f"acl_file {root / ACL}\n"
    )


def write_file(path: Path, text: str, mode: int) -> None:
    """Replace `path` atomically with `text`, created with `mode` from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widened
        os.replace(tmp, path)
    except OSError as exc:
        raise AccessFileError(f"{path}: cannot be written ({exc.strerror})") from None


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise AccessFileError(f"{path}: cannot be read ({exc.strerror})") from None
