"""The dashboard through Textual's Pilot: every key and dialog, on demo data and for real."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Static

from conftest import Spawner, alive
from portside.backend import PortHolders
from portside.demo import DEMO_IDENTITY, DEMO_MONOTONIC, DemoBackend, demo_snapshot
from portside.model import Snapshot
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ActionScreen, TextScreen
from portside.ui.table import SocketTable

SIZE = (150, 45)


def demo_app(backend: DemoBackend | None = None, **kw: Any) -> PortsideApp:
    return PortsideApp(backend or DemoBackend(), clock=lambda: DEMO_MONOTONIC, live=False, **kw)


def drive(app: PortsideApp, body: Callable[[Pilot[int]], Awaitable[None]],
          size: tuple[int, int] = SIZE, snap: Snapshot | None = None) -> None:
    """Run the app headless, feed it the demo snapshot, then run the test body."""
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            app.apply_snapshot(snap or demo_snapshot())
            await pilot.pause()
            await body(pilot)
    asyncio.run(main())


async def until(pilot: Pilot[int], predicate: Callable[[], object], timeout: float = 10.0
                ) -> None:
    """Let the app run until predicate() holds; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.05)


async def arm(pilot: Pilot[int], screen: ActionScreen) -> None:
    """Wait until the dialog accepts a confirmation (it ignores keys until then)."""
    await until(pilot, lambda: screen.armed)


def table(app: App[Any]) -> SocketTable:
    return app.query_one("#table", SocketTable)


def goto(app: App[Any], port: int, state: str = "LISTEN", laddr: str | None = None) -> None:
    """Put the cursor on the first row with this port and state."""
    assert table(app).select(port, state, laddr), f"no row {port} {state}"


def status_text(app: App[Any], selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def notes(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


def test_rows_details_and_cursor_keys() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        assert len(app.model.view) == len(demo_snapshot().sockets)
        goto(app, 3000)
        await pilot.pause()
        details = status_text(app, "#details-body")
        assert "node" in details and "PID 2001" in details and "next dev -p 3000" in details
        assert "bash (1204) ← sshd (812) ← systemd (1)" in details
        await pilot.press("home")
        assert table(app).cursor == 0
        await pilot.press("end")
        assert table(app).cursor == len(app.model.view) - 1
        await pilot.press("pageup", "down", "up")
        assert table(app).cursor < len(app.model.view) - 1
    drive(demo_app(), body)


def test_k_then_n_sends_nothing() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 3000)
        await pilot.press("k")
        assert isinstance(app.screen, ActionScreen)
        assert "SIGKILL" in str(app.screen.query_one("#dialog-title", Static).render())
        assert app.screen.focused is app.screen.query_one("#cancel")  # Cancel has the focus
        await pilot.press("n")
        assert not isinstance(app.screen, ActionScreen)
        await pilot.press("k", "escape")
        assert not isinstance(app.screen, ActionScreen)
        await pilot.press("k")
        screen = app.screen
        assert isinstance(screen, ActionScreen)
        await arm(pilot, screen)
        await pilot.press("enter")  # Enter presses the focused Cancel
        assert not isinstance(app.screen, ActionScreen)
    drive(demo_app(backend), body)
    assert backend.sent == []


def test_t_then_y_terminates_and_reports_the_port_freed() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 3000)
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ActionScreen)
        body_text = status_text(app, "#dialog-body")
        for expected in ("PID 2001", "node", "user alice", "started", "next dev -p 3000",
                         "held by 1 process"):
            assert expected in body_text
        await arm(pilot, screen)
        await pilot.press("y")
        await until(pilot, lambda: screen.state == "done")
        assert "Port 3000 is free" in status_text(app, "#dialog-status")
        await pilot.press("escape")
    drive(demo_app(backend), body)
    assert backend.sent == [(2001, signal.SIGTERM)]


