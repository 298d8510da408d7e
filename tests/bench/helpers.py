"""Bench helper processes: they hold socket and fd populations on loopback, bounded in time.

python helpers.py listeners N | spread N BLOCK | established N | fdholders PROCS FDS |
                  busy 1 (LIFETIME seconds)
Each prints one JSON line {"pids": [...]} once ready, then waits until killed or until its
lifetime ends. fdholders forks PROCS-1 children that inherit FDS open files each; spread
binds N listeners on 127.BLOCK.x.1, ports 20000-39999 (beyond the ephemeral range's 28k);
busy keeps one core busy (a second core's load, as a build or a test run beside the tools).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys
import time


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 64)) if hard != resource.RLIM_INFINITY else need + 64
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _wait(lifetime: float) -> None:
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def main() -> None:
    kind, count = sys.argv[1], int(sys.argv[2])
    extra = int(sys.argv[3]) if len(sys.argv) > 3 and kind == "fdholders" else 0
    lifetime = float(sys.argv[-1]) if len(sys.argv) > (
        4 if kind in ("fdholders", "spread") else 3) else 600.0
    keep: list[object] = []
    pids = [os.getpid()]
    if kind == "listeners":
        _raise_fd_limit(count)
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            keep.append(s)
    elif kind == "spread":
        _raise_fd_limit(count)
        block = int(sys.argv[3])
        for i in range(count):
            s = socket.socket()
            s.bind((f"127.{block}.{1 + i // 20000}.1", 20000 + i % 20000))
            s.listen(1)
            keep.append(s)
    elif kind == "established":
        _raise_fd_limit(2 * count + 1)
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1024)
        keep.append(lsn)
        port = lsn.getsockname()[1]
        for _ in range(count):
            c = socket.create_connection(("127.0.0.1", port))
            a, _addr = lsn.accept()
            keep += [c, a]
    elif kind == "fdholders":
        _raise_fd_limit(extra)
        fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(extra)]
        keep.append(fds)
        children = []
        for _ in range(count - 1):
            child = os.fork()
            if child == 0:
                _wait(lifetime)
                os._exit(0)
            children.append(child)
        pids += children

        def stop(*_: object) -> None:
            for c in children:
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
    elif kind != "busy":
        raise SystemExit(f"unknown helper {kind!r}")
    sys.stdout.write(json.dumps({"pids": pids}) + "\n")
    sys.stdout.flush()
    if kind == "busy":
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline:
            for _ in range(100000):  # spin; look at the clock now and then
                pass
        return
    _wait(lifetime)


if __name__ == "__main__":
    main()
