"""Safe process control: identity-checked signals, refusals, and freeing a port."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..backend import socket_refusal as socket_refusal
from ..model import (
    DENIED,
    GONE,
    GONE_MESSAGE,
    REFUSED,
    SENT,
    SignalResult,
    Snapshot,
    Socket,
    Target,
    holder_pids,
    listeners_on,
)
from .pidfds import REGISTRY, PidfdRegistry
from .sampler import Sampler

_PS_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
PF_KTHREAD = 0x00200000
SUDO_SUGGESTION = "permission denied: it belongs to another user (try sudo)"

def signal_name(sig: int) -> str:
    """SIGTERM, SIGKILL, ..."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _is_kernel_thread(pid: int, proc_root: str = "/proc") -> bool:
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    fields = data[data.rfind(b")") + 2:].split()
    # Field 9 of stat is the flags word; it is the 7th after the name and state.
    return len(fields) > 6 and bool(int(fields[6]) & PF_KTHREAD)


def _ancestors(ps: Any = psutil) -> set[int]:
    pids: set[int] = set()
    try:
        for parent in ps.Process(os.getpid()).parents():
            pids.add(parent.pid)
    except _PS_ERRORS:
        pass
    pid = os.getppid()
    if pid:
        pids.add(pid)
    return pids


def refusal(pid: int, ps: Any = psutil) -> str | None:
    """Why this PID must never be signalled, or None when it may be."""
    if pid <= 0:
        return f"PID {pid} is not a process"
    if pid == 1:
        return "PID 1 is the init process: never signalled"
    if pid == os.getpid():
        return f"PID {pid} is portside itself"
    if pid in _ancestors(ps):
        return f"PID {pid} is one of portside's parents (your shell or terminal)"
    if _is_kernel_thread(pid):
        return f"PID {pid} is a kernel thread"
    return None


def target_of(pid: int, ps: Any = psutil, pidfds: PidfdRegistry | None = REGISTRY
              ) -> Target | None:
    """Capture a live process's identity now; None when there is no such process.

    The pidfd is opened before the identity is read, so it names this process, or one
    that has exited since (and then nothing can be sent through it).
    """
    fd = pidfds.open(pid) if pidfds is not None else None
    try:
        proc = ps.Process(pid)
        with proc.oneshot():
            ctime = proc.create_time()
            name = proc.name()
            user = _safe(proc.username)
            cmd = _safe(proc.cmdline)
    except _PS_ERRORS:
        if fd is not None:
            os.close(fd)
        return None
    if fd is not None and pidfds is not None:
        pidfds.adopt((pid, ctime), fd)
    return Target(pid, ctime, name, user, tuple(cmd) if cmd is not None else None)


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except _PS_ERRORS:
        return None


def _live_threads(pid: int, proc_root: str = "/proc") -> bool:
    """True when a zombie thread-group leader still has running threads (its main thread
    called pthread_exit): the process is alive and may hold sockets."""
    try:
        return len(os.listdir(f"{proc_root}/{pid}/task")) > 1
    except OSError:
        return False


def _same_process(target: Target, ps: Any) -> tuple[bool, bool]:
    """(still the same live process, stopped) read right now."""
    try:
        proc = ps.Process(target.pid)
        with proc.oneshot():
            ctime = proc.create_time()
            status = proc.status()
    except _PS_ERRORS:
        return False, False
    if abs(ctime - target.create_time) > 0.005:
        return False, False
    if status == psutil.STATUS_ZOMBIE and not _live_threads(target.pid):
        return False, False
    return True, status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


def is_alive(target: Target, ps: Any = psutil) -> bool:
    """True while the target still runs (a zombie has exited; a new PID owner is not it)."""
    return _same_process(target, ps)[0]


NOT_LISTED = "no pidfd was captured when it was listed: nothing sent (list it again)"


def send_signal(target: Target, sig: int, ps: Any = psutil,
                use_pidfd: bool | None = None,
                pidfds: PidfdRegistry | None = REGISTRY) -> SignalResult:
    """Signal the target only if it is still the same process; never raises.

    On Linux the signal goes through the pidfd captured when the target was listed (or
    named on the command line): a PID reused since, even within the same clock tick,
    cannot receive it. Elsewhere psutil re-checks the start time before sending.
    """
    name = signal_name(sig)
    why = refusal(target.pid, ps)
    if why is not None:
        return SignalResult(target, sig, REFUSED, why)
    if use_pidfd is None:
        use_pidfd = pidfds is not None and pidfds.enabled
    same, stopped = _same_process(target, ps)
    if not same:
        return SignalResult(target, sig, GONE, GONE_MESSAGE)
    ident = (target.pid, target.create_time)
    try:
        if use_pidfd and pidfds is not None:
            if pidfds.send(ident, sig) is None:
                return SignalResult(target, sig, GONE, NOT_LISTED)
            if sig == signal.SIGTERM and stopped:
                pidfds.send(ident, signal.SIGCONT)
        else:
            proc = ps.Process(target.pid)
            proc.send_signal(sig)  # psutil re-checks create_time before sending
            if sig == signal.SIGTERM and stopped:
                proc.send_signal(signal.SIGCONT)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return SignalResult(target, sig, GONE, GONE_MESSAGE)
    except (PermissionError, psutil.AccessDenied):
        return SignalResult(target, sig, DENIED, SUDO_SUGGESTION)
    except OSError as exc:
        return SignalResult(target, sig, DENIED, f"{name} failed: {exc.strerror or exc}")
    extra = " (and SIGCONT: it was stopped)" if sig == signal.SIGTERM and stopped else ""
    return SignalResult(target, sig, SENT, f"{name} sent{extra}")


