"""One run of a pipeline at a time: an exclusive `flock` held for the whole run.

Two runs on the same output folder would both run every component, both push (racing the
"never push an identical model twice" check), and both read the no-regression baseline before
either was blessed. `RunLock` makes a second run wait, or exit at once, as its user chooses.

The lock is an `fcntl.flock` on a file beside the ML Metadata store: the kernel releases it when
the process that holds it exits, however it ends (even SIGKILL), so a leftover lock file never
blocks. That is also what makes `pipeline.interrupted_runs` sound: once a run holds the lock, any
execution still RUNNING in the store belongs to a run that died.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

__all__ = ["EXIT_LOCKED", "RunLock"]

EXIT_LOCKED = 75
"""EX_TEMPFAIL: another run holds the lock; try again later."""


class RunLock:
    """Exclusive `fcntl.flock` on `path`; released by the kernel when every process holding the
    open file (this one, and a child it was passed to) has exited."""

    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None

    def holder(self) -> str:
        """The process id the holder wrote into the file ("" if unknown)."""
        try:
            with open(self.path, encoding="utf-8") as file:
                return file.read().strip()
        except OSError:
            return ""

    def acquire(self, wait: bool = False, poll_seconds: float = 1.0) -> bool:
        """Takes the lock; with `wait`, blocks until it is free.

        Returns:
            Whether this process now holds the lock (always True with `wait`).
        """
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if not wait:
                    return False
                time.sleep(poll_seconds)
                continue
            # For people looking: who holds it (the lock itself is the flock, not this text).
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self.fd = fd
            return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
