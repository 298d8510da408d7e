"""Immutable snapshot types: sockets, processes and one sample of the machine.

All of them are NamedTuples: immutable, quick to create, and defined without the code
generation a frozen dataclass does at import (about 1 ms each, on every CLI start).
"""

# No `from __future__ import annotations`: a NamedTuple compiles each of its string
# annotations at import, which was ~2 ms of every command's start.

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal, NamedTuple

# psutil's names for TCP states; UDP sockets have the state "NONE".
State = Literal["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
                "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NONE"]
Proto = Literal["tcp", "udp"]
Family = Literal["ipv4", "ipv6"]
LISTEN: Final = "LISTEN"
TIME_WAIT: Final = "TIME_WAIT"
ESTABLISHED: Final = "ESTABLISHED"
NONE: Final = "NONE"
TCP_STATES: tuple[State, ...] = (
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
)
ALL_STATES: tuple[State, ...] = (*TCP_STATES, NONE)
_STATES: dict[str, State] = {s: s for s in ALL_STATES}


def as_state(name: str) -> State:
    """A state name from outside (psutil, /proc): one of ours, or CLOSE if unknown."""
    return _STATES.get(name, "CLOSE")

# Linux keeps a TIME_WAIT socket this long (2 x MSL); used for estimates elsewhere.
TIME_WAIT_SECONDS = 60.0

SocketKey = tuple[str, str, int, str, int, int]
"""(proto, local address, local port, remote address, remote port, discriminator)."""


class Socket(NamedTuple):
    """One socket as the kernel reports it, with every process holding it.

    A sample builds tens of thousands of these: a tuple is created about four times
    faster than a frozen dataclass.
    """

    proto: Proto
    family: Family
    laddr: str
    lport: int
    raddr: str | None
    rport: int | None
    state: State  # psutil's names; "NONE" for UDP
    inode: int = 0  # 0 when unknown (always for TIME_WAIT)
    uid: int | None = None  # the socket's owner uid, when the kernel says
    holders: tuple[int, ...] = ()  # every holder PID, sorted; () when unknown
    pid: int | None = None  # the main holder: the one whose parent holds nothing
    user: str | None = None  # the holder's user, else the socket owner uid's name
    # TIME_WAIT (and an orphaned FIN_WAIT2) only: when its timer runs out, on the clock of
    # time.monotonic(). A deadline, not a time left: an unchanged socket stays the same
    # object from one sample to the next, however its time runs down.
    ends: float | None = None
    time_left_exact: bool = False

    def time_left(self, now: float) -> float | None:
        """Seconds left at monotonic `now` for a socket on a timer (never negative)."""
        return left_until(self.ends, now)

    @property
    def key(self) -> SocketKey:
        """A key that stays the same for this socket across samples."""
        # Listening and UDP sockets can share an address (SO_REUSEPORT): the inode
        # tells them apart. Connections keep their key when their state changes.
        disc = self.inode if self.state in (LISTEN, NONE) else 0
        return (self.proto, self.laddr, self.lport, self.raddr or "", self.rport or 0, disc)

    @property
    def proto_label(self) -> str:
        """"tcp4", "tcp6", "udp4" or "udp6"."""
        return self.proto + ("6" if self.family == "ipv6" else "4")

    @property
    def is_listening(self) -> bool:
        """True for a TCP listener or a bound UDP socket: what holds a port."""
        return self.state == LISTEN or self.proto == "udp"


class ProcessInfo(NamedTuple):
    """What we know about one process; None where it could not be read."""

    pid: int
    ppid: int | None
    name: str
    create_time: float
    username: str | None = None
    exe: str | None = None
    cmdline: tuple[str, ...] | None = None
    status: str | None = None
    cwd: str | None = None
    rss: int | None = None
    cpu_percent: float | None = None
    unit: str | None = None  # systemd unit or container, from the cgroup, when known


# Who manages a holder: what started it and restarts it ---------------------------------

