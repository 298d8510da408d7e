"""pidfds captured when a holder is first listed: every signal goes to the listed process.

A PID and a start time (10 ms resolution) do not name a process: a PID reused within one
clock tick has the same pair. A pidfd opened while the process is listed names it for
good: if it exits, signals through the fd fail (ESRCH) instead of reaching a newcomer.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable

Identity = tuple[int, float]  # (pid, create_time) as the snapshot lists it

# How long a pidfd is kept after its process stops being listed (a dialog may still be
# open on it); a process that exits has its pidfd closed at the next sample.
KEEP_UNLISTED = 300.0


def supported() -> bool:
    """True where pidfds exist (Linux 5.3+ with Python 3.9+)."""
    return hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")


class PidfdRegistry:
    """pidfds by (pid, create_time), shared by every sampler of this process."""

    def __init__(self) -> None:
        self._fds: dict[Identity, int] = {}
        self._seen: dict[Identity, float] = {}  # monotonic time last listed
        self._lock = threading.Lock()
        self.enabled = supported()

    def capture(self, ident: Identity, verify: Callable[[], bool]) -> bool:
        """Open a pidfd for a listed process unless one is kept; verify() is asked right
        after opening (does this PID still hold what it was listed with?). False when
        no pidfd names it."""
        if not self.enabled:
            return False
        with self._lock:
            self._seen[ident] = time.monotonic()
            if ident in self._fds:
                return True
        fd = self.open(ident[0])
        if fd is None:
            return False
        if not verify():
            os.close(fd)  # the PID changed hands before the fd was opened
            return False
        self.adopt(ident, fd)
        return True

    def open(self, pid: int) -> int | None:
        """A new pidfd for whatever process has this PID now (None: none, or no pidfds)."""
        if not self.enabled:
            return None
        try:
            return os.pidfd_open(pid)
        except OSError:
            return None

    def adopt(self, ident: Identity, fd: int) -> None:
        """Keep a pidfd opened before the identity was read (so it names that process or
        one that has exited since)."""
        with self._lock:
            self._seen[ident] = time.monotonic()
            if ident in self._fds:  # another sampler got there first
                os.close(fd)
            else:
                self._fds[ident] = fd

    def listed(self, idents: Iterable[Identity]) -> None:
        """These are listed now: keep theirs; close the pidfds of exited processes and of
        those unlisted for KEEP_UNLISTED seconds."""
        now = time.monotonic()
        with self._lock:
            for ident in idents:
                if ident in self._fds:
                    self._seen[ident] = now
            fds = dict(self._fds)
        exited = _exited(fds.values())
        with self._lock:
            for ident, fd in fds.items():
                if fd in exited or now - self._seen.get(ident, 0.0) > KEEP_UNLISTED:
                    self._close(ident)

    def fd(self, ident: Identity) -> int | None:
        """The kept pidfd for this identity, if any."""
        with self._lock:
            return self._fds.get(ident)

    def send(self, ident: Identity, sig: int) -> bool | None:
        """Signal through the kept pidfd: True sent, None when no pidfd is kept.

        Raises ProcessLookupError when the process has exited, PermissionError when the
        kernel refuses. Holding the lock keeps the fd from being closed mid-send.
        """
        with self._lock:
            fd = self._fds.get(ident)
            if fd is None:
                return None
            signal.pidfd_send_signal(fd, sig)
            return True

    def _close(self, ident: Identity) -> None:
        fd = self._fds.pop(ident, None)
        self._seen.pop(ident, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        """Close every kept pidfd."""
        with self._lock:
            for ident in list(self._fds):
                self._close(ident)


def _exited(fds: Iterable[int]) -> set[int]:
    """The pidfds whose process has exited (a pidfd polls readable then): one syscall."""
    poller = select.poll()
    fds = list(fds)
    if not fds:
        return set()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    return {fd for fd, _ in poller.poll(0)}


REGISTRY = PidfdRegistry()
"""The process-wide registry: the dashboard's samplers and the CLI use this one."""
