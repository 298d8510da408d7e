"""Process names are hostile input: real processes named like markup, on every surface."""

from __future__ import annotations

import socket

from textual.pilot import Pilot
from textual.widgets._toast import Toast

from conftest import Spawner, alive, require_root
from portside.system.backend import LiveBackend
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen, TextScreen
from portside.ui.widgets import DetailsPane
from uikit import dialog, main, notes, running, settled, table, until

SLASH = "[/]"  # made the dashboard crash when t was pressed, or on a watched port
SPOOF = "[@click=app.quit]"  # a dialog title that would read as something else
CONFIRM = "[@click=screen.confirm]x"  # a toast whose click confirmed another dialog


def free_port() -> int:
    """A loopback port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def goto_port(pilot: Pilot[int], app: PortsideApp, port: int) -> None:
    """Wait for the port's listener to be listed, then put the cursor on it."""
    await until(pilot, lambda: table(app).select(port), timeout=15)
    await pilot.pause()


async def open_dialog(pilot: Pilot[int], app: PortsideApp, port: int) -> ConfirmScreen:
    """Press t on the port's listener; the dialog that opens, once armed."""
    await goto_port(pilot, app, port)
    await pilot.press("t")
    return await dialog(pilot)


async def test_hostile_names_are_text_everywhere(spawn: Spawner) -> None:
    require_root()
    # An ordinary user names its process "[/]": root's dashboard must not crash on it.
    slash = spawn("--name", SLASH, "--ignore-term", user="nobody")
    spoof = spawn("--name", SPOOF)
    watched = free_port()
    app = PortsideApp(LiveBackend(), interval=0.5, grace=1.0, watch=[watched])
    async with running(app) as pilot:
        await goto_port(pilot, app, slash.port)
        row = table(app).current
        assert row is not None
        assert table(app).cells(row, app.clock())["process"] == SLASH
        assert SLASH in main(app).query_one(DetailsPane).text

        # The probe panel names the holder literally.
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert f"({SLASH})" in str(app.screen.query_one("#report-body").render())
        await pilot.press("escape")

        # A dialog titled with markup shows it as text.
        spoofed = await open_dialog(pilot, app, spoof.port)
        assert SPOOF in str(spoofed.query_one("#dialog-title").render())

        # While it is open, a process named like a confirm link takes the watched port:
        # its toast is text, and clicking it confirms nothing.
        spawn("--name", CONFIRM, "--port", str(watched))
        await until(pilot, lambda: any(CONFIRM in str(t.render())
                                       for t in app.screen.query(Toast)), timeout=15)
        toast = next(t for t in app.screen.query(Toast) if CONFIRM in str(t.render()))
        rendered = toast.render()
        assert "@click" not in repr(getattr(rendered, "spans", ""))
        await pilot.click(toast)
        await pilot.pause()  # the click and anything it triggered have been processed
        assert spoofed.is_current and not [w for w in app.workers if w.group == "action"]
        assert alive(spoof.pid)
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))

        # Acting on "[/]" reports the outcome, naming it, without a crash.
        screen = await open_dialog(pilot, app, slash.port)
        assert SLASH in str(screen.query_one("#dialog-title").render())
        if screen.plan.typed_pid is not None:
            await pilot.press(*str(slash.pid))
        await pilot.press("enter" if screen.plan.typed_pid is not None else "y")
        await settled(pilot)
        assert any(SLASH in n for n in notes(app))
        assert any(SLASH in str(t.render()) for t in app.screen.query(Toast))
        # SIGTERM was ignored: SIGKILL is asked about, with the outcome, as text.
        follow = await dialog(pilot)
        assert SLASH in str(follow.query_one("#dialog-context").render())
        await pilot.press("n")
        assert app.is_running
    assert alive(slash.pid) and alive(spoof.pid)  # SIGTERM ignored; the other one untouched