ManagerKind = Literal["reloader", "prefork", "script", "supervisord", "pm2", "loop", "orphan",
                      "docker", "systemd", "unknown"]
# "on failure": restarted after a crash or SIGKILL, not after a clean exit on SIGTERM
# (systemd's Restart=on-failure).
Restarts = Literal["always", "on file change", "on failure", "never", "unknown"]
# How `portside free` acts on a manager: signal its process (then the holders), ask
# supervisord over XML-RPC, run `pm2 stop`, stop the container through Docker's Engine
# API, run `systemctl stop`, or signal the holders alone.
StopVia = Literal["signal", "supervisord", "pm2", "docker", "systemd", "holders", "none"]


class Manager(NamedTuple):
    """What manages a holder of a socket, judged from what Linux shows (parent chain,
    command lines, environment markers, process groups)."""

    kind: ManagerKind
    name: str  # the program, app or script name ("" when unknown)
    pid: int | None  # the supervising process; None when none is alive (an orphan)
    command: str  # the supervising process's command line, as text
    restarts: Restarts  # what happens when the holder dies
    stop: str  # the command that frees the port for good, for a person to copy
    evidence: tuple[str, ...]  # what it was judged from
    caution: str | None = None  # why signalling the holder itself is wrong, if it is
    via: StopVia = "signal"
    target: str = ""  # supervisord's "group:name" or the pm2 app name
    url: str = ""  # supervisord's server URL (unix:// or http://)
    home: str = ""  # the pm2 daemon's PM2_HOME
    tool: str = ""  # the pm2 executable that started the app, when known
    # systemd: where systemctl runs ("" the machine's, "user:UID" a user's manager,
    # "ns:PID" inside the container whose systemd is PID, "ns:PID:user:UID" a user's in
    # it); docker: the API's socket path.
    scope: str = ""
    # Why SIGKILL to the holder must not be sent (its manager restarts it after one, where
    # SIGTERM would have stopped it for good), or None.
    no_kill: str | None = None

    def role(self, pid: int) -> str:
        """What a holder with this PID is, beside the others: "reloader", "master",
        "pm2 daemon"... for the supervising process, "serves" for the rest."""
        if pid != self.pid:
            return "serves"
        return {"reloader": "reloader", "prefork": "master", "pm2": "pm2 daemon",
                "supervisord": "supervisord", "script": "script", "loop": "loop",
                "docker": "dockerd", "systemd": "systemd"}.get(self.kind, self.kind)


SUDO_HINT = "run with sudo to see every process's sockets"
# Why the owner of a socket is unknown (Gaps.unknown_reason).
HIDDEN_AS_USER = f"held by other users' processes ({SUDO_HINT})"
HIDDEN_AS_ROOT = "held by processes whose open files cannot be read, even as root"
INVISIBLE = ("held by no process visible here: one in another PID namespace (a container), "
             "the kernel, or one that has just closed it")


class Gaps(NamedTuple):
    """What a sample could not see, and why."""

    is_root: bool = True
    unreadable_pids: int = 0  # processes whose open files we may not read
    unknown_owner: int = 0  # sockets whose owner is unknown (owner_unknown), in the sample
    notes: tuple[str, ...] = ()  # what went wrong reading the machine, and what was done
    unknown_reason: str = ""  # why those owners are unknown, as a note says it
    # Sockets whose holder was not found once (it may have exited mid-sample): looked up
    # again at the next sample, not counted as unknown meanwhile.
    pending: frozenset[int] = frozenset()
    inodes: bool = False  # the reader gives inodes: inode 0 is a socket no process holds


def owner_unknown(sock: Socket, gaps: Gaps) -> bool:
    """True for a socket some process holds that the sample could not name (TIME_WAIT and
    orphaned sockets belong to no process; a socket looked up again is not counted yet)."""
    if sock.holders or sock.state == TIME_WAIT:
        return False
    if gaps.inodes:
        return sock.inode != 0 and sock.inode not in gaps.pending
    return True


