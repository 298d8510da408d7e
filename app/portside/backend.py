"""What the dashboard needs from the machine, as an interface: the UI never calls psutil.

The CLI hands the app a live implementation (portside.system.backend); tests and
screenshots hand it made-up data (portside.demo).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .model import (
    Diagnosis,
    Manager,
    SignalResult,
    Snapshot,
    Socket,
    Target,
    holder_pids,
    listeners_on,
)

if TYPE_CHECKING:
    from .actions import Request


class PortHolders(NamedTuple):
    """Who holds a port right now (listening TCP or bound UDP sockets).

    A NamedTuple, as the model's types are: the one-shot commands import this, and a
    dataclass would pull in the dataclasses module (~8 ms of every `portside list`).
    """

    port: int
    free: bool
    targets: tuple[Target, ...]  # the live holders, identities read now
    unknown: int  # sockets on the port whose holder cannot be seen
    sockets: tuple[Socket, ...] = ()  # the listening sockets on the port, with their holders
    managers: Mapping[int, Manager] = MappingProxyType({})  # who manages which holder

    @property
    def pids(self) -> tuple[int, ...]:
        """Every holder's PID, sorted (sockets whose holder cannot be seen add none)."""
        return tuple(holder_pids(self.sockets))

    @classmethod
    def of(cls, port: int, snap: Snapshot) -> PortHolders:
        """Who holds the port in this snapshot."""
        socks = listeners_on(snap, port)
        pids = holder_pids(socks)
        return cls(port, not socks, snap.targets(pids),
                   sum(1 for s in socks if not s.holders), tuple(socks),
                   MappingProxyType(snap.managers_on(port, pids)) if snap.managers
                   else snap.managers)


class Identity(NamedTuple):
    """Who and where we are, for the header and the safety checks."""

    hostname: str
    user: str
    is_root: bool
    pid: int
    protected: frozenset[int]  # our own PID and our ancestors: never signalled
    human: str = ""  # the person at the keyboard: $SUDO_USER under sudo, else user

    @property
    def operator(self) -> str:
        """Whose processes count as "your own" (typing the PID is asked for the others)."""
        return self.human or self.user


class Backend(Protocol):
    """The machine, as the dashboard sees it. Every method may block: call from workers."""

    identity: Identity

    def sample(self, all_states: bool) -> Snapshot:
        """One snapshot (connections counted, parent chains included)."""

    def send_signal(self, target: Target, sig: int) -> SignalResult:
        """Signal the target if it is still the same process."""

    def holders(self, port: int) -> PortHolders:
        """Read who holds the port now."""

    def is_alive(self, target: Target) -> bool:
        """True while the target process still runs."""

    def started_by(self, pid: int) -> str | None:
        """Who started this process ("PID 12 (sh)"), when that is not init."""

    def ask(self, request: Request) -> tuple[bool, str]:
        """Ask a manager (supervisord, pm2) to stop its program: (done, what it said)."""

    def diagnose(self, port: int) -> Diagnosis:
        """The EADDRINUSE diagnosis for a port (probes bind() for real)."""

    def release_memory(self) -> None:
        """Give back to the system what the last sample freed (after it was taken in)."""
