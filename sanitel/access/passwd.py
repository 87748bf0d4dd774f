"""mosquitto's password file format, as `mosquitto_passwd` 2.x writes it.

`username:$7$101$<salt>$<hash>`: PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte random
salt, both base64 (standard alphabet, padded). mosquitto 2.0 reads this format; the
tests check our lines against the real broker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ITERATIONS = 101
SALT_BYTES = 12


class PasswordFormatError(ValueError):
    """A password file line is not in mosquitto's `$7$` format; the message names the user."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The `$7$...` hash of `password` (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, hashed: str) -> bool:
    """Whether `hashed` (a `$7$` hash) is the hash of `password`."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, expected = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
    return hmac.compare_digest(digest, expected)


def parse_passwd(text: str) -> dict[str, str]:
    """`username -> hash` of a password file (lines without a `:` are ignored)."""
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        username, colon, hashed = line.strip().partition(":")
        if colon and username and not username.startswith("#"):
            hashes[username] = hashed
    return hashes


def render_passwd(passwords: dict[str, str], previous: dict[str, str] | None = None) -> str:
    """The password file for `username -> password`; a previous hash that still matches
    is kept, so that a re-run without changes writes the same file."""
    previous = previous or {}
    lines = []
    for username, password in passwords.items():
        if ":" in username:
            raise PasswordFormatError(f"username {username!r}: mosquitto forbids ':' in it")
        old = previous.get(username)
        hashed = old if old is not None and verify(password, old) else hash_password(password)
        lines.append(f"{username}:{hashed}\n")
    return "".join(lines)
