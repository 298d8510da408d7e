"""The dashboard through Textual's Pilot: every key and dialog, on demo data and for real."""

from __future__ import annotations

import gc
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
from textual.command import CommandList
from textual.widgets import Input

from conftest import Spawner, alive
from portside.backend import PortHolders
from portside.demo import DEMO_IDENTITY, DEMO_MONOTONIC, DemoBackend, demo_snapshot
from portside.model import Snapshot
from portside.query import parse
from portside.ui.app import PortsideApp
from portside.ui.dialogs import ConfirmScreen, TextScreen
from portside.ui.main import FULL_GC, NO_FULL_PASS, FilterReady
from portside.ui.table import SocketTable
from portside.ui.widgets import Banner, DetailsPane, FilterInput, StatusLine
from uikit import (
    SIZE,
    demo_app,
    dialog,
    goto,
    highlight,
    main,
    notes,
    running,
    settled,
    table,
    until,
)


def header(app: Any) -> str:
    return str(main(app).query_one(StatusLine).render())


def banner(app: Any) -> str:
    return main(app).query_one(Banner).text


def details(app: Any) -> str:
    return main(app).query_one(DetailsPane).text


async def test_rows_details_and_cursor_keys() -> None:
    app = demo_app()
    async with running(app) as pilot:
        assert len(app.model.view) == len(demo_snapshot().sockets)
        goto(app, 3000)
        await pilot.pause()
        text = details(app)
        assert "node" in text and "PID 2001" in text and "next dev -p 3000" in text
        assert "bash (1204) ← sshd (812) ← systemd (1)" in text
        await pilot.press("home")
        assert table(app).cursor == 0
        await pilot.press("end")
        assert table(app).cursor == len(app.model.view) - 1
        await pilot.press("pageup", "down", "up")
        assert table(app).cursor < len(app.model.view) - 1


# Asking, then acting ---------------------------------------------------------------------


async def test_k_then_n_or_escape_or_cancel_sends_nothing() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("k")
        screen = await dialog(pilot)
        assert "SIGKILL" in screen.plan.title and screen.plan.sig == signal.SIGKILL
        assert screen.focused is screen.query_one("#cancel")  # Cancel has the focus
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("k")
        await dialog(pilot)
        await pilot.press("escape")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("k")
        await dialog(pilot)
        await pilot.press("enter")  # Enter presses the focused Cancel
        assert not isinstance(app.screen, ConfirmScreen)
        await settled(pilot)
        assert sum("Cancelled: nothing was sent" in n for n in notes(app)) == 3
    assert backend.sent == []


async def test_t_then_y_terminates_and_reports_the_port_freed() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("t")
        screen = await dialog(pilot)
        body = str(screen.query_one("#dialog-body").render())
        for expected in ("PID 2001", "node", "user alice", "started", "next dev -p 3000",
                         "held by 1 process"):
            assert expected in body
        await pilot.press("y")
        assert not isinstance(app.screen, ConfirmScreen)  # the dialog decided; the app acts
        await settled(pilot)
        assert any("Port 3000 is free" in n for n in notes(app))
        assert "Port 3000 is free" in main(app).activity
    assert backend.sent == [(2001, signal.SIGTERM)]


class SlowToExit(DemoBackend):
    """The signalled process takes a few polls to let go of its port."""

    def __init__(self, polls: int) -> None:
        super().__init__()
        self.polls = polls

    def holders(self, port: int) -> PortHolders:
        if self.polls > 0:
            self.polls -= 1
            return PortHolders.of(port, demo_snapshot())  # still held, as before the signal
        return super().holders(port)


async def test_escape_during_the_countdown_still_reports_the_outcome() -> None:
    backend = SlowToExit(polls=5)
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("t")
        await dialog(pilot)
        await pilot.press("y")
        await until(pilot, lambda: "waiting for port 3000" in main(app).activity)
        await pilot.press("escape")  # during the countdown: the action goes on
        await settled(pilot)
        assert backend.polls == 0
        assert any("Port 3000 is free" in n for n in notes(app))
    assert backend.sent == [(2001, signal.SIGTERM)]


