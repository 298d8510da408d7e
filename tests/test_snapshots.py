"""Snapshot tests (pytest-textual-snapshot) on the deterministic demo machine.

Update after an intended change with: .venv/bin/pytest tests/test_snapshots.py --snapshot-update
then look at the SVGs under tests/__snapshots__/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from portside.demo import DEMO_MONOTONIC, DemoBackend, demo_snapshot
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ActionScreen
from portside.ui.table import SocketTable
from test_ui import until

SnapCompare = Callable[..., bool]


def app(**kw: Any) -> PortsideApp:
    return PortsideApp(DemoBackend(), clock=lambda: DEMO_MONOTONIC, live=False, **kw)


def feed(*keys: str, port: int | None = None) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        a = pilot.app
        assert isinstance(a, PortsideApp)
        a.apply_snapshot(demo_snapshot())
        await pilot.pause()
        if port is not None:
            a.query_one(SocketTable).select(port)
            await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        screen = a.screen
        if isinstance(screen, ActionScreen):  # as it stays once armed
            await until(pilot, lambda: screen.armed)
    return before


def test_main_screen(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(120, 36), run_before=feed())


def test_filter_applied(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(query=["state:listen", "user:me"]), terminal_size=(120, 36),
                        run_before=feed())


def test_details_pane_wide(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(170, 40), run_before=feed(port=8080))


def test_confirm_dialog(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(120, 36), run_before=feed("t", port=3000))


def test_kill_dialog_for_another_users_process(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(120, 36), run_before=feed("k", port=5432))


def test_folded_time_wait(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(120, 36), run_before=feed("z"))


def test_too_small(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(20, 5), run_before=feed())
