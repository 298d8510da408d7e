"""Several holders, several addresses: the dashboard acts on exactly what the user chose."""

from __future__ import annotations

from conftest import Spawner, alive, wait_for
from portside.system.backend import LiveBackend
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen
from uikit import dialog, notes, running, settled, table, until


async def test_the_other_address_on_the_same_port_is_reported_not_touched(
        spawn: Spawner) -> None:
    a = spawn("--ignore-term")  # would be offered SIGKILL if "still held" meant the port
    b = spawn("--host", "127.0.0.2", "--port", str(a.port))
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)
    async with running(app) as pilot:
        await until(pilot, lambda: table(app).select(b.port, laddr="127.0.0.2")
                    and table(app).select(a.port, laddr="127.0.0.1"), timeout=15)
        await pilot.pause()
        await pilot.press("k")  # SIGKILL A: it cannot ignore that
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.targets] == [a.pid]
        await pilot.press("y")
        await settled(pilot)
        (note,) = [n for n in notes(app) if f"Port {a.port}" in n]
        assert f"Port {a.port} is free on 127.0.0.1" in note
        assert f"also in use on 127.0.0.2 by PID {b.pid}" in note and "not touched" in note
        assert not isinstance(app.screen, ConfirmScreen)  # nothing more to ask
    wait_for(lambda: not alive(a.pid))
    assert alive(b.pid)


async def test_workers_left_by_their_master_are_named_and_need_a_new_confirmation(
        spawn: Spawner) -> None:
    held = spawn("--fork")  # the master and a forked worker share the listener
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)
    async with running(app) as pilot:
        await until(pilot, lambda: table(app).select(held.port), timeout=15)
        await pilot.pause()
        row = table(app).current
        assert row is not None and row.sock.holders == tuple(held.pids)
        await pilot.press("t")
        first = await dialog(pilot)
        body = str(first.query_one("#dialog-body").render())
        assert "2 processes hold this socket" in body
        assert f"PID {held.child} keeps it" in body and "Press a for: SIGTERM all 2" in body
        await pilot.press("y")  # the master only
        await settled(pilot)
        # The master exited; its orphaned worker holds the port. It got no signal: no
        # SIGKILL is offered to it; a confirmation of its own is.
        assert any(f"still held by PID {held.child}" in n and "got no signal" in n
                   for n in notes(app))
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        follow = app.screen
        assert isinstance(follow, ConfirmScreen) and follow is not first
        assert [t.pid for t in follow.plan.targets] == [held.child]
        assert follow.plan.sig != 9 and follow.alternative is None
        await pilot.press("y")  # typed ahead of the new dialog: ignored
        assert app.screen is follow and alive(held.child)
        await dialog(pilot)
        await pilot.press("y")
        await settled(pilot)
        assert any(f"Port {held.port} is free" in n for n in notes(app))
    wait_for(lambda: not alive(held.pid) and not alive(held.child))
