"""Same-tick PID reuse trials, run in a small process of their own (forking the test
runner itself takes milliseconds, too long for a 10 ms tick). Prints a JSON summary."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

import psutil

from portside.model import Target
from portside.system import control
from portside.system.pidfds import PidfdRegistry
from portside.system.sampler import Sampler

TRIALS = 80  # bounded; most of them reuse the PID within the tick on this machine
NEEDED = 3


class Waiting:
    """A forked child blocked on a pipe: it exits when released or at the first signal.

    With `hold`, the child keeps that socket and the parent closes its copy, so the child
    is the socket's one holder.
    """

    def __init__(self, hold: socket.socket | None = None) -> None:
        r, self._w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(self._w)
            os.read(r, 1)
            os._exit(0)
        os.close(r)
        if hold is not None:
            hold.close()
        self.pid = pid

    def signalled(self) -> bool:
        """Release it and reap it: True when a signal had ended it first."""
        try:
            os.write(self._w, b"x")
        except BrokenPipeError:
            pass
        os.close(self._w)
        _, status = os.waitpid(self.pid, 0)
        return os.WIFSIGNALED(status)


def at_tick_start() -> None:
    """Return just after a start-time tick begins (start times are boot-clock ticks)."""
    tick = 1 / os.sysconf("SC_CLK_TCK")
    clock = time.clock_gettime
    first = clock(time.CLOCK_BOOTTIME) // tick
    while clock(time.CLOCK_BOOTTIME) // tick == first:  # at most one tick
        pass


def reuse_pid(pid: int) -> Waiting:
    """Fork a new child that gets `pid` (unless another process takes it first)."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
        fh.write(str(pid - 1))
    return Waiting()


def same_tick_trials(listed: Callable[[], tuple[Waiting, Target | None]],
                     registry: PidfdRegistry) -> dict[str, object]:
    """Run the trials: how many reused the PID within the tick, what each send did, and
    how many signals reached the process that reused the PID."""
    seen = hits = 0
    outcomes: list[str] = []
    for _ in range(TRIALS):
        at_tick_start()
        x, target = listed()
        assert not x.signalled()  # X exits and is reaped: its PID is free
        y = reuse_pid(x.pid)
        same = (target is not None and y.pid == x.pid
                and abs(psutil.Process(y.pid).create_time() - target.create_time) < 0.005)
        result = control.send_signal(target, signal.SIGTERM, pidfds=registry) \
            if same and target is not None else None
        hit = y.signalled()
        if same:
            seen += 1
            outcomes.append(result.outcome if result is not None else "none")
            hits += hit
        if seen >= NEEDED * 2:
            break
    return {"trials": TRIALS, "same_tick": seen, "outcomes": outcomes, "hits": hits}




def by_pid(registry: PidfdRegistry) -> Callable[[], tuple[Waiting, Target | None]]:
    """X is named by its PID, as `portside kill PID` does."""
    def listed() -> tuple[Waiting, Target | None]:
        x = Waiting()
        return x, control.target_of(x.pid, pidfds=registry)
    return listed


def by_listing(registry: PidfdRegistry) -> Callable[[], tuple[Waiting, Target | None]]:
    """X holds a listener and is listed by a warm sampler, as the dashboard lists it."""
    sampler = Sampler(pidfds=registry)
    sampler.sample()

    def listed() -> tuple[Waiting, Target | None]:
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen()
        port = lsn.getsockname()[1]
        x = Waiting(hold=lsn)
        snap = sampler.sample()
        sock = next(s for s in snap.sockets if s.lport == port and s.state == "LISTEN")
        info = snap.process(sock.pid)
        assert info is not None and sock.holders == (x.pid,)
        assert registry.fd((info.pid, info.create_time)) is not None  # captured when listed
        return x, Target.from_info(info)
    return listed


if __name__ == "__main__":
    reg = PidfdRegistry()
    assert reg.enabled, "pidfds are needed (Linux 5.3+)"
    how = {"pid": by_pid, "listing": by_listing}[sys.argv[1]]
    print(json.dumps(same_tick_trials(how(reg), reg)))