_NO_PROCESSES: Mapping[int, ProcessInfo] = MappingProxyType({})
_NO_COUNTS: Mapping[int, int] = MappingProxyType({})
_NO_MANAGERS: Mapping[int, Manager] = MappingProxyType({})
_NO_PORT_MANAGERS: Mapping[tuple[int, int], Manager] = MappingProxyType({})


class Snapshot(NamedTuple):
    """One sample: the sockets, their processes and what could not be seen."""

    taken_at: float  # wall clock, time.time()
    monotonic: float  # time.monotonic() at the same moment
    sockets: tuple[Socket, ...]
    processes: Mapping[int, ProcessInfo] = _NO_PROCESSES
    gaps: Gaps = Gaps()
    source: str = ""  # which reader produced it: "sock_diag", "procfs", "psutil"
    all_states: bool = False
    duration: float = 0.0  # seconds the sample took
    # TCP connections (not LISTEN, not TIME_WAIT) per local port, when counted: the number
    # of clients connected to a listener on that port.
    connections: Mapping[int, int] = _NO_COUNTS
    # Who manages each holder (holder PID -> Manager), when the sampler was asked to judge.
    managers: Mapping[int, Manager] = _NO_MANAGERS
    # A daemon holding ports for several containers or units (dockerd, systemd): who each
    # port is for, (holder PID, port) -> Manager; managers[pid] then names none of them.
    port_managers: Mapping[tuple[int, int], Manager] = _NO_PORT_MANAGERS

    def process(self, pid: int | None) -> ProcessInfo | None:
        """The process with this PID, if known."""
        return None if pid is None else self.processes.get(pid)

    def targets(self, pids: Iterable[int]) -> tuple["Target", ...]:
        """The listed processes with these PIDs, as action targets (unknown PIDs left out)."""
        return tuple(Target.from_info(info) for info in map(self.processes.get, pids)
                     if info is not None)

    def manager(self, sock: Socket) -> Manager | None:
        """Who manages this socket's main holder, if anyone does (or may)."""
        return None if sock.pid is None else self.manager_at(sock.pid, sock.lport)

    def manager_at(self, pid: int, port: int) -> Manager | None:
        """Who manages this holder, for this port (a daemon holds ports for several)."""
        if self.port_managers:
            found = self.port_managers.get((pid, port))
            if found is not None:
                return found
        return self.managers.get(pid)

    def managers_on(self, port: int, pids: Iterable[int]) -> dict[int, Manager]:
        """pid -> manager for these holders of a port."""
        return {p: m for p in pids if (m := self.manager_at(p, port)) is not None}

    def time_left(self, sock: Socket) -> float | None:
        """Seconds a socket on a timer had left when this sample was taken."""
        return sock.time_left(self.monotonic)


def left_until(ends: float | None, now: float) -> float | None:
    """Seconds from monotonic `now` to a deadline, never negative; None without one."""
    return None if ends is None else max(0.0, ends - now)


def make_processes(procs: Mapping[int, ProcessInfo]) -> Mapping[int, ProcessInfo]:
    """A read-only view of a PID -> process mapping, for a snapshot."""
    return MappingProxyType(dict(procs))


def listeners_on(snapshot: Snapshot, port: int) -> list[Socket]:
    """The sockets holding a port: TCP listeners and bound UDP sockets."""
    return [s for s in snapshot.sockets if s.lport == port and s.is_listening]


def holder_pids(socks: Iterable[Socket]) -> list[int]:
    """Every distinct holder PID of these sockets, sorted."""
    return sorted({p for s in socks for p in s.holders})


def main_pid(pids: tuple[int, ...], ppid_of: Mapping[int, int | None]) -> int | None:
    """The holder whose parent is not a holder too (the root of a forking server)."""
    if not pids:
        return None
    held = set(pids)
    roots = [p for p in pids if ppid_of.get(p) not in held]
    return min(roots) if roots else min(pids)


