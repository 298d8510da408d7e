"""A test listener: binds a loopback port, prints what it holds as JSON, then waits.

Options: --host ADDR, --port N, --udp, --fork (a child inherits the socket),
--ignore-term (survives SIGTERM), --report-term (survives it, printing "SIGTERM" on
stdout), --close-in-parent (the parent drops its copy after
forking, like a supervisor handing the socket to a worker), --name NAME (the process
calls itself NAME, as `exec -a NAME` plus prctl(PR_SET_NAME) would: hostile names for tests),
--zombie-leader (the main thread exits while another thread keeps the socket),
--connect HOST:PORT (a client instead: connects, keeps its end open, never reads).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--udp", action="store_true")
    p.add_argument("--fork", action="store_true")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--report-term", action="store_true")
    p.add_argument("--close-in-parent", action="store_true")
    p.add_argument("--lifetime", type=float, default=120.0)
    p.add_argument("--name")
    p.add_argument("--zombie-leader", action="store_true")
    p.add_argument("--connect")
    a = p.parse_args()
    if a.name is not None:
        _rename(a.name)
    if a.connect:
        host, _, port_text = a.connect.rpartition(":")
        conn = socket.create_connection((host, int(port_text)), timeout=10)
        sys.stdout.write(json.dumps({"port": conn.getsockname()[1], "pid": os.getpid(),
                                     "child": 0}) + "\n")
        sys.stdout.flush()
        _idle(a.lifetime)
        return
    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if a.report_term:
        signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM", flush=True))
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    kind = socket.SOCK_DGRAM if a.udp else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((a.host, a.port))
    if not a.udp:
        sock.listen(16)
    port = sock.getsockname()[1]
    child = 0
    if a.fork:
        child = os.fork()
        if child == 0:
            _idle(a.lifetime)
            os._exit(0)
        if a.close_in_parent:
            sock.close()
    sys.stdout.write(json.dumps({"port": port, "pid": os.getpid(), "child": child}) + "\n")
    sys.stdout.flush()
    if a.zombie_leader:
        def hold() -> None:
            _idle(a.lifetime)
            os._exit(0)

        threading.Thread(target=hold).start()
        # The main thread ends (ctypes releases the GIL for the call): the leader becomes a
        # zombie while the process lives on in the other thread, socket and all.
        ctypes.CDLL(None).pthread_exit(None)
    _idle(a.lifetime)


def _rename(name: str) -> None:
    """argv[0] becomes NAME (re-exec once), and the kernel's 15-byte comm its start."""
    if os.environ.get("PORTSIDE_CHILD_NAMED") != name:
        os.environ["PORTSIDE_CHILD_NAMED"] = name
        os.execv(sys.executable, [name, os.path.abspath(__file__), *sys.argv[1:]])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, os.fsencode(name)[:15], 0, 0, 0) != 0:  # PR_SET_NAME
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def _idle(lifetime: float) -> None:
    # Bounded: a test that forgets this process still sees it go by itself.
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


if __name__ == "__main__":
    main()
