"""Freed means free and staying free: a port a restarter takes again is reported, with
who took it and who started that, and the newcomer is never signalled."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from conftest import CHILD, Spawner, alive, portside_cmd, run_cli, terminate, wait_for
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen
from uikit import dialog, main, notes, running, settled, table, until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Loop:
    """`while true; do server; sleep 0.5; done` in sh: the simplest restarter."""

    port: int
    shell: subprocess.Popen[bytes]

    def server(self) -> int:
        """The PID of the server the loop runs now (waits for one to listen)."""
        def current() -> int | None:
            for child in psutil.Process(self.shell.pid).children():
                conns = child.net_connections("tcp")
                if any(c.laddr and c.laddr[1] == self.port and c.status == "LISTEN"
                       for c in conns):
                    return child.pid
            return None
        pid: int = wait_for(current)
        return pid


@pytest.fixture
def loop() -> Iterator[Loop]:
    port = _free_port()
    server = " ".join(shlex.quote(c) for c in [sys.executable, str(CHILD), "--port", str(port)])
    shell = subprocess.Popen(["sh", "-c", f"while true; do {server} >/dev/null; sleep 0.5; done"])
    try:
        yield Loop(port, shell)
    finally:
        children = psutil.Process(shell.pid).children(recursive=True)
        shell.kill()  # the loop first, so that nothing starts the server again
        shell.wait(10)
        for child in children:
            terminate(child.pid)


def test_kill_reports_a_port_taken_again_and_never_signals_the_newcomer(loop: Loop) -> None:
    first = loop.server()
    res = run_cli("kill", f":{loop.port}", "--yes")
    assert res.returncode == 4, res.stdout + res.stderr
    newcomer = loop.server()
    assert newcomer != first and not alive(first) and alive(newcomer)
    assert f"port {loop.port}: freed, then taken again" in res.stdout
    assert f"by PID {newcomer} (python), started by PID {loop.shell.pid} (sh): something " \
        "restarts it, and the newcomer was not signalled" in res.stdout, res.stdout
    assert "freed (and stayed" not in res.stdout


def test_settle_0_is_the_first_moment_free(loop: Loop) -> None:
    loop.server()
    res = run_cli("kill", f":{loop.port}", "--yes", "--settle", "0")
    assert res.returncode == 0 and f"port {loop.port}: freed\n" in res.stdout, res.stdout


def test_a_port_that_stays_free_is_freed_after_the_settle_time(spawn: Spawner) -> None:
    held = spawn()
    res = run_cli("kill", f":{held.port}", "--yes", "--settle", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"port {held.port}: freed (and stayed free for 1s)" in res.stdout


def test_wait_free_waits_for_the_port_to_stay_free(loop: Loop) -> None:
    first = loop.server()
    waiting = subprocess.Popen([*portside_cmd(), "wait", f":{loop.port}", "--free",
                                "--settle", "2", "--timeout", "6"], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        terminate(first)  # the user stops the server; the loop starts it again in 0.5 s
        newcomer = loop.server()
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(10)
    assert waiting.returncode == 4, out + err
    assert f"port {loop.port} was freed, then taken again by PID {newcomer} (python)" in err
    with socket.socket() as lone:  # ... while a port nobody restarts is free at once
        lone.bind(("127.0.0.1", 0))
        port = lone.getsockname()[1]
    res = run_cli("wait", f":{port}", "--free", "--settle", "0.5", "--timeout", "10")
    assert res.returncode == 0 and "is free (for 0.5s in a row)" in res.stdout


# The dashboard ---------------------------------------------------------------------------


async def test_the_dashboard_reports_a_freed_port_taken_again_and_offers_nothing(
        loop: Loop) -> None:
    from portside.system.backend import LiveBackend

    first = loop.server()
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10, settle=3)
    async with running(app) as pilot:
        def row_index() -> int | None:
            for i, r in enumerate(app.model.view):
                if r.sock.lport == loop.port and r.sock.state == "LISTEN" \
                        and r.sock.pid == first:
                    return i
            return None
        await until(pilot, lambda: row_index() is not None)
        table(app).move_to(row_index())  # type: ignore[arg-type]
        await pilot.pause()
        await pilot.press("t")
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.targets] == [first]
        if screen.plan.typed_pid is not None:  # e.g. run under sudo
            await pilot.press(*str(first), "enter")
        else:
            await pilot.press("y")
        await settled(pilot)
        newcomer = loop.server()
        said = " ".join(notes(app))
        assert f"Port {loop.port} was freed, then taken again" in said, said
        assert f"by PID {newcomer} (python), started by PID {loop.shell.pid} (sh): " \
            "something restarts it. The newcomer was not signalled." in said, said
        assert "was freed, then taken again" in main(app).activity
        # No follow-up question: the newcomer was never part of what was confirmed.
        assert not isinstance(app.screen, ConfirmScreen)
    assert not alive(first) and alive(newcomer)