async def test_sigterm_ignored_then_sigkill_exactly_the_remaining_holders() -> None:
    backend = DemoBackend()
    app = demo_app(backend, grace=0.3)
    async with running(app) as pilot:
        goto(app, 8080)  # gunicorn master ignores SIGTERM
        await pilot.press("t")
        first = await dialog(pilot)
        assert "3 processes hold this socket" in str(first.query_one("#dialog-body").render())
        await pilot.press("y")
        await settled(pilot)
        assert any("still held by PID 3100" in n for n in notes(app))
        # A new question: SIGKILL for the master alone, which got SIGTERM. Its workers hold
        # the socket too but got no signal: they are the other choice, never SIGKILLed.
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        follow = app.screen
        assert isinstance(follow, ConfirmScreen) and follow is not first
        assert follow.plan.sig == signal.SIGKILL
        assert [t.pid for t in follow.plan.targets] == [3100]
        assert follow.alternative is not None
        assert [t.pid for t in follow.alternative.targets] == [3101, 3102]
        assert follow.alternative.sig == signal.SIGTERM
        assert "still held by PID 3100" in str(follow.query_one("#dialog-context").render())
        await pilot.press("k")  # typed ahead of the question: ignored
        assert backend.sent == [(3100, signal.SIGTERM)]
        await dialog(pilot)
        await pilot.press("k")
        await settled(pilot)
        assert any("Port 8080 is free" in n for n in notes(app))
    # SIGKILL to the master took its workers with it: they were not signalled twice.
    assert backend.sent == [(3100, signal.SIGTERM), (3100, signal.SIGKILL)]


async def test_a_shows_the_plan_for_every_holder_and_asks_again() -> None:
    backend = DemoBackend()
    app = demo_app(backend, grace=0.3)
    async with running(app) as pilot:
        goto(app, 8080)
        await pilot.press("t", "a")  # the a comes before the dialog was seen: dropped
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.targets] == [3100]
        await pilot.press("a")
        await until(pilot, lambda: len(screen.plan.targets) == 3)
        assert screen.alternative is None and not screen.armed  # read the new plan first
        await pilot.press("y")
        assert backend.sent == [] and isinstance(app.screen, ConfirmScreen)
        await dialog(pilot)
        await pilot.press("y")
        await settled(pilot)
    assert sorted(backend.sent) == [(3100, signal.SIGTERM), (3101, signal.SIGTERM),
                                    (3102, signal.SIGTERM)]


async def test_target_is_frozen_when_the_dialog_opens() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("t")
        await dialog(pilot)
        # Behind the dialog: a new sample arrives and the table is re-sorted.
        main(app).sort = ("pid", True)
        app.apply_snapshot(demo_snapshot(taken_at=demo_snapshot().taken_at + 2))
        table(app).move_to(0)  # and the cursor is elsewhere (a click, say)
        await pilot.pause()
        current = table(app).current
        assert current is not None and current.sock.lport != 3000
        await pilot.press("y")
        await settled(pilot)
    assert backend.sent == [(2001, signal.SIGTERM)]


async def test_another_users_process_needs_its_pid_typed() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 5432, laddr="127.0.0.1")  # postgres's
        await pilot.press("t")
        screen = await dialog(pilot)
        assert screen.plan.typed_pid == 1500
        assert screen.focused is screen.query_one("#typed-pid")  # the box has the focus
        await pilot.press("y", "enter")  # y is not a digit: the box stays empty
        assert app.screen is screen and "Type 1500" in screen.status_text
        assert "you typed nothing" in screen.status_text
        await pilot.press(*"1499", "enter")
        assert app.screen is screen
        screen.query_one("#typed-pid", Input).value = ""
        await pilot.press(*"1500", "enter")
        assert app.screen is not screen
        await settled(pilot)
        # The demo user is not root: the kernel says no, and we say so.
        assert any("permission denied" in n and "sudo" in n for n in notes(app))
    assert backend.sent == []


