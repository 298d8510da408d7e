"""Safe process control: identity-checked signals, refusals, and freeing a port."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

from .. import policy
from ..actions import GRACE
from ..backend import PortHolders
from ..daemons import manager_refusal
from ..fmt import signal_name
from ..model import (
    DENIED,
    GONE,
    GONE_MESSAGE,
    REFUSED,
    SENT,
    SignalResult,
    Target,
)
from .pidfds import REGISTRY, PidfdRegistry
from .procinfo import read_or_none, stat_fields
from .sampler import Sampler

if TYPE_CHECKING:
    from .psapi import Psutil

_PS_ERRORS = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)
_READ_ERRORS = (*_PS_ERRORS, OSError)  # a detail that cannot be read is left out
PF_KTHREAD = 0x00200000
SUDO_SUGGESTION = "permission denied: it belongs to another user (try sudo)"

def _is_kernel_thread(pid: int, proc_root: str = "/proc") -> bool:
    fields = stat_fields(pid, proc_root) or []
    # Field 9 of stat is the flags word; it is the 7th after the name and state.
    return len(fields) > 6 and bool(int(fields[6]) & PF_KTHREAD)


def _ancestors(ps: Psutil = psutil) -> set[int]:
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


def refusal(pid: int, ps: Psutil = psutil) -> str | None:
    """Why this PID must never be signalled, or None: the dashboard's policy, checked
    against the machine as it is now (our parents now, and kernel threads)."""
    why = policy.refusal(pid, os.getpid(), _ancestors(ps) if pid > 1 else ())
    if why is not None:
        return why
    if _is_kernel_thread(pid):
        return f"PID {pid} is a kernel thread"
    try:
        proc = ps.Process(pid)
        return manager_refusal(pid, proc.name(), proc.cmdline())
    except _PS_ERRORS:
        return None  # gone, or not ours to read: the signal itself will say


def target_of(pid: int, ps: Psutil = psutil, pidfds: PidfdRegistry | None = REGISTRY
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
            user = read_or_none(proc.username, _READ_ERRORS)
            cmd = read_or_none(proc.cmdline, _READ_ERRORS)
    except _PS_ERRORS:
        if fd is not None:
            os.close(fd)
        return None
    if fd is not None and pidfds is not None:
        pidfds.adopt((pid, ctime), fd)
    return Target(pid, ctime, name, user, tuple(cmd) if cmd is not None else None)


def hidden(pid: int, proc_root: str = "/proc") -> str | None:
    """For a PID psutil cannot find: why it exists all the same but cannot be seen (a
    /proc mounted with hidepid), or None when there really is no such process."""
    try:
        os.kill(pid, 0)  # asks the kernel, not /proc: no signal is sent
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, and is another user's
    except OSError:
        return None
    if os.path.exists(f"{proc_root}/{pid}"):
        return None  # visible after all: it was just starting or is a thread
    option = _hidepid(proc_root)
    how = f"{proc_root} is mounted with hidepid={option}" if option else \
        f"{proc_root} does not show it to this user"
    return (f"PID {pid} exists but is hidden from this user ({how}): run as root to see "
            f"it (sudo portside kill {pid})")


def _hidepid(proc_root: str) -> str | None:
    """The hidepid= option of the proc mount at proc_root, if it has one."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):  # the last mount on a path is the one seen
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) > 4 and fields[4] == proc_root and right.startswith("proc "):
            for opt in right.split()[-1].split(","):
                if opt.startswith("hidepid="):
                    return opt.removeprefix("hidepid=")
            return None
    return None


def _live_threads(pid: int, proc_root: str = "/proc") -> bool:
    """True when a zombie thread-group leader still has running threads (its main thread
    called pthread_exit): the process is alive and may hold sockets."""
    try:
        return len(os.listdir(f"{proc_root}/{pid}/task")) > 1
    except OSError:
        return False


def _same_process(target: Target, ps: Psutil) -> tuple[bool, bool]:
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


def is_alive(target: Target, ps: Psutil = psutil) -> bool:
    """True while the target still runs (a zombie has exited; a new PID owner is not it)."""
    return _same_process(target, ps)[0]


NOT_LISTED = "no pidfd was captured when it was listed: nothing sent (list it again)"


