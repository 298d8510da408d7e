"""Several holders, several addresses: the dashboard acts on exactly what the user chose."""

from __future__ import annotations

import asyncio

from conftest import Spawner, alive, wait_for
from portside.system.backend import LiveBackend
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ActionScreen
from test_ui import SIZE, arm, status_text, table, until


def test_the_other_address_on_the_same_port_is_reported_not_touched(spawn: Spawner) -> None:
    a = spawn("--ignore-term")  # would be offered SIGKILL if "still held" meant the port
    b = spawn("--host", "127.0.0.2", "--port", str(a.port))
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: table(app).select(b.port, laddr="127.0.0.2")
                        and table(app).select(a.port, laddr="127.0.0.1"), timeout=15)
            await pilot.pause()
            await pilot.press("k")  # SIGKILL A: it cannot ignore that
            dialog = app.screen
            assert isinstance(dialog, ActionScreen)
            assert [t.pid for t in dialog.plan.targets] == [a.pid]
            await arm(pilot, dialog)
            await pilot.press("y")
            await until(pilot, lambda: dialog.state == "done", timeout=15)
            text = status_text(app, "#dialog-status")
            assert f"Port {a.port} is free on 127.0.0.1" in text
            assert f"also in use on 127.0.0.2 by PID {b.pid}" in text and "not touched" in text
            assert dialog.remaining == () and dialog.result is not None
            assert dialog.result.more == ()
    asyncio.run(main())
    wait_for(lambda: not alive(a.pid))
    assert alive(b.pid)


def test_workers_left_by_their_master_are_named_and_need_a_new_confirmation(
        spawn: Spawner) -> None:
    held = spawn("--fork")  # the master and a forked worker share the listener
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: table(app).select(held.port), timeout=15)
            await pilot.pause()
            row = table(app).current
            assert row is not None and row.sock.pids == tuple(held.pids)
            await pilot.press("t")
            dialog = app.screen
            assert isinstance(dialog, ActionScreen)
            body = status_text(app, "#dialog-body")
            assert "2 processes hold this socket" in body
            assert f"PID {held.child} keeps it" in body and "Press a to signal all 2" in body
            await arm(pilot, dialog)
            await pilot.press("y")  # the master only
            await until(pilot, lambda: dialog.state == "done", timeout=15)
            # The master exited; its orphaned worker holds the port. It got no signal:
            # no SIGKILL is offered to it, a new confirmation is.
            text = status_text(app, "#dialog-status")
            assert f"still held by PID {held.child}" in text and "got no signal" in text
            assert dialog.remaining == ()
            assert dialog.result is not None
            assert [t.pid for t in dialog.result.more] == [held.child]
            await pilot.press("k")
            assert alive(held.child)
            await arm(pilot, dialog)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ActionScreen)
                        and app.screen is not dialog)
            follow = app.screen
            assert isinstance(follow, ActionScreen)
            assert [t.pid for t in follow.plan.targets] == [held.child]
            await pilot.press("y")  # typed ahead of the new dialog: ignored
            assert follow.state == "confirm" and alive(held.child)
            await arm(pilot, follow)
            await pilot.press("y")
            await until(pilot, lambda: follow.state == "done", timeout=15)
            assert f"Port {held.port} is free" in status_text(app, "#dialog-status")
    asyncio.run(main())
    wait_for(lambda: not alive(held.pid) and not alive(held.child))