# Acting on processes -------------------------------------------------------------------

# Outcomes of one signal.
SignalOutcome = Literal["sent", "gone", "denied", "refused"]
SENT: Final = "sent"
GONE: Final = "gone"  # exited, or the PID now names another process: nothing was sent
DENIED: Final = "denied"  # the kernel refused (another user's process)
REFUSED: Final = "refused"  # we refused: PID 1, ourselves, an ancestor, a kernel thread
GONE_MESSAGE = "exited or PID reused"


class Target(NamedTuple):
    """A process as it was when the user chose it: (pid, create_time) is its identity."""

    pid: int
    create_time: float
    name: str = ""
    username: str | None = None
    cmdline: tuple[str, ...] | None = None

    @classmethod
    def from_info(cls, info: ProcessInfo) -> "Target":
        """The target for a process listed in a snapshot."""
        return cls(info.pid, info.create_time, info.name, info.username, info.cmdline)


class SignalResult(NamedTuple):
    """What happened when we tried to signal one target."""

    target: Target
    signal: int
    outcome: SignalOutcome
    message: str

    @property
    def ok(self) -> bool:
        """True when the signal was delivered."""
        return self.outcome == SENT


# The EADDRINUSE diagnosis ---------------------------------------------------------------


class BindResult(NamedTuple):
    """One real bind() attempt on a TCP socket (never listened on, closed at once)."""

    address: str
    reuseaddr: bool
    ok: bool
    error: str | None = None  # "EADDRINUSE", "EACCES", "unavailable", ...
    detail: str | None = None


# The states a connection passes through after its process closed it.
CLOSING_STATES: Final = ("FIN_WAIT1", "FIN_WAIT2", "CLOSING", "LAST_ACK")


def is_orphan(sock: Socket) -> bool:
    """A closing TCP connection that no process holds any more (the kernel finishes it)."""
    return (sock.proto == "tcp" and sock.state in CLOSING_STATES and not sock.holders
            and not sock.inode)


class Orphan(NamedTuple):
    """A connection on the port that no process holds (its process closed it or exited),
    and the local process holding the other end, if any."""

    sock: Socket
    peer: ProcessInfo | None  # holds the peer's end (in CLOSE_WAIT, typically)
    peer_state: str | None
    time_left: float | None = None  # its timer's seconds left at sample time, if on one


class PortClaim(NamedTuple):
    """A container Docker says publishes the port (whoever really holds it)."""

    container: str  # its name
    address: str  # the host address it publishes on ("0.0.0.0", "::", "127.0.0.1"...)
    proto: str  # "tcp" or "udp"


class Diagnosis(NamedTuple):
    """Everything `portside why PORT` says about one port."""

    port: int
    listeners: tuple[Socket, ...]  # TCP LISTEN sockets on the port
    udp: tuple[Socket, ...]  # UDP sockets bound to the port
    holders: tuple[ProcessInfo, ...]  # every known process holding a listener
    unknown_holders: int  # listeners whose holder cannot be seen
    time_wait: int  # TIME_WAIT sockets with this local port
    time_wait_last: float | None  # seconds until the last of them expires
    time_wait_exact: bool
    others: tuple[tuple[str, int], ...]  # other TCP states on the local port: (state, count)
    binds: tuple[BindResult, ...]
    can_bind: bool  # bind works without SO_REUSEADDR on every available address
    can_bind_reuse: bool  # ... with SO_REUSEADDR
    verdict: tuple[str, ...]
    is_root: bool
    orphans: tuple[Orphan, ...] = ()  # connections on the port that belong to no process
    fin_timeout: float | None = None  # net.ipv4.tcp_fin_timeout, seconds
    managers: Mapping[int, Manager] = _NO_MANAGERS  # who manages each holder
    # Containers Docker says publish the port, and why Docker could not be asked ("").
    claims: tuple[PortClaim, ...] = ()
    claims_error: str = ""
