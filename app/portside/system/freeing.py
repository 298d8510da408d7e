"""Freeing a port for good: ask supervisord or pm2 to stop the program, signal what
restarts a holder before the holder, then check the port stays free."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..actions import FIRST_WAIT, GRACE, ForGood, Request
from ..fmt import safe_text
from ..model import SENT, SignalResult
from . import control, services
from .dockerapi import UnixConnection
from .sampler import Sampler

REQUEST_TIMEOUT = 30.0  # seconds a manager gets to stop a program (supervisord waits for it)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path, self._timeout = path, timeout

    def make_connection(self, host: object) -> http.client.HTTPConnection:
        return UnixConnection(self._path, self._timeout)


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: object) -> http.client.HTTPConnection:
        conn = super().make_connection(host)  # type: ignore[arg-type]
        conn.timeout = self._timeout
        return conn


def supervisor_proxy(url: str, timeout: float = REQUEST_TIMEOUT) -> xmlrpc.client.ServerProxy:
    """An XML-RPC client for supervisord at its SUPERVISOR_SERVER_URL."""
    if url.startswith("unix://"):
        return xmlrpc.client.ServerProxy(
            "http://localhost/RPC2", transport=_UnixTransport(url[len("unix://"):], timeout))
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else "/RPC2"
    return xmlrpc.client.ServerProxy(f"{parts.scheme}://{parts.netloc}{path}",
                                     transport=_TimeoutTransport(timeout))


def stop_supervised(url: str, name: str, timeout: float = REQUEST_TIMEOUT) -> tuple[bool, str]:
    """Ask supervisord to stop a program (it stops it, and keeps it stopped)."""
    where = safe_text(url)
    try:
        supervisor_proxy(url, timeout).supervisor.stopProcess(name, True)
    except xmlrpc.client.Fault as exc:
        if "NOT_RUNNING" in exc.faultString:
            return True, f"supervisord at {where}: {safe_text(name)} was not running"
        return False, f"supervisord at {where} refused to stop {safe_text(name)}: " \
            f"{safe_text(exc.faultString)}"
    except xmlrpc.client.ProtocolError as exc:
        if exc.errcode == 401:
            return False, (f"supervisord at {where} asks for a user name and password: run "
                           f"supervisorctl -s {where} stop {safe_text(name)} yourself")
        return False, f"supervisord at {where}: HTTP {exc.errcode} {safe_text(exc.errmsg)}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"cannot reach supervisord at {where}: {safe_text(str(exc))}"
    return True, f"supervisord stopped {safe_text(name)}"


def pm2_executable(tool: str) -> str | None:
    """The pm2 that started the app (its $_), else the one on PATH."""
    if tool and os.access(tool, os.X_OK):
        return tool
    return shutil.which("pm2")


def stop_pm2(name: str, home: str, tool: str, timeout: float = REQUEST_TIMEOUT
             ) -> tuple[bool, str]:
    """`pm2 stop NAME` against the daemon at PM2_HOME=home (it stays stopped)."""
    exe = pm2_executable(tool)
    prefix = f"PM2_HOME={home} " if home else ""
    if exe is None:
        return False, (f"pm2 is not on PATH: run {safe_text(prefix)}pm2 stop "
                       f"{safe_text(name)} yourself")
    env = {**os.environ, **({"PM2_HOME": home} if home else {})}
    try:
        done = subprocess.run([exe, "stop", name], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{safe_text(prefix)}pm2 stop {safe_text(name)} failed: " \
            f"{safe_text(str(exc))}"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, (f"{safe_text(prefix)}pm2 stop {safe_text(name)} exited "
                       f"{done.returncode}" + (f": {safe_text(said[-1])}" if said else ""))
    return True, f"pm2 stopped {safe_text(name)} ({safe_text(prefix.strip() or 'PM2_HOME')})"


def ask(request: Request, timeout: float = REQUEST_TIMEOUT, grace: float = GRACE
        ) -> tuple[bool, str]:
    """Ask the manager to stop its program: (done, what it said)."""
    if request.via == "supervisord":
        return stop_supervised(request.url, request.name, timeout)
    if request.via == "docker":
        return services.stop_container(request.scope, request.name, grace, request.label)
    if request.via == "systemd":
        return services.stop_units(request.scope, request.name.split(), timeout)
    return stop_pm2(request.name, request.home, request.tool, timeout)


@dataclass(slots=True)
class FreeResult:
    """How freeing ended: what managers said, and the signals' StopResult."""

    asked: list[tuple[Request, bool, str]] = field(default_factory=list)
    first: list[SignalResult] = field(default_factory=list)  # to the restarters
    stop: control.StopResult = field(default_factory=control.StopResult)


def free(plan: ForGood, grace: float, force: bool, sampler: Sampler, settle: float,
         tick: Callable[[float], None] | None = None) -> FreeResult:
    """Carry out a ForGood plan, then wait for the port to be free and to stay free."""
    result = FreeResult()
    try:
        for req in plan.requests:
            ok, said = ask(req, max(REQUEST_TIMEOUT, grace + 10), grace)
            result.asked.append((req, ok, said))
        for t in plan.managers:
            with control.deferred_interrupt():
                result.first.append(control.send_signal(t, signal.SIGTERM))
        sent = [r.target for r in result.first if r.outcome == SENT]
        if sent:
            control.wait_until(
                lambda: control.port_holders(plan.port, sampler).free, FIRST_WAIT, tick=tick)
        held = control.port_holders(plan.port, sampler)
        still = [t for t in plan.holders if t.pid in held.pids]
        spare = {pid: m.no_kill for pid, m in plan.managed if m.no_kill}
        result.stop = control.stop(still, signal.SIGTERM, grace, force, [plan.port], (),
                                   sampler, tick, settle=settle, sent=sent, spare=spare)
    except KeyboardInterrupt:
        result.stop.ok, result.stop.interrupted = False, True
    return result