def test_sigterm_ignored_then_sigkill_exactly_the_remaining_holders() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 8080)  # gunicorn master ignores SIGTERM
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ActionScreen)
        assert "3 processes hold this socket" in status_text(app, "#dialog-body")
        await arm(pilot, screen)
        await pilot.press("y")
        await until(pilot, lambda: screen.state == "done")
        assert "still held by PID 3100" in status_text(app, "#dialog-status")
        # The master ignored SIGTERM: SIGKILL is offered to it alone. Its workers hold the
        # socket too but got no signal: they are named, never offered SIGKILL.
        assert [t.pid for t in screen.remaining] == [3100]
        assert screen.result is not None and [t.pid for t in screen.result.more] == [3101, 3102]
        await pilot.press("k")  # typed ahead of the outcome: ignored
        assert backend.sent == [(3100, signal.SIGTERM)]
        await arm(pilot, screen)
        await pilot.press("k")
        await until(pilot, lambda: screen.state == "done" and not screen.remaining)
        assert "Port 8080 is free" in status_text(app, "#dialog-status")
    drive(demo_app(backend, grace=0.3), body)
    # SIGKILL to the master took its workers with it: they were not signalled twice.
    assert backend.sent == [(3100, signal.SIGTERM), (3100, signal.SIGKILL)]


def test_target_is_frozen_when_the_dialog_opens() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        goto(app, 3000)
        await pilot.press("t")
        assert isinstance(app.screen, ActionScreen)
        # Behind the dialog: a new sample arrives and the table is re-sorted.
        app.model.sort_column, app.model.reverse = "pid", True
        app.apply_snapshot(demo_snapshot(taken_at=demo_snapshot().taken_at + 2))
        await pilot.pause()
        assert table(app).current is not None
        screen = app.screen
        assert isinstance(screen, ActionScreen)
        await arm(pilot, screen)
        await pilot.press("y")
        await until(pilot, lambda: backend.sent)
    drive(demo_app(backend), body)
    assert backend.sent == [(2001, signal.SIGTERM)]


def test_invalid_filter_keeps_the_last_valid_one() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        await pilot.press("slash", *":5432")
        box = app.query_one("#filter", Input)
        assert box.has_focus and box.value == ":5432"
        ports = {r.sock.lport for r in app.model.view} | {r.sock.rport for r in app.model.view}
        assert 5432 in ports and 3000 not in {r.sock.lport for r in app.model.view}
        shown = [r.key for r in app.model.view]
        box.value = ":5432 port:abc"  # as if pasted
        await pilot.pause()
        assert box.has_class("-invalid")
        error = status_text(app, "#filter-error")
        assert "port:abc" in error and "still showing: :5432" in error
        assert [r.key for r in app.model.view] == shown
        await pilot.press("escape")  # clears the filter and goes back to the table
        assert box.value == "" and not box.has_class("-invalid")
        assert len(app.model.view) == len(demo_snapshot().sockets)
        assert table(app).has_focus
    drive(demo_app(), body)


def test_letters_typed_in_the_filter_trigger_nothing() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        goto(app, 3000)
        await pilot.press("slash", *"tkfpazwbsdcq?")
        await pilot.pause()
        assert app.is_running and not isinstance(app.screen, (ActionScreen, TextScreen))
        assert not app.paused and not app.model.fold and not app.all_states
        assert not app.watched and app.model.sort_column == "port"
        assert app.query_one("#filter", Input).value == "tkfpazwbsdcq?"
    drive(demo_app(backend), body)
    assert backend.sent == []


@pytest.mark.parametrize(("port", "state", "why"), [
    (3000, "TIME_WAIT", "TIME_WAIT"),  # no process behind it
    (2024, "LISTEN", "sudo"),  # owner unknown
])
def test_actions_unavailable_say_why(port: int, state: str, why: str) -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        goto(app, port, state)
        await pilot.pause()
        for action in ("terminate", "kill", "free"):
            assert app.check_action(action, ()) is None  # dimmed in the footer
        await pilot.press("t", "k", "f")
        assert not isinstance(app.screen, ActionScreen)
        assert sum(why in n for n in notes(app)) == 3
    drive(demo_app(backend), body)
    assert backend.sent == []


