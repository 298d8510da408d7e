"""Shared fixtures: real loopback listeners, TIME_WAIT sockets, and the CLI as a process."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
# The real servers and managers (tests/managed.py): their fixtures are everyone's.
pytest_plugins = ("managed", "services")


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
            cmd = [RUNUSER, "-u", user, "--", *nobody_python(), str(installed().child), *args]
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
            user: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run the installed `portside ARGS` as a real process, outside the checkout (env:
    variables to set on top of the usual ones)."""
    base = nobody_env() if user else dict(os.environ)
    return subprocess.run(portside_cmd(user) + list(args), capture_output=True, text=True,
                          timeout=timeout, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          cwd=installed().root, env={**base, **(env or {})})


def portside_cmd(user: str | None = None) -> list[str]:
    """The installed console script, run as `user` when given."""
    exe = str(installed().portside)
    return [RUNUSER, "-u", user, "--", exe] if user is not None else [exe]


def list_json(*args: str, user: str | None = None) -> list[dict[str, Any]]:
    """`portside list --json ARGS`, parsed."""
    res = run_cli("list", "--json", *args, user=user)
    assert res.returncode == 0, res.stderr
    data: list[dict[str, Any]] = json.loads(res.stdout)
    return data


@contextmanager
def ended(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """A process a test started in the background, ended by its PID if it still runs."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def alive(pid: int) -> bool:
    """True while the PID runs (a zombie is not running)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# What a user installs ---------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """portside built as a wheel and installed into a fresh virtualenv, outside the checkout.

    The directory is world-readable, so the user nobody runs the same install (whatever
    the permissions of the checkout).
    """

    root: Path
    python: Path
    portside: Path
    child: Path  # a copy of tests/child.py that nobody may read


_INSTALLED: Installed | None = None


def system_python() -> str:
    """The machine's own interpreter of our version (what a user makes a venv with)."""
    want = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for exe in (f"/usr/bin/{want}", f"/usr/local/bin/{want}", shutil.which(want) or "",
                getattr(sys, "_base_executable", "") or sys.executable):
        if exe and os.access(exe, os.X_OK):
            return exe
    return sys.executable


def installed() -> Installed:
    """Build the wheel and install it, once per test session."""
    global _INSTALLED
    if _INSTALLED is not None:
        return _INSTALLED
    root = Path(tempfile.mkdtemp(prefix="portside-installed-"))
    root.chmod(0o755)
    wheels = root / "wheels"
    venv = root / "venv"
    py = system_python()
    # From a clean copy of the sources: an in-tree build would reuse a stale build/ and
    # ship files a fresh clone's wheel does not have.
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", "screenshots", "__snapshots__", "bench"))
    subprocess.run([py, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                   check=True, timeout=600, capture_output=True)
    shutil.rmtree(src)
    wheel = next(wheels.glob("portside-*.whl"))
    subprocess.run([py, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=600, capture_output=True)
    child = root / "child.py"
    shutil.copyfile(CHILD, child)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    _INSTALLED = Installed(root, venv / "bin" / "python", venv / "bin" / "portside", child)
    return _INSTALLED


@pytest.fixture(scope="session", autouse=True)
def _install_first() -> Installed:
    """Build and install before the first test: tests that time things must not wait."""
    return installed()


def remove_installed() -> None:
    """Remove the session's install (pytest_sessionfinish)."""
    if _INSTALLED is not None:
        shutil.rmtree(_INSTALLED.root, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    remove_installed()


# Running as an ordinary user ------------------------------------------------------------


def nobody_python() -> list[str]:
    """The installed interpreter, which the user nobody may run (skip only without root)."""
    require_root()
    return [str(installed().python)]


def nobody_env() -> dict[str, str]:
    """A plain environment for nobody: no PYTHONPATH into the checkout."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}


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


# A real terminal ------------------------------------------------------------------------


class Tmux:
    """One program in a detached tmux session on a private server; ended by its PID."""

    def __init__(self, cmd: list[str], cwd: Path, size: tuple[int, int] = (120, 40),
                 env: dict[str, str] | None = None) -> None:
        if shutil.which("tmux") is None:
            raise AssertionError("tmux is not installed (make test installs it)")
        self.socket = f"portside-test-{os.getpid()}-{id(self)}"
        self.exit_file = Path(tempfile.mkstemp(prefix="portside-exit-")[1])
        self.exit_file.unlink()
        script = " ".join(shlex.quote(c) for c in cmd)
        shell = f"{script}; echo $? > {shlex.quote(str(self.exit_file))}"
        full_env = {**os.environ, "TERM": "xterm-256color", **(env or {})}
        full_env.pop("TMUX", None)
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d",
                        "-x", str(size[0]), "-y", str(size[1]), "-c", str(cwd), shell],
                       check=True, env=full_env, timeout=30)
        subprocess.run(["tmux", "-L", self.socket, "set-option", "-g", "remain-on-exit", "on"],
                       timeout=30, capture_output=True)
        # Escape reaches the program at once, not glued to the next keys as Alt+key.
        subprocess.run(["tmux", "-L", self.socket, "set-option", "-sg", "escape-time", "0"],
                       timeout=30, capture_output=True)
        out = self._tmux("display-message", "-p", "#{pane_pid}")
        self.pid = int(out.strip())

    def _tmux(self, *args: str) -> str:
        res = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=30)
        return res.stdout

    def screen(self) -> str:
        """The pane's text now."""
        return self._tmux("capture-pane", "-p", "-t", "0")

    def history(self) -> str:
        """Everything the pane printed, scrollback included, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "0")

    def pane(self, fmt: str) -> str:
        """A tmux format of the pane, e.g. #{alternate_on}."""
        return self._tmux("display-message", "-p", "-t", "0", fmt).strip()

    def send(self, *keys: str, literal: bool = False) -> None:
        """tmux send-keys: all of them in one write to the terminal."""
        self._tmux("send-keys", "-t", "0", *(["-l"] if literal else []), *keys)

    def wait_text(self, text: str, timeout: float = 20.0) -> str:
        """Poll the screen until it shows `text`; fail with the screen at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.1)

    def exit_code(self, timeout: float = 20.0) -> int:
        """Wait for the program to end; its exit code."""
        wait_for(self.exit_file.exists, timeout)
        wait_for(lambda: self.exit_file.read_text().strip(), timeout)
        return int(self.exit_file.read_text().strip())

    def close(self) -> None:
        """End the program (by the pane's PID and its children) and the tmux server."""
        try:
            for child in psutil.Process(self.pid).children(recursive=True):
                child.kill()
        except psutil.Error:
            pass
        self._tmux("kill-server")
        self.exit_file.unlink(missing_ok=True)


@pytest.fixture
def tmux() -> Iterator[Callable[..., Tmux]]:
    made: list[Tmux] = []

    def start(cmd: list[str], cwd: Path | None = None, **kw: Any) -> Tmux:
        t = Tmux(cmd, cwd or installed().root, **kw)
        made.append(t)
        return t

    try:
        yield start
    finally:
        for t in made:
            t.close()