# Freeing a port ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PortPlan:
    """Who holds a port, frozen when the user is asked to confirm."""

    port: int
    sockets: tuple[Socket, ...]
    targets: tuple[Target, ...]
    refused: tuple[tuple[int, str], ...] = ()  # (pid, why) never to be signalled
    unknown: int = 0  # listening sockets whose holder cannot be seen

    @property
    def empty(self) -> bool:
        """True when nothing holds the port."""
        return not self.sockets


def plan_port(port: int, snapshot: Snapshot, ps: Any = psutil) -> PortPlan:
    """Everything holding a port in this snapshot, split into targets and refusals."""
    socks = listeners_on(snapshot, port)
    targets: list[Target] = []
    refused: list[tuple[int, str]] = []
    for pid in holder_pids(socks):
        why = refusal(pid, ps)
        info = snapshot.process(pid)
        if why is not None:
            refused.append((pid, why))
        elif info is not None:
            targets.append(Target.from_info(info))
    unknown = sum(1 for s in socks if not s.pids)
    return PortPlan(port, tuple(socks), tuple(targets), tuple(refused), unknown)


@dataclass(slots=True)
class StopResult:
    """How stopping ended: what was sent, which ports are still held, who still runs."""

    ok: bool = False
    results: list[SignalResult] = field(default_factory=list)
    killed: list[SignalResult] = field(default_factory=list)  # the SIGKILLs of --force
    ports: dict[int, tuple[bool, list[int], int]] = field(default_factory=dict)
    alive: list[Target] = field(default_factory=list)  # awaited targets still running


def port_state(port: int, sampler: Sampler) -> tuple[bool, list[int], int]:
    """(free, holder PIDs, unknown-holder sockets) read from the kernel now."""
    socks = listeners_on(sampler.sample(), port)
    return not socks, holder_pids(socks), sum(1 for s in socks if not s.pids)


def wait_until(check: Callable[[], bool], timeout: float, poll: float = 0.1,
               tick: Callable[[float], None] | None = None) -> bool:
    """Poll check() until it is true or the timeout passes; tick(seconds left) each poll."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if check():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if tick is not None:
            tick(left)
        time.sleep(min(poll, left))


def signal_all(targets: Iterable[Target], sig: int, ps: Any = psutil) -> list[SignalResult]:
    """Signal each target (identity-checked)."""
    return [send_signal(t, sig, ps) for t in targets]


def stop(
    targets: Iterable[Target],
    sig: int = signal.SIGTERM,
    grace: float = 5.0,
    force: bool = False,
    ports: Iterable[int] = (),
    awaited: Iterable[Target] = (),
    sampler: Sampler | None = None,
    tick: Callable[[float], None] | None = None,
    ps: Any = psutil,
) -> StopResult:
    """Signal the targets; wait until every port is free and every awaited target exited.

    SIGKILL goes only with `force`, and only to the targets still holding a port or still
    awaited: a process that starts listening meanwhile (a supervisor restarting the server)
    is reported, never signalled.
    """
    targets = list(targets)
    ports = list(ports)
    awaited = list(awaited)
    sampler = sampler or Sampler()
    result = StopResult(results=signal_all(targets, sig, ps))

    def done() -> bool:
        for port in ports:
            result.ports[port] = port_state(port, sampler)
        result.alive = [t for t in awaited if is_alive(t, ps)]
        return all(state[0] for state in result.ports.values()) and not result.alive

    result.ok = wait_until(done, grace, tick=tick)
    if not result.ok and force and sig != signal.SIGKILL:
        holding = {p for state in result.ports.values() for p in state[1]}
        remaining = [t for t in targets if (t.pid in holding or t in result.alive)
                     and is_alive(t, ps)]
        result.killed = signal_all(remaining, signal.SIGKILL, ps)
        result.ok = wait_until(done, 2.0, tick=tick)
    return result