def test_our_parents_are_protected() -> None:
    ident = DEMO_IDENTITY.__class__(**{**{f: getattr(DEMO_IDENTITY, f) for f in (
        "hostname", "user", "is_root", "pid", "human")}, "protected": frozenset({2001})})
    backend = DemoBackend(identity=ident)

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 3000)
        await pilot.press("t")
        assert not isinstance(app.screen, ActionScreen)
        assert any("parents" in n for n in notes(app))
    drive(demo_app(backend), body)
    assert backend.sent == []


def test_another_users_process_needs_its_pid_typed() -> None:
    backend = DemoBackend()

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 5432, laddr="127.0.0.1")  # postgres's
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ActionScreen) and screen.plan.typed_pid == 1500
        assert screen.focused is screen.query_one("#typed-pid")  # the box has the focus
        await arm(pilot, screen)
        await pilot.press("y", "enter")  # y is not a digit: the box stays empty
        assert screen.state == "confirm" and "Type 1500" in status_text(app, "#dialog-status")
        assert "you typed nothing" in status_text(app, "#dialog-status")
        await pilot.press(*"1499", "enter")
        assert screen.state == "confirm"
        screen.query_one("#typed-pid", Input).value = ""
        await pilot.press(*"1500", "enter")
        await until(pilot, lambda: screen.state == "done")
        # The demo user is not root: the kernel says no, and we say so.
        assert "permission denied" in status_text(app, "#dialog-status")
        assert "sudo" in status_text(app, "#dialog-status")
    drive(demo_app(backend), body)
    assert backend.sent == []


def test_free_port_lists_every_holder() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 8080)
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, ActionScreen)
        assert [t.pid for t in screen.plan.targets] == [3100, 3101, 3102]
        text = status_text(app, "#dialog-body")
        assert all(f"PID {p}" in text for p in (3100, 3101, 3102))
        assert "Free port 8080" in status_text(app, "#dialog-title")
        await pilot.press("n")
    drive(demo_app(), body)


def test_views_fold_all_states_sort_pause_details() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        await pilot.press("z")
        assert any(r.folded for r in app.model.view)
        await pilot.press("z")
        assert not any(r.folded for r in app.model.view)
        await pilot.press("a")
        assert app.all_states
        app.apply_snapshot(demo_snapshot(all_states=True))
        await pilot.pause()
        assert any(r.sock.state == "ESTABLISHED" for r in app.model.view)
        await pilot.press("s")
        assert app.model.sort_column == "state"
        await pilot.press("S")
        assert app.model.reverse
        await pilot.click(SocketTable, offset=(0, 0))  # the PROTO header
        assert app.model.sort_column == "proto" and not app.model.reverse
        await pilot.press("p")
        assert app.paused and "PAUSED" in status_text(app, "#status")
        await pilot.press("space")
        assert not app.paused
        await pilot.press("d")
        assert not app.query_one("#details").display
        await pilot.press("d")
        assert app.query_one("#details").display
        await pilot.click(SocketTable, offset=(2, 3))
        assert table(app).cursor == 2
    drive(demo_app(), body)


def test_cursor_stays_on_its_socket_across_refreshes_and_sorts() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        goto(app, 8080)
        key = table(app).current.key  # type: ignore[union-attr]
        for keys in (("s",), ("s", "s"), ("S",)):
            await pilot.press(*keys)
            assert table(app).current.key == key  # type: ignore[union-attr]
        app.apply_snapshot(demo_snapshot(gone=frozenset({2301, 2001})))
        await pilot.pause()
        assert table(app).current.key == key  # type: ignore[union-attr]
    drive(demo_app(), body)


class BrokenEvent(threading.Event):
    """An Event whose first wait() raises: the sampler loop itself dies (a bug, say)."""

    broken = True

    def wait(self, timeout: float | None = None) -> bool:
        if BrokenEvent.broken:
            BrokenEvent.broken = False
            raise RuntimeError("the sampler loop broke")
        return super().wait(timeout)


