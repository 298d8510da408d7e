"""Freed means free and staying free: a port a restarter takes again is reported, with
who took it and who started that, and the newcomer is never signalled."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import psutil
import pytest

from conftest import (
    Spawner,
    alive,
    ended,
    list_json,
    portside_cmd,
    run_cli,
    terminate,
    wait_for,
)
from managed import APP_JS, Loop, Pm2, free_port
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen
from uikit import dialog, highlight, main, notes, running, settled


def test_kill_reports_a_port_taken_again_and_never_signals_the_newcomer(loop: Loop) -> None:
    first = loop.server()
    res = run_cli("kill", f":{loop.port}", "--yes")
    assert res.returncode == 4, res.stdout + res.stderr
    newcomer = loop.server()
    assert newcomer != first and not alive(first) and alive(newcomer)
    assert f"port {loop.port}: freed, then taken again" in res.stdout
    assert f"by PID {newcomer} (python), restarted by a sh restart loop (PID "\
        f"{loop.shell.pid}): something " \
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
    with ended(subprocess.Popen([*portside_cmd(), "wait", f":{loop.port}", "--free",
                                 "--settle", "2", "--timeout", "6"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)) as waiting:
        terminate(first)  # the user stops the server; the loop starts it again in 0.5 s
        newcomer = loop.server()
        out, err = waiting.communicate(timeout=30)
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
        await highlight(pilot, loop.port, first)
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
        assert f"by PID {newcomer} (python), restarted by a sh restart loop (PID "\
            f"{loop.shell.pid}): " \
            "something restarts it. The newcomer was not signalled." in said, said
        assert "was freed, then taken again" in main(app).activity
        # No follow-up question: the newcomer was never part of what was confirmed.
        assert not isinstance(app.screen, ConfirmScreen)
    assert not alive(first) and alive(newcomer)


# Managers that hold sockets for others -----------------------------------------------------

def test_the_pm2_daemon_holding_a_cluster_port_is_never_signalled(pm2: Pm2,
                                                                 tmp_path: Path) -> None:
    pm2.port = free_port()
    (tmp_path / "app.js").write_text(APP_JS)
    started = pm2.run("start", str(tmp_path / "app.js"), "-i", "2", "--name", "web")
    assert started.returncode == 0, started.stdout + started.stderr
    # In cluster mode the daemon itself holds the listener; its workers get connections.
    rows = wait_for(lambda: [s for s in list_json(f":{pm2.port}") if s["state"] == "LISTEN"],
                    timeout=30)
    daemon = pm2.daemon()
    assert daemon is not None and rows[0]["pid"] == daemon
    workers = psutil.Process(daemon).children()
    assert len(workers) == 2
    res = run_cli("kill", f":{pm2.port}", "--yes", "--settle", "0")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"refused: PID {daemon} is the pm2 daemon ({pm2.home}): it holds the port for its " \
        "cluster apps, and stopping it stops every pm2 app; stop the app instead: " \
        f"PM2_HOME={pm2.home} pm2 stop NAME" in res.stderr, res.stderr
    assert "SIGTERM sent" not in res.stdout
    assert alive(daemon) and all(alive(w.pid) for w in workers)
    res = run_cli("kill", str(daemon), "--yes")  # named by PID: the same refusal
    assert res.returncode == 1 and "is the pm2 daemon" in res.stderr
    assert alive(daemon)
    why = run_cli("why", str(pm2.port))
    assert f"Do not signal it: PID {daemon} is the pm2 daemon" in why.stdout, why.stdout
    assert f"PM2_HOME={pm2.home} pm2 stop NAME" in why.stdout
    assert "portside kill" not in why.stdout


async def test_the_dashboard_refuses_to_signal_the_pm2_daemon_and_frees_the_app_for_good(
        pm2: Pm2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from portside.system.backend import LiveBackend

    pm2.port = free_port()
    (tmp_path / "app.js").write_text(APP_JS)
    assert pm2.run("start", str(tmp_path / "app.js"), "-i", "2", "--name", "web").returncode == 0
    wait_for(lambda: [s for s in list_json(f":{pm2.port}") if s["state"] == "LISTEN"],
             timeout=30)
    daemon = pm2.daemon()
    assert daemon is not None
    monkeypatch.setenv("PATH", pm2.path_env["PATH"])  # pm2 on PATH, as its user has it
    app = PortsideApp(LiveBackend(), interval=0.5, settle=1)
    async with running(app) as pilot:
        await highlight(pilot, pm2.port, daemon)
        for key in ("t", "k"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen), key
        said = " ".join(notes(app))
        assert f"PID {daemon} is the pm2 daemon" in said and "pm2 stop NAME" in said, said
        await pilot.press("f")  # what frees it for good: pm2 stops the app, no signal
        screen = await dialog(pilot)
        assert [r.command for r in screen.plan.requests] == [f"PM2_HOME={pm2.home} pm2 stop web"]
        assert screen.plan.targets == () and screen.plan.first == ()
        await pilot.press(*(f"{daemon}\r" if screen.plan.typed_pid else "y"))
        await settled(pilot)
        said = " ".join(notes(app))
        assert f"Port {pm2.port} is free." in said and "pm2 stopped web" in said, said
    assert alive(daemon)
    assert not [s for s in list_json(f":{pm2.port}") if s["state"] == "LISTEN"]


async def test_the_dashboard_frees_a_looped_server_for_good(loop: Loop) -> None:
    from portside.system.backend import LiveBackend

    server = loop.server()
    app = PortsideApp(LiveBackend(), interval=0.5, settle=2)
    async with running(app) as pilot:
        await highlight(pilot, loop.port, server)
        await pilot.press("f")
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.first] == [loop.shell.pid]
        assert [t.pid for t in screen.plan.targets] == [server]
        await pilot.press(*(f"{loop.shell.pid}\r" if screen.plan.typed_pid else "y"))
        await settled(pilot)
        said = " ".join(notes(app))
        assert f"Port {loop.port} is free." in said and "taken again" not in said, said
    assert loop.shell.wait(10) is not None and not alive(server)