async def test_free_port_lists_every_holder() -> None:
    app = demo_app()
    async with running(app) as pilot:
        goto(app, 8080)
        await pilot.press("f")
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.targets] == [3100, 3101, 3102]
        text = str(screen.query_one("#dialog-body").render())
        assert all(f"PID {p}" in text for p in (3100, 3101, 3102))
        assert "Free port 8080" in str(screen.query_one("#dialog-title").render())
        await pilot.press("n")


@pytest.mark.parametrize(("port", "state", "why"), [
    (3000, "TIME_WAIT", "TIME_WAIT"),  # no process behind it
    (2024, "LISTEN", "sudo"),  # owner unknown
])
async def test_actions_unavailable_say_why(port: int, state: str, why: str) -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, port, state)
        await pilot.pause()
        for kind in ("terminate", "kill", "free"):
            assert main(app).check_action("signal", (kind,)) is None  # dimmed in the footer
        await pilot.press("t", "k", "f")
        assert not isinstance(app.screen, ConfirmScreen)
        assert sum(why in n for n in notes(app)) == 3
    assert backend.sent == []


async def test_our_parents_are_protected() -> None:
    ident = DEMO_IDENTITY.__class__(**{**{f: getattr(DEMO_IDENTITY, f) for f in (
        "hostname", "user", "is_root", "pid", "human")}, "protected": frozenset({2001})})
    backend = DemoBackend(identity=ident)
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("t")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("parents" in n for n in notes(app))
    assert backend.sent == []


# The view settings: one assignment each, and everything follows -----------------------


async def test_fold_updates_the_rows_and_the_header_at_once() -> None:
    app = demo_app()
    async with running(app) as pilot:
        assert "folded" not in header(app)
        await pilot.press("z")
        assert any(r.folded for r in app.model.view)
        assert "TIME_WAIT folded" in header(app)  # not at the next tick: now
        await pilot.press("z")
        assert not any(r.folded for r in app.model.view) and "folded" not in header(app)


async def test_a_filter_updates_the_header_count_at_once() -> None:
    app = demo_app()
    async with running(app) as pilot:
        total = len(demo_snapshot().sockets)
        await pilot.press("slash", *":3000")
        assert f"{app.model.shown} of {total} sockets" in header(app)
        assert app.model.shown < total


def _big(n: int) -> Snapshot:
    """The demo machine with n more TIME_WAIT sockets, from ports 20000 up."""
    from portside.model import Socket
    base = demo_snapshot()
    extra = tuple(Socket("tcp", "ipv4", "127.0.0.1", 20000 + i, "127.0.0.1", 40000,
                         "TIME_WAIT", ends=base.monotonic + 30.0) for i in range(n))
    return base._replace(sockets=base.sockets + extra)


async def test_a_filter_on_many_rows_is_applied_by_a_worker_and_the_last_typed_wins() -> None:
    app = demo_app()
    async with running(app, snap=_big(6000)) as pilot:
        screen = main(app)
        assert len(app.model.rows) > screen.sync_rows  # the worker's path
        before = app.model.version
        threads: list[str] = []
        compose = app.model.compose

        def spy(*args: Any, **kw: Any) -> Any:
            threads.append(threading.current_thread().name)
            return compose(*args, **kw)

        app.model.compose = spy  # type: ignore[method-assign]
        await pilot.press("slash", *":2000", "1")
        # Each key went into the box at once; the table follows when the worker is done.
        assert screen.query_one("#filter", Input).value == ":20001"
        await until(pilot, lambda: screen.filtering is None)
        assert app.model.query.source == ":20001" and screen.filter_query.source == ":20001"
        assert [r.sock.lport for r in app.model.view] == [20001]
        assert "1 of" in header(app) and "filtering" not in header(app)
        assert app.model.version > before
        assert threads and threading.main_thread().name not in threads, threads
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace")
        await until(pilot, lambda: screen.filtering is None)
        assert screen.query_one("#filter", Input).value == ":"
        await pilot.press("backspace")  # the empty filter: every row, in port order
        await until(pilot, lambda: screen.filtering is None)
        assert len(app.model.view) == len(app.model.rows)
        ports = [r.sock.lport for r in app.model.view]
        assert ports == sorted(ports)