def test_the_sampler_is_restarted_if_it_dies() -> None:
    backend = DemoBackend()
    app = PortsideApp(backend, interval=0.5)
    app._wake = BrokenEvent()

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "sampler stopped" in status_text(app, "#banner"))
            assert "the sampler loop broke" in status_text(app, "#banner")
            samples = backend.samples
            await until(pilot, lambda: backend.samples > samples)  # it runs again
            await until(pilot, lambda: "sampler stopped" not in status_text(app, "#banner"))
    asyncio.run(main())


def test_watch_notifies_when_the_port_is_freed_and_taken() -> None:
    bells: list[int] = []

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        goto(app, 3000)
        await pilot.press("w")
        assert 3000 in app.watched and ":3000" in status_text(app, "#status")
        app.apply_snapshot(demo_snapshot(gone=frozenset({2001})))
        await pilot.pause()
        assert any("Port 3000 is free" in n for n in notes(app)) and bells
        app.apply_snapshot(demo_snapshot())
        await pilot.pause()
        assert any("something listens now: PID 2001 (node)" in n for n in notes(app))
        assert len(bells) == 2
    drive(demo_app(), body)


def test_watch_from_the_command_line_sets_a_baseline_first() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        assert not any("Port 3000" in n for n in notes(app))  # first sample: baseline only
        app.apply_snapshot(demo_snapshot(gone=frozenset({2001})))
        await pilot.pause()
        assert any("Port 3000 is free" in n for n in notes(app))
    drive(demo_app(watch=[3000]), body)


def test_probe_help_copy_and_palette() -> None:
    copied: list[str] = []

    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign, assignment]
        goto(app, 3000)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        report = status_text(app, "#report-body")
        assert "Port 3000" in report and "PID 2001 (node)" in report and "EADDRINUSE" in report
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, TextScreen)
        assert "Filter syntax" in status_text(app, "#report-body")
        await pilot.press("escape")
        await pilot.press("c", "C")
        assert copied == ["2001", "node /home/alice/shop/node_modules/.bin/next dev -p 3000"]
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Term", "Kill", "Free port", "Pause", "Refresh", "All", "Fold TW", "Watch",
                "Probe", "Sort", "Reverse", "Details", "Copy PID", "Copy cmd", "Help",
                "Filter", "Quit"} <= titles
    drive(demo_app(), body)


def test_markup_and_control_characters_are_shown_as_text() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        goto(app, 9999)
        await pilot.pause()
        row = table(app).current
        assert row is not None
        cells = table(app).cells(row, DEMO_MONOTONIC)
        assert cells["process"] == "[red]evil\\e[2J\\u202eexe"
        details = status_text(app, "#details-body")
        assert "[bold]hi[/bold]\\x07" in details and "\x1b" not in details
    drive(demo_app(), body)


def test_tiny_terminal_shows_a_notice_and_q_quits() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert app.screen.has_class("too-small")
        assert app.query_one("#too-small").display
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    drive(demo_app(), body, size=(20, 5))


def test_initial_query_and_bad_initial_query() -> None:
    async def body(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, PortsideApp)
        assert {r.sock.lport for r in app.model.view} == {8000, 3000}
        assert app.query_one("#filter", Input).value == ":3000 :8000 state:listen"
    drive(demo_app(query=[":3000", ":8000", "state:listen"]), body)


