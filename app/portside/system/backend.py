"""The live Backend: this machine's sockets and processes, for the dashboard."""

from __future__ import annotations

import os
import socket
import threading

import psutil

from ..actions import Request
from ..backend import Identity, PortHolders
from ..model import Diagnosis, SignalResult, Snapshot, Target
from . import control
from .memory import trimmer
from .pidfds import REGISTRY
from .probe import diagnose
from .procinfo import current_user
from .sampler import Sampler


def _identity() -> Identity:
    me = os.getpid()
    protected = {me, os.getppid()}
    try:
        protected.update(p.pid for p in psutil.Process(me).parents())
    except psutil.Error:
        pass
    geteuid = getattr(os, "geteuid", None)
    user = current_user()
    return Identity(hostname=socket.gethostname(), user=user,
                    is_root=geteuid is None or geteuid() == 0, pid=me,
                    protected=frozenset(protected), human=os.environ.get("SUDO_USER") or user)


class LiveBackend:
    """Backs the dashboard with the real machine. Each caller thread gets its own sampler."""

    def __init__(self) -> None:
        self.identity = _identity()
        # Both capture a pidfd per listed holder: whatever a dialog targets came from one.
        self._sampler = Sampler(count_connections=True, ancestors=True, pidfds=REGISTRY,
                                managers=True)
        self._control = Sampler(pidfds=REGISTRY, managers=True)
        self._control_lock = threading.Lock()
        self._trim = trimmer()

    def sample(self, all_states: bool) -> Snapshot:
        """One snapshot; only the sampling worker calls this."""
        self._sampler.all_states = all_states
        return self._sampler.sample()

    def send_signal(self, target: Target, sig: int) -> SignalResult:
        """Identity-checked signal (pidfd on Linux)."""
        return control.send_signal(target, sig)

    def holders(self, port: int) -> PortHolders:
        """Who holds the port now, with identities read now."""
        with self._control_lock:
            snap = self._control.sample_port(port)
        return PortHolders.of(port, snap)

    def is_alive(self, target: Target) -> bool:
        """True while the target still runs."""
        return control.is_alive(target)

    def started_by(self, pid: int) -> str | None:
        """The parent of a process, as "PID 12 (sh)" (None for init or unknown)."""
        return control.started_by(pid)

    def ask(self, request: Request) -> tuple[bool, str]:
        """supervisord over XML-RPC, `pm2 stop`, `docker stop` or `systemctl stop`."""
        from .freeing import ask

        return ask(request)

    def diagnose(self, port: int) -> Diagnosis:
        """The `portside why` diagnosis."""
        return diagnose(port, Sampler(all_states=True, managers=True, one_shot=True).sample())

    def release_memory(self) -> None:
        """The C library's free pages back to the system (glibc keeps them otherwise)."""
        self._trim()
