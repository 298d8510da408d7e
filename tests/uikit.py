"""Helpers for driving the dashboard through Textual's Pilot in async tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from textual.pilot import Pilot

from portside.demo import DEMO_MONOTONIC, DemoBackend, demo_snapshot
from portside.model import Snapshot
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen
from portside.ui.main import MainScreen
from portside.ui.table import SocketTable

SIZE = (150, 45)


def demo_app(backend: DemoBackend | None = None, **kw: Any) -> PortsideApp:
    """The dashboard on the demo machine, with no sampler thread and a frozen clock."""
    kw.setdefault("clock", lambda: DEMO_MONOTONIC)
    # Freed ports are not watched for a restarter here (tests of that pass settle=).
    kw.setdefault("settle", 0.0)
    return PortsideApp(backend or DemoBackend(), live=False, **kw)


@asynccontextmanager
async def running(app: PortsideApp, size: tuple[int, int] = SIZE,
                  snap: Snapshot | None = None) -> AsyncIterator[Pilot[int]]:
    """Run the app headless; unless it samples for itself, feed it the demo snapshot."""
    async with app.run_test(size=size, notifications=True) as pilot:
        if not app.live:
            app.apply_snapshot(snap or demo_snapshot())
        await pilot.pause()
        yield pilot


async def until(pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 10.0
                ) -> None:
    """Let the app run until predicate() holds; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.05)


async def dialog(pilot: Pilot[Any]) -> ConfirmScreen:
    """The confirmation on top, once it accepts a confirmation (it ignores keys until)."""
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen)
    await until(pilot, lambda: screen.armed)
    return screen


async def settled(pilot: Pilot[Any]) -> None:
    """Every action worker has finished and its messages are handled."""
    app = pilot.app
    assert isinstance(app, PortsideApp)
    await pilot.pause()
    actions = [w for w in app.workers if w.group == "action"]
    if actions:  # (an empty list would mean every worker, the sampler too)
        await app.workers.wait_for_complete(actions)
    await pilot.pause()


async def stage(pilot: Pilot[Any], port: int | None = None, keys: tuple[str, ...] = ()
                ) -> None:
    """Highlight a port's listener, press keys, and let the screen settle as a user sees
    it: a dialog armed, a worker's panel open."""
    app = pilot.app
    if port is not None:
        goto(app, port)
        await pilot.pause()
    for key in keys:
        await pilot.press(key)
    await pilot.pause()
    if app.workers:
        probes = [w for w in app.workers if w.group == "probe"]
        if probes:
            await app.workers.wait_for_complete(probes)
            await pilot.pause()
    if isinstance(app.screen, ConfirmScreen):  # as it stays once armed
        await dialog(pilot)


async def highlight(pilot: Pilot[Any], port: int, pid: int | None = None) -> None:
    """In a live app: wait for the listening row of this port (held by `pid`, if given)
    and put the cursor on it."""
    app = pilot.app

    def index() -> int | None:
        for i, r in enumerate(main(app).model.view):
            s = r.sock
            if s.lport == port and s.state == "LISTEN" and (pid is None or s.pid == pid):
                return i
        return None

    await until(pilot, lambda: index() is not None)
    found = index()
    assert found is not None
    table(app).move_to(found)
    await pilot.pause()


def main(app: Any) -> MainScreen:
    """The main screen of a portside app."""
    assert isinstance(app, PortsideApp)
    return app.main


def table(app: Any) -> SocketTable:
    """The socket table."""
    return main(app).query_one(SocketTable)


def goto(app: Any, port: int, state: str = "LISTEN", laddr: str | None = None) -> None:
    """Put the cursor on the first row with this port and state."""
    assert table(app).select(port, state, laddr), f"no row {port} {state}"


def text_of(app: Any, selector: str) -> str:
    """The plain text a widget on the screen on top shows."""
    return str(app.screen.query_one(selector).render())


def notes(app: Any) -> list[str]:
    """Every toast shown so far."""
    return [n.message for n in app._notifications]
