"""The home folder's run lock: one `assurance` run writes a home at a time.

A run holds an exclusive `flock` on `$ASSURANCE_HOME/.assurance-run.lock` for its whole life.
The operating system drops it when the process dies, even with `kill -9`, so "the lock is
free" means "no `assurance` run is writing this home". A second run finds it taken and stops
at once with `HomeBusyError` (exit code 3) naming the holder. No Dagster here.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

LOCK_FILE_NAME = ".assurance-run.lock"

# Lock files held by this process, with their depth: `assurance demo` takes the lock before
# regenerating its landing zone and the run inside it takes it again.
_held: dict[Path, tuple[int, int]] = {}


class HomeBusyError(RuntimeError):
    """Another `assurance` run is writing the same home folder (exit code 3)."""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), or None where unknown.

    With the pid it names one process: a pid reused by a later process has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count from its closing ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` runs on this host (and, if `started` is given, is that same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if started is not None:
        current = process_start_time(pid)
        return current is None or current == started
    return True


@contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Hold the home folder's run lock, or raise `HomeBusyError` naming who holds it."""
    path = (Path(home) / LOCK_FILE_NAME).resolve()
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield
        finally:
            _held[path] = (fd, depth)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(path)
        os.close(fd)
        raise HomeBusyError(
            f"another `assurance` run is writing {Path(home)} ({holder}): wait for it to finish, then run again"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
    _held[path] = (fd, 1)
    try:
        yield
    finally:
        del _held[path]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _describe_holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "its holder is starting"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
