"""Who owns a home: one `serve` at a time, and one `run` at a time per pipeline, never both at once.

Two `serve`s on one home would both drive the same pipelines (two owners of one stream, two sets of rounds);
a `run` beside a `serve` on the same home would too. An advisory `flock` on `<home>/owner.lock` decides: `serve`
takes it exclusively, each `run` shares it and takes `<home>/run-<pipeline>.lock` exclusively. The holder
writes who it is into the file, so the refusal names the other process. Read-only commands take no lock. The
kernel drops a lock when its process dies, so a SIGKILLed owner never leaves a stale one.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from calmops_actors.errors import UserError

__all__ = ["HomeLock", "hold_for_run", "hold_for_serve", "owner_alive"]


class HomeLock:
    """An advisory lock on one file, held until `release` (or the process ends)."""

    def __init__(self, path: Path, shared: bool, command: str) -> None:
        self.path, self.shared, self.command = path, shared, command
        self.fd: int | None = None

    def acquire(self) -> HomeLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(f"{holder(self.path)} owns {self.path.parent}; stop it first, or use another "
                            "--home") from None
        os.ftruncate(fd, 0)  # a shared holder leaves it empty: "some `calmops run`"
        if not self.shared:
            os.write(fd, json.dumps({"pid": os.getpid(), "command": self.command,
                                     "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def holder(path: Path) -> str:
    """Who holds the lock, as the holder wrote it (a shared holder writes nothing: some `calmops run`)."""
    try:
        data = json.loads(path.read_text() or "{}")
        return f"another `calmops {data['command']}` (pid {data['pid']}, since {data['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a `calmops run`"


def hold_for_serve(home: Path) -> HomeLock:
    return HomeLock(home / "owner.lock", shared=False, command="serve").acquire()


def hold_for_run(home: Path, pipeline: str) -> list[HomeLock]:
    owner = HomeLock(home / "owner.lock", shared=True, command="run").acquire()
    try:
        return [owner, HomeLock(home / f"run-{pipeline}.lock", shared=False, command=f"run ({pipeline})").acquire()]
    except UserError:
        owner.release()
        raise


def owner_alive(home: Path, pipeline: str) -> bool:
    """Whether a `serve` of the home or a `run` of the pipeline is alive now, from the pid each holder wrote
    into its lock file (read only: no lock is taken, so it never gets in an owner's way). A lock file outlives
    its holder; a holder that died left a pid no process has."""
    for path in (home / "owner.lock", home / f"run-{pipeline}.lock"):
        try:
            pid = int(json.loads(path.read_text() or "{}")["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:  # alive, under another user
            return True
        return True
    return False