class FlakyBackend(DemoBackend):
    """Fails the first samples: the banner must say so and sampling must go on."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def sample(self, all_states: bool) -> Snapshot:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("netlink went away")
        return super().sample(all_states)


def test_a_failing_sample_shows_a_banner_and_retries() -> None:
    backend = FlakyBackend(failures=1)
    app = PortsideApp(backend, interval=0.5)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "Sampling failed" in status_text(app, "#banner"))
            assert "netlink went away" in status_text(app, "#banner")
            await until(pilot, lambda: app.model.snapshot is not None, timeout=10)
            assert "Sampling failed" not in status_text(app, "#banner")
            samples = backend.samples
            await pilot.press("r")  # refresh now
            await until(pilot, lambda: backend.samples > samples)
            await pilot.press("p")
            paused_at = backend.samples
            await pilot.pause(0.3)
            assert backend.samples <= paused_at + 1  # at most one already under way
    asyncio.run(main())


@pytest.mark.skipif(not hasattr(asyncio, "run"), reason="needs asyncio.run")
def test_terminate_a_real_listener_through_the_ui(spawn: Spawner) -> None:
    from portside.system.backend import LiveBackend

    held = spawn()
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            def row_index() -> int | None:
                for i, r in enumerate(app.model.view):
                    if r.sock.lport == held.port and r.sock.state == "LISTEN":
                        return i
                return None
            await until(pilot, lambda: row_index() is not None)
            index = row_index()
            assert index is not None
            table(app).move_to(index)
            await pilot.pause()
            row = table(app).current
            assert row is not None and row.sock.pid == held.pid
            await pilot.press("t")
            screen = app.screen
            assert isinstance(screen, ActionScreen)
            assert screen.plan.targets[0].pid == held.pid
            await arm(pilot, screen)
            if screen.plan.typed_pid is not None:  # e.g. run under sudo
                await pilot.press("y", *str(held.pid), "enter")
            else:
                await pilot.press("y")
            await until(pilot, lambda: screen.state == "done", timeout=15)
            assert f"Port {held.port} is free" in status_text(app, "#dialog-status")
    asyncio.run(main())
    assert not alive(held.pid)


def test_holders_type_is_what_the_dialog_reads() -> None:
    h = DemoBackend().holders(8080)
    assert isinstance(h, PortHolders) and not h.free
    assert [t.pid for t in h.targets] == [3100, 3101, 3102]


def test_changed_region_is_the_box_around_changed_characters() -> None:
    from portside.ui.table import changed_region

    assert changed_region(["abc", "def"], ["abc", "def"]) is None
    assert changed_region(["a 59s", "b 10s", "c 1m"], ["a 58s", "b 10s", "c 1m"]) == (3, 0, 1, 1)
    assert changed_region(["x 9s ", "y 10s", "z"], ["x 8s ", "y 9s ", "z"]) == (2, 0, 3, 2)
    assert changed_region(["名 9s"], ["名 8s"]) is None  # wide characters: not columns


def test_a_ticking_countdown_repaints_only_its_cells() -> None:
    clock = [DEMO_MONOTONIC]
    app = PortsideApp(DemoBackend(), clock=lambda: clock[0], live=False)

    async def body(pilot: Pilot[int]) -> None:
        t = table(app)
        t.tick()
        calls: list[tuple[Any, ...]] = []
        real = t.refresh

        def spy(*regions: Any, **kw: Any) -> Any:
            calls.append(regions)
            return real(*regions, **kw)

        t.refresh = spy  # type: ignore[method-assign]
        rows = app.model.view[:t.size.height - 1]
        before = [t.line_text(r, clock[0]) for r in rows]
        clock[0] += 3
        t.tick()
        after = [t.line_text(r, clock[0]) for r in rows]
        assert before != after  # TIME_WAIT countdowns on screen
        (regions,) = calls
        (region,) = regions
        assert 0 < region.width < t.size.width // 4  # the time column, not whole rows
        for y, (a, b) in enumerate(zip(before, after, strict=True)):
            for x, (p, q) in enumerate(zip(a, b, strict=True)):
                if p != q:
                    assert region.contains(x, y + 1), (x, y)  # + 1: the header line
        calls.clear()
        t.tick()
        assert not calls  # nothing changed: nothing repainted
        await pilot.press("down")
        assert calls and calls[-1] == ()  # the cursor moved: the whole table
    drive(app, body)
