"""Shared fixtures: real loopback listeners, TIME_WAIT sockets, and the CLI as a process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

# Start times in dialogs and snapshots are shown in local time: make it the same everywhere.
os.environ["TZ"] = "UTC"
time.tzset()

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "child.py"
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, poll: float = 0.05) -> Any:
    """Poll until predicate() is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(poll)


@dataclass
class Held:
    """A spawned listener: its port, its PID and the PID of a forked child (0 if none)."""

    port: int
    pid: int
    child: int
    proc: subprocess.Popen[str]

    @property
    def pids(self) -> list[int]:
        return sorted(p for p in (self.pid, self.child) if p)


@dataclass
class Spawner:
    """Starts listener processes and ends every one of them by PID at teardown."""

    procs: list[psutil.Process] = field(default_factory=list)
    popens: list[subprocess.Popen[str]] = field(default_factory=list)

    def __call__(self, *args: str, user: str | None = None) -> Held:
        cmd = [sys.executable, str(CHILD), *args]
        if user is not None:
            cmd = [RUNUSER, "-u", user, "--", *nobody_python(), str(CHILD), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                env=nobody_env() if user else None)
        self.popens.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"listener {args} did not start (exit {proc.wait(5)})")
        info = json.loads(line)
        for pid in (info["pid"], info["child"]):
            if pid:
                self.procs.append(psutil.Process(pid))
        return Held(info["port"], info["pid"], info["child"], proc)

    def cleanup(self) -> None:
        for p in self.procs:
            try:
                p.kill()  # psutil checks (pid, create_time): never a recycled PID
            except psutil.Error:
                pass
        for popen in self.popens:
            try:
                popen.kill()
            except OSError:
                pass
            popen.wait(10)
            if popen.stdout:
                popen.stdout.close()


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    s = Spawner()
    try:
        yield s
    finally:
        s.cleanup()


def make_time_wait(count: int = 1, host: str = "127.0.0.1", reuse: bool = True) -> int:
    """Leave `count` TIME_WAIT sockets on a loopback port nobody listens on; return it.

    The server side closes first, so the TIME_WAIT sockets have the server's port as
    their local port; then the listener closes. Like most servers, the listener sets
    SO_REUSEADDR unless told not to (the kernel then lets a new SO_REUSEADDR bind in).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as lsn:
        if reuse:
            lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsn.bind((host, 0))
        lsn.listen(count)
        port: int = lsn.getsockname()[1]
        for _ in range(count):
            cli = socket.socket(family, socket.SOCK_STREAM)
            cli.settimeout(5)
            cli.connect((host, port))
            srv, _ = lsn.accept()
            srv.close()  # active close: the server end goes to FIN_WAIT2
            assert cli.recv(1) == b""  # the FIN has arrived
            cli.close()  # ... and our FIN moves the server end to TIME_WAIT
    return port


def run_cli(*args: str, input: str | None = None, timeout: float = 60,
            user: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m portside ARGS` as a real process."""
    cmd = [sys.executable, "-m", "portside", *args]
    env = None
    if user is not None:
        cmd = [RUNUSER, "-u", user, "--", *nobody_python(), "-m", "portside", *args]
        env = nobody_env()
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          cwd=ROOT, env=env)


def list_json(*args: str, user: str | None = None) -> list[dict[str, Any]]:
    """`portside list --json ARGS`, parsed."""
    res = run_cli("list", "--json", *args, user=user)
    assert res.returncode == 0, res.stderr
    data: list[dict[str, Any]] = json.loads(res.stdout)
    return data


def alive(pid: int) -> bool:
    """True while the PID runs (a zombie is not running)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# Running as an ordinary user ------------------------------------------------------------

_NOBODY_PY: list[str] | None = None


def nobody_python() -> list[str]:
    """An interpreter the user nobody may execute, with the same version as ours."""
    global _NOBODY_PY
    if _NOBODY_PY is not None:
        return _NOBODY_PY
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [sys.executable, os.path.realpath(sys.executable),
                  shutil.which(f"python{want}") or "", f"/usr/bin/python{want}",
                  f"/usr/local/bin/python{want}"]
    for exe in candidates:
        if not exe or not os.path.exists(exe):
            continue
        res = subprocess.run(
            [RUNUSER, "-u", "nobody", "--", exe, "-c",
             "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, env=nobody_env(),
        )
        if res.returncode == 0 and res.stdout.strip() == want:
            _NOBODY_PY = [exe]
            return _NOBODY_PY
    pytest.skip(f"no Python {want} that the user nobody may run")


def nobody_env() -> dict[str, str]:
    """The environment for nobody: our package and its dependencies on the path."""
    paths = [str(ROOT / "app"), *site.getsitepackages()]
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(paths),
            "HOME": "/tmp", "LANG": "C.UTF-8"}


def require_root() -> None:
    """Skip where the test needs root (to switch to nobody)."""
    if os.geteuid() != 0 or not os.path.exists(RUNUSER):
        pytest.skip("needs root and runuser to test as an ordinary user")


def terminate(pid: int) -> None:
    """SIGKILL a PID we started, if it is still there."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
