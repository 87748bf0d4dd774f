"""The disk spool: batches of points that InfluxDB could not take yet (SPEC section 5).

One file per batch, named by a rising sequence number, so replay is in order. A batch
is written to a temporary file, fsynced, renamed into place and the directory fsynced
before `append` returns: once it returns, a kill -9 or a power cut cannot lose it.
The spool is bounded by bytes; `append` raises `SpoolFull` beyond the bound.
"""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".lp"


class SpoolFull(Exception):
    """The spool holds its maximum; stop acknowledging until it drains."""


class SpoolError(OSError):
    """The spool directory cannot be used."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"spool directory {directory}: {exc.strerror}") from None
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a write cut short by a crash; its messages were never acked
        self._files = sorted(directory.glob(f"*{SUFFIX}"))
        for path in self._files:
            if not path.stem.isdigit():
                raise SpoolError(
                    f"spool directory {directory} holds {path.name}, which is not a spooled "
                    "batch (those are named by a number); move it away"
                )
        self._sizes = {path: path.stat().st_size for path in self._files}
        self.bytes = sum(self._sizes.values())
        self._next = int(self._files[-1].stem) + 1 if self._files else 0

    @property
    def batches(self) -> int:
        return len(self._files)

    def __bool__(self) -> bool:
        return bool(self._files)

    def has_room(self, size: int) -> bool:
        return self.bytes + size <= self.max_bytes or not self._files

    def append(self, body: bytes) -> None:
        """Store a batch durably (blocking: call it off the event loop)."""
        if not self.has_room(len(body)):
            raise SpoolFull(
                f"spool {self.directory} holds {self.bytes} of {self.max_bytes} bytes"
            )
        path = self.directory / f"{self._next:020d}{SUFFIX}"
        self._next += 1
        self._write_durably(path, body)
        self._files.append(path)
        self._sizes[path] = len(body)
        self.bytes += len(body)

    def oldest(self) -> tuple[Path, bytes] | None:
        if not self._files:
            return None
        path = self._files[0]
        return path, path.read_bytes()

    def replace(self, path: Path, body: bytes) -> None:
        """Durably put `body` in place of the batch at `path`, keeping its place in line."""
        self._write_durably(path, body)
        self.bytes += len(body) - self._sizes[path]
        self._sizes[path] = len(body)

    def set_aside(self, path: Path) -> Path:
        """Move a batch that cannot be read out of line (renamed `*.unreadable`)."""
        aside = path.with_suffix(".unreadable")
        path.rename(aside)
        self._files.remove(path)
        self.bytes -= self._sizes.pop(path)
        return aside

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._files.remove(path)
        self.bytes -= self._sizes.pop(path)

    def _write_durably(self, path: Path, body: bytes) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.rename(path)
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