async def test_a_filter_worker_result_for_old_rows_or_an_old_filter_is_not_shown() -> None:
    app = demo_app()
    async with running(app, snap=_big(6000)) as pilot:
        screen = main(app)
        await pilot.press("slash", *":20001")
        await until(pilot, lambda: screen.filtering is None)
        shown = list(app.model.view)
        rows = list(app.model.rows.values())
        made = app.model.compose(rows, parse(":20002"), keep=False)
        assert made is not None
        # Typed over already: a result for ":20002" while ":20003" is applied is dropped.
        screen.filtering = parse(":20003")
        screen.on_filter_ready(FilterReady(parse(":20002"), app.model.version, *made))
        assert app.model.view == shown
        # Made for this filter, but the rows changed since: the view is made from the rows
        # of now, never the stale one (here, the view made for :20002).
        pending = screen.filtering
        screen.on_filter_ready(FilterReady(pending, app.model.version - 1, *made))
        assert screen.filtering is None and app.model.query is pending
        assert [r.sock.lport for r in app.model.view] == [20003]
        assert "filtering" not in header(app)
        # While one is pending, the header says so.
        screen.filtering = parse(":1")
        screen.refresh_header()
        assert "filtering…" in header(app)


async def test_the_collector_passes_in_full_only_every_few_minutes() -> None:
    # At 50k-100k sockets a full pass of the cyclic collector walked every socket and row,
    # 50-80 ms, once or more a sample: the dashboard runs one every FULL_GC seconds.
    before = gc.get_threshold()
    clock = [DEMO_MONOTONIC]
    app = demo_app(clock=lambda: clock[0])
    full: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            full.append(1)

    async with running(app, snap=_big(2000)):
        assert gc.get_threshold()[2] == NO_FULL_PASS
        gc.callbacks.append(seen)
        try:
            for k in range(1, 4):  # samples within FULL_GC: no full pass
                clock[0] = DEMO_MONOTONIC + k
                app.apply_snapshot(_big(2000))
            assert not full
            clock[0] = DEMO_MONOTONIC + FULL_GC + 1
            app.apply_snapshot(_big(2000))
            assert len(full) == 1
        finally:
            gc.callbacks.remove(seen)
    assert gc.get_threshold() == before  # the collector as it was, once the app is gone


async def test_sort_orders_the_rows_and_reverses_them() -> None:
    app = demo_app()
    async with running(app) as pilot:
        await pilot.press("s")  # port -> state
        assert main(app).sort == ("state", False)
        states = [r.sock.state for r in app.model.view]
        assert states == sorted(states) and len(set(states)) > 2
        await pilot.press("S")
        assert [r.sock.state for r in app.model.view] == sorted(states, reverse=True)
        await pilot.click(SocketTable, offset=(0, 0))  # the PROTO header
        assert main(app).sort == ("proto", False)
        protos = [r.sock.proto_label for r in app.model.view]
        assert protos == sorted(protos)
        await pilot.click(SocketTable, offset=(0, 0))  # again: reversed
        assert main(app).sort == ("proto", True)


async def test_all_states_samples_every_state() -> None:
    backend = DemoBackend()
    app = PortsideApp(backend, interval=3600)
    async with running(app) as pilot:
        await until(pilot, lambda: app.model.snapshot is not None)
        assert not any(r.sock.state == "ESTABLISHED" for r in app.model.view)
        await pilot.press("a")
        await until(pilot, lambda: any(r.sock.state == "ESTABLISHED" for r in app.model.view))
        assert app.sampling is not None and app.sampling.all_states


async def test_details_pane_hides_and_shows() -> None:
    app = demo_app()
    async with running(app) as pilot:
        pane = main(app).query_one(DetailsPane)
        await pilot.press("d")
        assert not pane.display
        await pilot.press("d")
        assert pane.display
        await pilot.click(SocketTable, offset=(2, 3))
        assert table(app).cursor == 2


