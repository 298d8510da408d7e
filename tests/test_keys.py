"""No key typed ahead, paste or click confirms what the user has not seen."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from textual import events
from textual.widgets import Input

from conftest import Spawner, Tmux, alive, portside_cmd, wait_for
from portside.demo import DemoBackend
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen
from uikit import demo_app, dialog, goto, main, notes, running, settled, until


def type_ahead(app: PortsideApp, *keys: str) -> None:
    """Queue key events at once, as a terminal delivers a fast burst or a paste."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        char = {"slash": "/", "enter": "\r"}.get(key, key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)


@pytest.mark.parametrize("action", ["k", "t"])
async def test_everything_typed_after_slash_goes_to_the_filter(action: str) -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        type_ahead(app, "slash", action, "y")
        box = main(app).query_one("#filter", Input)
        await until(pilot, lambda: box.value == f"{action}y")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert backend.sent == []


async def test_a_confirmation_typed_ahead_or_clicked_early_is_ignored() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        type_ahead(app, "k", "y", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        shown = screen
        await until(pilot, lambda: "Ignored" in shown.status_text)
        await pilot.click("#confirm")  # a click before the dialog is armed does nothing
        assert app.screen is screen and backend.sent == []  # Enter on Cancel: dropped too
        await dialog(pilot)
        assert "Ready" in shown.status_text
        await pilot.click("#confirm")
        await settled(pilot)
    assert backend.sent == [(2001, signal.SIGKILL)]


async def test_a_pid_pasted_before_the_dialog_is_armed_is_dropped() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 5432, laddr="127.0.0.1")  # another user's: its PID must be typed
        type_ahead(app, "t", "1", "5", "0", "0", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        screen.post_message(events.Paste("1500\r"))
        await pilot.pause()
        box = screen.query_one("#typed-pid", Input)
        assert screen.focused is box and box.value == "" and app.screen is screen
        await dialog(pilot)
        await pilot.press(*"1500")
        assert box.value == "1500"  # once armed, the box takes the digits at once
    assert backend.sent == []


async def test_no_row_action_when_the_terminal_is_too_small() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app, size=(20, 5)) as pilot:
        goto(app, 3000)
        await pilot.press("t", "y", "k", "y", "f", "y")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("too small" in n for n in notes(app))
    assert backend.sent == []


# The same in a real terminal, with the installed dashboard and a real listener ---------


def test_fast_keys_in_a_real_terminal(spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    held = spawn()
    term = tmux([*portside_cmd(), f":{held.port}", "--interval", "0.5"], size=(150, 40))
    term.wait_text("127.0.0.1", timeout=30)
    term.wait_text(str(held.pid))
    # "/ky" in one write: it all goes to the filter box; nothing opens, nothing is sent.
    term.send("/ky", literal=True)
    term.wait_text("ky")
    screen = term.screen()
    assert "Kill (SIGKILL)" not in screen and alive(held.pid)
    term.send("Escape")  # clears the filter, back to the table
    term.wait_text("filter: :3000")  # the empty box shows its placeholder again
    # "ty" in one write: the dialog opens and ignores the y it had not shown yet.
    term.send("ty", literal=True)
    screen = term.wait_text("Terminate (SIGTERM)")
    term.wait_text("Ignored 'y'")
    assert alive(held.pid)
    term.wait_text("Ready")
    term.send("y", literal=True)
    wait_for(lambda: not alive(held.pid), timeout=20)
    term.wait_text(f"Port {held.port} is free")


def test_tiny_terminal_in_a_real_terminal(spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    held = spawn()
    term = tmux([*portside_cmd(), f":{held.port}", "--interval", "0.5"], size=(20, 5))
    term.wait_text("too small", timeout=30)
    term.send("ty", literal=True)
    term.send("ky", literal=True)
    term.send("q", literal=True)
    assert term.exit_code() == 0
    assert alive(held.pid)