def send_signal(target: Target, sig: int, ps: Psutil = psutil,
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


def targets_of(holders: PortHolders, ps: Psutil = psutil
               ) -> tuple[list[Target], list[tuple[int, str]]]:
    """A port's holders split into those that may be signalled and (pid, why) refusals."""
    return allowed(holders.targets, ps)


def allowed(candidates: Iterable[Target], ps: Psutil = psutil
            ) -> tuple[list[Target], list[tuple[int, str]]]:
    """Processes split into those that may be signalled and (pid, why) refusals, asked of
    the machine as it is now."""
    targets: list[Target] = []
    refused: list[tuple[int, str]] = []
    for t in candidates:
        why = refusal(t.pid, ps)
        if why is None:
            targets.append(t)
        else:
            refused.append((t.pid, why))
    return targets, refused


@dataclass(slots=True)
class StopResult:
    """How stopping ended: what was sent, which ports are still held, who still runs."""

    ok: bool = False
    results: list[SignalResult] = field(default_factory=list)
    killed: list[SignalResult] = field(default_factory=list)  # the SIGKILLs of --force
    # Targets --force did not SIGKILL, and why (their manager restarts them after one).
    spared: list[tuple[Target, str]] = field(default_factory=list)
    ports: dict[int, PortHolders] = field(default_factory=dict)  # as last read
    alive: list[Target] = field(default_factory=list)  # awaited targets still running
    interrupted: bool = False  # Ctrl-C: what was sent (above) stays sent
    # Ports seen free, then listened on again within the settle time: who took them, and
    # how long after they were first seen free.
    retaken: dict[int, tuple[PortHolders, float]] = field(default_factory=dict)


def port_holders(port: int, sampler: Sampler) -> PortHolders:
    """Who holds the port, read from the kernel now (that port only)."""
    return PortHolders.of(port, sampler.sample_port(port))


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


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Ctrl-C waits until the block is done: between sending a signal and recording it,
    an interrupt would lose the record (and `kill` would say nothing was sent)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are handled on the main thread only
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def settled(ports: Iterable[int], settle: float, sampler: Sampler, poll: float = 0.1
            ) -> dict[int, tuple[PortHolders, float]]:
    """Keep reading ports just seen free for `settle` seconds; the ones taken again
    meanwhile, with who took them and how many seconds after."""
    ports = list(ports)
    start = time.monotonic()
    retaken: dict[int, tuple[PortHolders, float]] = {}
    while ports:
        for port in ports:
            held = port_holders(port, sampler)
            if not held.free:
                retaken[port] = (held, time.monotonic() - start)
        ports = [p for p in ports if p not in retaken]
        left = settle - (time.monotonic() - start)
        if left <= 0:
            break
        time.sleep(min(poll, left))
    return retaken


def started_by(pid: int, ps: Psutil = psutil) -> str | None:
    """Who started this process, as "PID 12 (sh)": the likely restarter of a newcomer on a
    freed port (None when its parent is init or unknown)."""
    try:
        ppid = ps.Process(pid).ppid()
        if ppid <= 1:
            return None
        return f"PID {ppid} ({ps.Process(ppid).name()})"
    except _PS_ERRORS:
        return None


def stop(
    targets: Iterable[Target],
    sig: int = signal.SIGTERM,
    grace: float = GRACE,
    force: bool = False,
    ports: Iterable[int] = (),
    awaited: Iterable[Target] = (),
    sampler: Sampler | None = None,
    tick: Callable[[float], None] | None = None,
    ps: Psutil = psutil,
    settle: float = 0.0,
    sent: Iterable[Target] = (),
    spare: Mapping[int, str] | None = None,
) -> StopResult:
    """Signal the targets; wait until every port is free and every awaited target exited,
    then that the ports stay free for `settle` seconds.

    SIGKILL goes only with `force`, and only to the targets still holding a port or still
    awaited: a process that starts listening meanwhile (a supervisor restarting the server)
    is reported, never signalled. `sent`: targets already sent `sig` by the caller (the
    restarter of a holder), awaited too and SIGKILLed alike. `spare`: PIDs never to
    SIGKILL, with why (a manager restarts them after SIGKILL, not after SIGTERM).
    """
    sent = list(sent)
    targets = list(targets)
    ports = list(ports)
    awaited = [*awaited, *sent]
    sampler = sampler or Sampler()
    result = StopResult()

    def done() -> bool:
        for port in ports:
            result.ports[port] = port_holders(port, sampler)
        result.alive = [t for t in awaited if is_alive(t, ps)]
        return all(h.free for h in result.ports.values()) and not result.alive

    try:
        for t in targets:
            with deferred_interrupt():  # a signal sent is always on record
                result.results.append(send_signal(t, sig, ps))
        result.ok = wait_until(done, grace, tick=tick)
        if not result.ok and force and sig != signal.SIGKILL:
            holding = {p for h in result.ports.values() for p in h.pids}
            remaining = [t for t in [*sent, *targets]
                         if (t.pid in holding or t in result.alive) and is_alive(t, ps)]
            for t in remaining:
                if spare and t.pid in spare:
                    result.spared.append((t, spare[t.pid]))
                    continue
                with deferred_interrupt():
                    result.killed.append(send_signal(t, signal.SIGKILL, ps))
            result.ok = wait_until(done, 2.0, tick=tick)
        if result.ok and ports and settle > 0:
            # "Freed" means staying free: a restarter may take the port again at once.
            result.retaken = settled(ports, settle, sampler)
            for port, (held, _) in result.retaken.items():
                result.ports[port] = held
            result.ok = not result.retaken
    except KeyboardInterrupt:
        result.ok, result.interrupted = False, True
    return result
