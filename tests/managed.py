"""Real servers and the managers that restart them, for the tests that free ports for good:
each is started by the test and ended, with every process under it, by PID at teardown.

A pytest plugin (conftest's pytest_plugins): its fixtures are everyone's.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import CHILD, RUNUSER, installed, list_json, nobody_env, terminate, wait_for

APP_JS = """
const http = require('http');
http.createServer((q, r) => r.end('hi')).listen(Number(process.env.PORT), '127.0.0.1');
"""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def listening(port: int, holders: int = 1, user: str | None = None,
              timeout: float = 30) -> dict[str, Any]:
    """The LISTEN row of a port once at least `holders` processes hold it."""
    def row() -> dict[str, Any] | None:
        for r in list_json(f":{port}", user=user):
            if r["state"] == "LISTEN" and len(r["holders"]) >= holders:
                return r
        return None
    found: dict[str, Any] = wait_for(row, timeout=timeout, poll=0.2)
    return found


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port (read with portside, as a user would)."""
    return not [r for r in list_json(f":{port}") if r["state"] == "LISTEN"]


@dataclass
class Tree:
    """A process the test started, in its own session; it and everything under it are
    ended by PID at teardown."""

    proc: subprocess.Popen[bytes]
    seen: set[psutil.Process] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def remember(self) -> None:
        """Note every process under it now (they may be reparented later)."""
        try:
            root = psutil.Process(self.pid)
            self.seen.update([root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            pass

    def end(self) -> None:
        self.remember()
        for proc in self.seen:
            try:
                if proc.is_running():  # the same process (psutil checks its start time)
                    terminate(proc.pid)
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def start() -> Iterator[Callable[..., Tree]]:
    """start(cmd, cwd=..., env=..., user=None): a server or manager in its own session."""
    trees: list[Tree] = []

    def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
            user: str | None = None, stdin: int = subprocess.DEVNULL) -> Tree:
        base = nobody_env() if user else dict(os.environ)
        full = {**base, **(env or {})}
        if user:
            cmd = [RUNUSER, "-u", user, "--", "env", *(f"{k}={v}" for k, v in full.items()),
                   *cmd]
        proc = subprocess.Popen(cmd, cwd=cwd, env=full, stdin=stdin,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        tree = Tree(proc)
        trees.append(tree)
        return tree

    try:
        yield run
    finally:
        for tree in trees:
            tree.end()


@dataclass
class Loop:
    """`while true; do server; sleep 0.5; done` in sh: the simplest restarter."""

    port: int
    shell: subprocess.Popen[bytes]

    def server(self) -> int:
        """The PID of the server the loop runs now (waits for one to listen)."""
        def current() -> int | None:
            for child in psutil.Process(self.shell.pid).children():
                try:
                    conns = child.net_connections("tcp")
                except (psutil.Error, OSError):
                    continue  # the server just killed, or the loop's sleep: gone already
                if any(c.laddr and c.laddr[1] == self.port and c.status == "LISTEN"
                       for c in conns):
                    return child.pid
            return None
        pid: int = wait_for(current)
        return pid


def loop_command(port: int, python: str = sys.executable, child: Path = CHILD) -> list[str]:
    """sh running a restart loop around a test listener on the port."""
    server = " ".join(shlex.quote(c) for c in [python, str(child), "--port", str(port),
                                               "--lifetime", "600"])
    return ["sh", "-c", f"while true; do {server} >/dev/null; sleep 0.5; done"]


@pytest.fixture
def loop() -> Iterator[Loop]:
    port = free_port()
    shell = subprocess.Popen(loop_command(port))
    try:
        yield Loop(port, shell)
    finally:
        children = psutil.Process(shell.pid).children(recursive=True) \
            if shell.poll() is None else []
        shell.kill()  # the loop first, so that nothing starts the server again
        shell.wait(10)
        for child in children:
            terminate(child.pid)


@pytest.fixture
def nobody_loop(start: Callable[..., Tree]) -> tuple[int, Tree]:
    """A restart loop run by the user nobody, around the installed copy of the listener."""
    port = free_port()
    tree = start(loop_command(port, str(installed().python), installed().child),
                 user="nobody")
    return port, tree


@dataclass
class Pm2:
    """pm2 (installed by make test) with its own PM2_HOME; `pm2 kill` and then every PID
    it ran are ended at teardown."""

    exe: str
    home: Path
    port: int = 0

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PM2_HOME": str(self.home), "PORT": str(self.port)}
        return subprocess.run([self.exe, *args], env=env, capture_output=True, text=True,
                              timeout=120)

    def daemon(self) -> int | None:
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or ())
            if "God Daemon" in cmd and str(self.home) in cmd:
                return p.pid
        return None

    @property
    def path_env(self) -> dict[str, str]:
        """PATH with pm2 on it, as a pm2 user has it."""
        return {"PATH": f"{Path(self.exe).parent}:{os.environ.get('PATH', '')}"}


@pytest.fixture
def pm2() -> Iterator[Pm2]:
    exe = os.environ.get("PORTSIDE_PM2", "")
    if not os.access(exe, os.X_OK):
        pytest.skip("pm2 is installed by `make test` (PORTSIDE_PM2)")
    # Short: pm2's daemon shows its home in a title only as long as its original argv.
    manager = Pm2(exe, Path(tempfile.mkdtemp(prefix="pm2-", dir="/tmp")))
    try:
        yield manager
    finally:
        daemon = manager.daemon()
        ran = psutil.Process(daemon).children(recursive=True) if daemon else []
        manager.run("kill")
        for proc in [*ran, *([psutil.Process(daemon)] if daemon else [])]:
            terminate(proc.pid)
        shutil.rmtree(manager.home, ignore_errors=True)