async def test_cursor_stays_on_its_socket_across_refreshes_and_sorts() -> None:
    app = demo_app()
    async with running(app) as pilot:
        goto(app, 8080)
        key = table(app).current.key  # type: ignore[union-attr]
        for keys in (("s",), ("s", "s"), ("S",)):
            await pilot.press(*keys)
            assert table(app).current.key == key  # type: ignore[union-attr]
        app.apply_snapshot(demo_snapshot(gone=frozenset({2301, 2001})))
        await pilot.pause()
        assert table(app).current.key == key  # type: ignore[union-attr]


async def test_typing_a_filter_never_re_lays_out_the_screen() -> None:
    # A layout repaints every widget: tens of milliseconds a key with a big table. The
    # table's own size changes with the rows a filter leaves; the box's never does.
    app = demo_app()
    async with running(app) as pilot:
        screen = main(app)
        box = screen.query_one(FilterInput)
        layouts: list[str] = []
        refresh = box.refresh

        def counted(*args: Any, layout: bool = False, **kw: Any) -> Any:
            if layout:
                layouts.append(box.value)
            return refresh(*args, layout=layout, **kw)

        await pilot.press("slash")
        await pilot.pause()
        box.refresh = counted  # type: ignore[method-assign]
        await pilot.press(*"state:", *"tw proc:[b]x", "space", *"port:30-")
        await pilot.pause()
        assert box.value == "state:tw proc:[b]x port:30-" and box.has_class("-invalid")
        assert "port:30-" in box.error and not layouts, layouts
        # The reason is in the box's border, as text: a typed "[b]" is never markup.
        assert box.border_subtitle is not None and "port:30-" in str(box.border_subtitle)
        await pilot.press(*["backspace"] * 8)
        await pilot.pause()
        assert box.error == "" and not box.has_class("-invalid") and not layouts, layouts
        assert not box.border_subtitle
        assert app.model.query.source == "state:tw proc:[b]x "


async def test_invalid_filter_keeps_the_last_valid_one() -> None:
    app = demo_app()
    async with running(app) as pilot:
        await pilot.press("slash", *":5432")
        box = main(app).query_one("#filter", Input)
        assert box.has_focus and box.value == ":5432"
        ports = {r.sock.lport for r in app.model.view} | {r.sock.rport for r in app.model.view}
        assert 5432 in ports and 3000 not in {r.sock.lport for r in app.model.view}
        shown = [r.key for r in app.model.view]
        box.value = ":5432 port:abc"  # as if pasted
        await pilot.pause()
        assert box.has_class("-invalid")
        error = main(app).query_one(FilterInput).error
        assert "port:abc" in error and "still showing: :5432" in error
        assert [r.key for r in app.model.view] == shown
        await pilot.press("escape")  # clears the filter and goes back to the table
        assert box.value == "" and not box.has_class("-invalid")
        assert len(app.model.view) == len(demo_snapshot().sockets)
        assert table(app).has_focus


async def test_letters_typed_in_the_filter_trigger_nothing() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("slash", *"tkfpazwbsdcq?")
        await pilot.pause()
        screen = main(app)
        assert app.is_running and app.screen is screen
        assert not screen.paused and not screen.fold and not screen.all_states
        assert not screen.watched and screen.sort == ("port", False)
        assert screen.query_one("#filter", Input).value == "tkfpazwbsdcq?"
    assert backend.sent == []


async def test_initial_query() -> None:
    app = demo_app(query=[":3000", ":8000", "state:listen"])
    async with running(app):
        assert {r.sock.lport for r in app.model.view} == {8000, 3000}
        assert main(app).query_one("#filter", Input).value == ":3000 :8000 state:listen"


async def test_a_bad_initial_query_is_marked_and_shows_everything() -> None:
    app = demo_app(query="port:abc")
    async with running(app):
        box = main(app).query_one("#filter", Input)
        assert box.value == "port:abc" and box.has_class("-invalid")
        assert "port:abc" in main(app).query_one(FilterInput).error
        assert len(app.model.view) == len(demo_snapshot().sockets)


# The sampler ------------------------------------------------------------------------------


