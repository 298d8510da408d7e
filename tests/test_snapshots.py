"""Snapshot tests (pytest-textual-snapshot) on the deterministic demo machine, by feature.

Update after an intended change with: .venv/bin/pytest tests/test_snapshots.py --snapshot-update
then look at the SVGs under tests/__snapshots__/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from portside.demo import DemoBackend, demo_snapshot
from portside.ui.app import PortsideApp
from uikit import demo_app, stage

SnapCompare = Callable[..., bool]
SIZE = (120, 36)


def feed(*keys: str, port: int | None = None, snap: Any = None,
         then: Any = None) -> Callable[[Pilot[Any]], Any]:
    async def before(pilot: Pilot[Any]) -> None:
        a = pilot.app
        assert isinstance(a, PortsideApp)
        await pilot.pause()  # the main screen is composed
        a.apply_snapshot(snap() if snap else demo_snapshot())
        if then is not None:
            then(a)
        await stage(pilot, port, keys)
    return before


# The table -----------------------------------------------------------------------------


def test_main_screen(snap_compare: SnapCompare) -> None:
    """The demo machine: listeners, UDP, TIME_WAIT; the banner for sockets we cannot see."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed())


def test_all_states(snap_compare: SnapCompare) -> None:
    """`a`: every TCP state, with the REMOTE column."""
    assert snap_compare(demo_app(), terminal_size=SIZE,
                        run_before=feed(snap=lambda: demo_snapshot(all_states=True),
                                        then=lambda a: setattr(a.main, "all_states", True)))


def test_new_gone_and_changed_marks(snap_compare: SnapCompare) -> None:
    """A second sample: a new listener (highlighted), node gone (struck through), a
    connection whose state changed (marked)."""
    first = demo_snapshot(all_states=True)

    def second(a: PortsideApp) -> None:
        socks = [s for s in first.sockets if 2001 not in s.holders]
        socks = [s._replace(state="CLOSE_WAIT") if s.lport == 443 and s.raddr else s
                 for s in socks]
        nginx = next(s for s in first.sockets if s.lport == 80)
        socks.append(nginx._replace(lport=81, inode=99_001))
        a.main.query_one("#filter", Input).value = "-state:tw"
        a.apply_snapshot(first._replace(sockets=tuple(socks), taken_at=first.taken_at + 2))
    assert snap_compare(demo_app(), terminal_size=SIZE,
                        run_before=feed(snap=lambda: first, then=second))


def test_folded_time_wait(snap_compare: SnapCompare) -> None:
    """`z`: each port's TIME_WAIT sockets in one row, and the header says so."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("z"))


def test_filter_applied(snap_compare: SnapCompare) -> None:
    """An initial filter from the command line."""
    assert snap_compare(demo_app(query=["state:listen", "user:me"]), terminal_size=SIZE,
                        run_before=feed())


def test_details_pane_wide(snap_compare: SnapCompare) -> None:
    """Wide terminals: the details pane beside the table (a breakpoint)."""
    assert snap_compare(demo_app(), terminal_size=(170, 40), run_before=feed(port=8080))


def test_too_small(snap_compare: SnapCompare) -> None:
    """Below 60x12: a notice instead of the table."""
    assert snap_compare(demo_app(), terminal_size=(20, 5), run_before=feed())


# Banners -----------------------------------------------------------------------------------


class Failing(DemoBackend):
    def sample(self, all_states: bool) -> Any:
        raise OSError("netlink went away")


def test_sampler_failure_banner(snap_compare: SnapCompare) -> None:
    """A failing sampler: the error and the retry, in the banner."""
    def failed(a: PortsideApp) -> None:
        a.main.sample_failed("Sampling failed (OSError: netlink went away); retrying in 4.0s")
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed(then=failed))


# Dialogs and panels ------------------------------------------------------------------------


def test_confirm_dialog(snap_compare: SnapCompare) -> None:
    """`t` on one's own process: armed, Cancel focused."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("t", port=3000))


def test_confirm_dialog_with_several_holders(snap_compare: SnapCompare) -> None:
    """`t` on a forking server: the other holders named, `a` offered."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("t", port=8080))


def test_kill_dialog_for_another_users_process(snap_compare: SnapCompare) -> None:
    """`k` on another user's process: its PID must be typed."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("k", port=5432))


def test_probe_panel(snap_compare: SnapCompare) -> None:
    """`b`: why bind() fails on the highlighted port."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("b", port=3000))


def test_help(snap_compare: SnapCompare) -> None:
    """`?`: every key from the action registry, then the filter syntax."""
    assert snap_compare(demo_app(), terminal_size=SIZE, run_before=feed("question_mark"))


def test_command_palette(snap_compare: SnapCompare) -> None:
    """ctrl+p on a TIME_WAIT row: actions by what they do, and why one cannot run."""
    assert snap_compare(demo_app(), terminal_size=SIZE,
                        run_before=feed("ctrl+p", *"Term", port=None,
                                        then=lambda a: a.main.query_one("#table")
                                        .select(3000, "TIME_WAIT")))
