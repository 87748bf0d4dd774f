"""systemd's notification protocol (sd_notify(3)): `READY=1`, `WATCHDOG=1`, `STOPPING=1`.

A datagram to the unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract
namespace). Without `NOTIFY_SOCKET` every call does nothing, so the same binary runs under
systemd, in a container or in a terminal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("sanitel.systemd")

#: Whether the last send failed: a failure is logged once, not at every watchdog ping.
_failing = False


def notify(state: str) -> bool:
    """Send `state` (e.g. `READY=1`); False when not under systemd or the send failed."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never wait on the event loop: a receiver that does not read would stall it.
            sock.setblocking(False)
            sock.connect(address)
            sock.send(state.encode())
    except OSError as exc:
        if not _failing:
            log.warning("cannot notify systemd at %s (%s): %s; said once until it works",
                        address.lstrip("\0"), exc, state)
        _set_failing(True)
        return False
    _set_failing(False)
    return True


def _set_failing(failing: bool) -> None:
    global _failing
    _failing = failing


def watchdog_interval_s() -> float | None:
    """Half of `WATCHDOG_USEC` when systemd asks this process for a watchdog, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.strip() != str(os.getpid())):
        return None
    try:
        interval = int(usec) / 1e6 / 2
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number of microseconds; no watchdog", usec)
        return None
    return interval if interval > 0 else None


async def keep_watchdog(interval_s: float) -> None:
    """Forever, from the event loop: a loop that stops turning stops the pings, and systemd
    restarts the service (`WatchdogSec=` with `Restart=on-failure`)."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval_s)