class SpyBackend(DemoBackend):
    """Counts samples and the settings each was taken with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[bool] = []
        self.released: list[tuple[int, bool]] = []
        self.taken: Callable[[], bool] = lambda: False

    def sample(self, all_states: bool) -> Snapshot:
        self.calls.append(all_states)
        return super().sample(all_states)

    def release_memory(self) -> None:
        # When: after how many samples, and whether the table had taken the last in.
        self.released.append((len(self.calls), self.taken()))


def sampler_running(app: PortsideApp) -> bool:
    return any(w.name == "sampler" and not w.is_finished and not w.is_cancelled
               for w in app.workers)


async def test_paused_means_no_sample_at_all() -> None:
    backend = SpyBackend()
    app = PortsideApp(backend, interval=0.5)
    async with running(app) as pilot:
        await until(pilot, lambda: len(backend.calls) >= 2)
        await pilot.press("p")
        assert "PAUSED" in header(app)
        await until(pilot, lambda: not sampler_running(app))  # no thread left to sample
        taken = len(backend.calls)
        await pilot.press("r")  # refresh while paused: still nothing
        await until(pilot, lambda: not sampler_running(app))
        assert len(backend.calls) == taken
        await pilot.press("space")  # resume
        await until(pilot, lambda: len(backend.calls) > taken)
        assert "PAUSED" not in header(app)


async def test_memory_goes_back_once_each_sample_is_taken_in() -> None:
    backend = SpyBackend()
    app = PortsideApp(backend, interval=0.5)
    backend.taken = lambda: app.model.snapshot is not None
    async with running(app) as pilot:
        await until(pilot, lambda: len(backend.released) >= 2)
        assert backend.released[:2] == [(1, True), (2, True)]


async def test_refresh_samples_now() -> None:
    backend = SpyBackend()
    app = PortsideApp(backend, interval=3600)
    async with running(app) as pilot:
        await until(pilot, lambda: len(backend.calls) == 1)
        await pilot.press("r")
        await until(pilot, lambda: len(backend.calls) == 2)


async def test_the_sampler_is_restarted_if_it_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    from portside.ui.main import MainScreen

    broken = [True]
    real = MainScreen.take_sample

    def take_sample(self: MainScreen, snap: Snapshot, sampled_at: float) -> None:
        if broken[0]:
            broken[0] = False
            raise RuntimeError("the sampler loop broke")  # a bug outside the sample's try
        real(self, snap, sampled_at)

    monkeypatch.setattr(MainScreen, "take_sample", take_sample)
    backend = SpyBackend()
    app = PortsideApp(backend, interval=0.5)
    async with running(app) as pilot:
        await until(pilot, lambda: "sampler stopped" in banner(app))
        assert "the sampler loop broke" in banner(app)
        # It runs again: a sample reaches the screen (the model takes it on the sampler's
        # thread, the screen then).
        await until(pilot, lambda: main(app).sampled_at is not None)
        assert app.model.snapshot is not None and "sampler stopped" not in banner(app)


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


async def test_a_failing_sample_shows_a_banner_and_retries() -> None:
    backend = FlakyBackend(failures=1)
    app = PortsideApp(backend, interval=0.5)
    async with running(app) as pilot:
        await until(pilot, lambda: "Sampling failed" in banner(app))
        assert "netlink went away" in banner(app)
        await until(pilot, lambda: main(app).sampled_at is not None)
        assert app.model.snapshot is not None and "Sampling failed" not in banner(app)


# Watch, probe, copy, help, palette ----------------------------------------------------


async def test_watch_notifies_when_the_port_is_freed_and_taken() -> None:
    bells: list[int] = []
    clock = [DEMO_MONOTONIC]
    app = demo_app(clock=lambda: clock[0])
    async with running(app) as pilot:
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        goto(app, 3000)
        await pilot.press("w")
        assert 3000 in main(app).watched and ":3000" in header(app)
        app.apply_snapshot(demo_snapshot(gone=frozenset({2001})))
        await pilot.pause()
        assert any("Port 3000 is free" in n for n in notes(app)) and bells
        clock[0] += 10  # long after: a new server, not a restart
        app.apply_snapshot(demo_snapshot())
        await pilot.pause()
        assert any("something listens now: PID 2001 (node), started by the package script "
                   "npm run dev (PID 2000)" in n
                   for n in notes(app)), notes(app)
        assert len(bells) == 2
        # Freed and taken again within the settle time: something restarts it.
        app.apply_snapshot(demo_snapshot(gone=frozenset({2001})))
        clock[0] += 0.5
        app.apply_snapshot(demo_snapshot())
        await pilot.pause()
        assert any("Port 3000 was taken again 0.5s after it was freed, by PID 2001 (node), "
                   "started by the package script npm run dev (PID 2000): something restarts "
                   "it" in n
                   for n in notes(app)), notes(app)
        await pilot.press("w")
        assert 3000 not in main(app).watched and ":3000" not in header(app)


async def test_watch_from_the_command_line_sets_a_baseline_first() -> None:
    app = demo_app(watch=[3000])
    async with running(app) as pilot:
        assert not any("Port 3000" in n for n in notes(app))  # first sample: baseline only
        app.apply_snapshot(demo_snapshot(gone=frozenset({2001})))
        await pilot.pause()
        assert any("Port 3000 is free" in n for n in notes(app))


async def test_probe_help_and_copy() -> None:
    copied: list[str] = []
    app = demo_app()
    async with running(app) as pilot:
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign, assignment]
        goto(app, 3000)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        report = str(app.screen.query_one("#report-body").render())
        assert "Port 3000" in report and "PID 2001 (node)" in report and "EADDRINUSE" in report
        await pilot.press("escape")
        await pilot.press("question_mark")
        assert isinstance(app.screen, TextScreen)
        help_text = str(app.screen.query_one("#report-body").render())
        assert "Filter syntax" in help_text and "Terminate the highlighted process" in help_text
        await pilot.press("escape")
        await pilot.press("c", "C")
        # Managed by `npm run dev`: c copies what stops it for good; C the command line.
        assert copied == ["kill 2000 2001",
                          "node /home/alice/shop/node_modules/.bin/next dev -p 3000"]
        goto(app, 5173)  # nobody manages it: c copies the PID
        await pilot.press("c")
        assert copied[-1] == "2044"


async def palette_run(pilot: Any, words: str) -> None:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "CommandPalette")
    await pilot.press(*words)
    await until(pilot, lambda: pilot.app.screen.query_one(CommandList).option_count > 0)
    await pilot.press("enter")
    await until(pilot, lambda: type(pilot.app.screen).__name__ != "CommandPalette")
    await pilot.pause()


async def test_the_palette_runs_actions_and_says_why_one_cannot_run() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app) as pilot:
        await palette_run(pilot, "Fold each")
        assert main(app).fold and "TIME_WAIT folded" in header(app)
        goto(app, 3000, "TIME_WAIT")
        await palette_run(pilot, "Terminate the highlighted")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("Not available: a TIME_WAIT socket" in n for n in notes(app))
        goto(app, 3000)
        await palette_run(pilot, "Terminate the highlighted")
        screen = await dialog(pilot)
        assert screen.plan.kind == "terminate" and screen.plan.targets[0].pid == 2001
        await pilot.press("n")
    assert backend.sent == []


async def test_markup_and_control_characters_are_shown_as_text() -> None:
    app = demo_app()
    async with running(app) as pilot:
        goto(app, 9999)
        await pilot.pause()
        row = table(app).current
        assert row is not None
        cells = table(app).cells(row, DEMO_MONOTONIC)
        assert cells["process"] == "[red]evil\\e[2J\\u202eexe"
        assert "[bold]hi[/bold]\\x07" in details(app) and "\x1b" not in details(app)
        main(app).notify("[@click=screen.confirm]x")  # Widget.notify asks for markup=True
        await pilot.pause()
        assert [n.markup for n in app._notifications][-1] is False


# Size --------------------------------------------------------------------------------------


async def test_tiny_terminal_shows_a_notice_and_q_quits() -> None:
    app = demo_app()
    async with running(app, size=(20, 5)) as pilot:
        assert main(app).has_class("-narrow") and main(app).has_class("-short")
        assert main(app).query_one("#too-small").display
        assert not main(app).query_one("#main").display
        await pilot.press("t")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)


async def test_a_resize_behind_a_dialog_reaches_the_main_screen() -> None:
    app = demo_app()
    async with running(app) as pilot:
        screen = main(app)
        goto(app, 3000)
        await pilot.press("t")
        first = await dialog(pilot)
        await pilot.resize_terminal(40, 10)
        await pilot.pause()
        assert not first.has_class("-narrow")  # the dialog is not the main screen
        await pilot.press("n")
        await until(pilot, lambda: screen.has_class("-narrow"))
        assert screen.query_one("#too-small").display
        await pilot.press("question_mark")  # help works when small
        assert isinstance(app.screen, TextScreen)
        await pilot.resize_terminal(*SIZE)
        await pilot.press("escape")
        await until(pilot, lambda: not screen.has_class("-narrow"))
        assert screen.has_class("-normal") or screen.has_class("-wide")
        assert not screen.query_one("#too-small").display


# For real ------------------------------------------------------------------------------


async def test_terminate_a_real_listener_through_the_ui(spawn: Spawner) -> None:
    from portside.system.backend import LiveBackend

    held = spawn()
    app = PortsideApp(LiveBackend(), interval=0.5, grace=10)
    async with running(app) as pilot:
        await highlight(pilot, held.port)
        row = table(app).current
        assert row is not None and row.sock.pid == held.pid
        await pilot.press("t")
        screen = await dialog(pilot)
        assert screen.plan.targets[0].pid == held.pid
        if screen.plan.typed_pid is not None:  # e.g. run under sudo
            await pilot.press(*str(held.pid), "enter")
        else:
            await pilot.press("y")
        await settled(pilot)
        assert any(f"Port {held.port} is free" in n for n in notes(app))
    assert not alive(held.pid)


# Painting ---------------------------------------------------------------------------------


def test_changed_region_is_the_box_around_changed_characters() -> None:
    from portside.ui.table import changed_region

    assert changed_region(["abc", "def"], ["abc", "def"]) is None
    assert changed_region(["a 59s", "b 10s", "c 1m"], ["a 58s", "b 10s", "c 1m"]) == (3, 0, 1, 1)
    assert changed_region(["x 9s ", "y 10s", "z"], ["x 8s ", "y 9s ", "z"]) == (2, 0, 3, 2)
    assert changed_region(["名 9s"], ["名 8s"]) is None  # wide characters: not columns
    # Every pair of changed columns in a line, against a character-by-character compare.
    line = "abcdefghijklmnopq"
    for first in range(len(line)):
        for last in range(first, len(line)):
            other = line[:first] + line[first:last + 1].upper() + line[last + 1:]
            assert changed_region(["-", line], ["-", other]) == (first, 1, last - first + 1, 1)


async def test_the_clock_ticks_between_samples_only_when_they_are_late_or_paused() -> None:
    # An idle dashboard draws once per sample, as htop does once per refresh: a tick in
    # between repainted a young process's uptime every second (a third of its idle CPU).
    clock = [DEMO_MONOTONIC]
    app = demo_app(clock=lambda: clock[0])
    async with running(app):
        screen, t = main(app), table(app)
        ticks: list[float] = []
        real = t.tick

        def spy() -> None:
            ticks.append(clock[0])
            real()

        t.tick = spy  # type: ignore[method-assign]
        interval = screen.interval
        clock[0] += 1
        screen._tick()
        clock[0] += interval  # the next sample is due, not late: still the sample's job
        screen._tick()
        assert ticks == []
        clock[0] += 1.5  # late: the countdowns and the header's age go on by themselves
        screen._tick()
        assert ticks == [clock[0]]
        assert "sample " in str(app.query_one(StatusLine).render())  # "sample 4.5s ago"
        screen.apply_snapshot(demo_snapshot())  # on time again
        screen._tick()
        assert len(ticks) == 2  # the sample's own repaint, no tick
        screen.paused = True
        clock[0] += 1
        screen._tick()
        assert len(ticks) == 3 and ticks[-1] == clock[0]  # paused: the clock still runs


async def test_a_ticking_countdown_repaints_only_its_cells() -> None:
    clock = [DEMO_MONOTONIC]
    app = demo_app(clock=lambda: clock[0])
    async with running(app) as pilot:
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
