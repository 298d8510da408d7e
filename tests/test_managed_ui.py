"""The dashboard and who manages each holder, on the demo machine: the manager column, the
"managed by" block in the details, the reloader or master told apart from the children
that serve, the dialogs' warning and the plan that frees a port for good."""

from __future__ import annotations

import signal
from types import MappingProxyType

from portside.demo import DemoBackend, demo_snapshot
from portside.ui.dialogs import ConfirmScreen
from uikit import demo_app, dialog, goto, notes, running, settled, table, text_of


async def test_the_manager_column_shows_only_when_a_holder_has_one() -> None:
    app = demo_app()
    async with running(app) as pilot:
        grid = table(app)
        header = grid.render_line(0).text
        assert "MANAGER" in header
        goto(app, 8000)
        row = grid.current
        assert row is not None and grid.cells(row, 0.0)["manager"] == "sh loop"
        goto(app, 5173)
        row = grid.current
        assert row is not None and grid.cells(row, 0.0).get("manager", "") == ""
        app.apply_snapshot(demo_snapshot()._replace(managers=MappingProxyType({})))
        await pilot.pause()
        header = grid.render_line(0).text
        assert "MANAGER" not in header and "PROCESS" in header


async def test_the_details_say_who_manages_it_and_tell_the_master_apart() -> None:
    app = demo_app()
    async with running(app, size=(180, 50)) as pilot:
        goto(app, 8000)
        await pilot.pause()
        text = text_of(app, "#details-body")
        assert "managed by" in text and "shell restart loop (sh)" in text
        assert "PID 2300 sh -c 'while true; do python3 -m http.server 8000" in text
        assert "restarts always" in text and "stop     kill 2300 2301  (c copies it)" in text
        assert "PID 2301 is restarted by the shell loop PID 2300" in text
        assert "PID 2301 python3 (alice)  serves" in text
        goto(app, 8080)
        await pilot.pause()
        text = text_of(app, "#details-body")
        assert "prefork master (gunicorn)" in text
        assert "PID 3100 gunicorn (alice)  master" in text
        assert "PID 3101 gunicorn (alice)  serves" in text
        goto(app, 5173)
        await pilot.pause()
        assert "managed by" not in text_of(app, "#details-body")


async def test_a_long_manager_command_leaves_room_for_the_holder() -> None:
    # A shell's -c script can be pages long: the details show its start, `why` all of it.
    snap = demo_snapshot()
    script = "sh -c 'while true; do python3 -m http.server 8000; done; " + "x" * 5000 + "'"
    managers = {pid: m._replace(command=script) if m.pid == 2300 else m
                for pid, m in snap.managers.items()}
    app = demo_app()
    async with running(app, size=(180, 50)) as pilot:
        app.apply_snapshot(snap._replace(managers=MappingProxyType(managers)))
        goto(app, 8000)
        await pilot.pause()
        text = text_of(app, "#details-body")
        assert "PID 2300 sh -c 'while true; do python3 -m http.server 8000; done; xxx" in text
        assert "x" * 300 not in text and "xxx…" in text


async def test_terminate_on_a_restarted_row_warns_and_offers_freeing_for_good() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app, size=(150, 50)) as pilot:
        goto(app, 8000)
        await pilot.press("t")
        screen = await dialog(pilot)
        body = str(screen.query_one("#dialog-body").render())
        assert "PID 2301 is restarted by the shell loop PID 2300: signalling it frees the " \
            "port only until the shell loop restarts it." in body
        assert "Press a to free it for good instead (kill 2300 2301)." in body
        assert screen.alternative is not None and screen.alternative.for_good
        await pilot.press("a")
        screen = await dialog(pilot)
        plan = screen.plan
        assert plan.for_good and [t.pid for t in plan.first] == [2300]
        assert [t.pid for t in plan.targets] == [2301]
        body = str(screen.query_one("#dialog-body").render())
        assert "First, SIGTERM what restarts the holders:" in body and "(restarter)" in body
        await pilot.press("y")
        await settled(pilot)
        # The loop first; the server went with it, so it needed no signal of its own.
        assert backend.sent == [(2300, signal.SIGTERM)]
        assert any("Port 8000 is free." in n for n in notes(app)), notes(app)
        assert not isinstance(app.screen, ConfirmScreen)


async def test_free_signals_the_restarter_then_what_still_holds_the_port() -> None:
    backend = DemoBackend(stubborn=frozenset({2000}))  # npm outlives its SIGTERM a while
    app = demo_app(backend, grace=1.0)
    async with running(app) as pilot:
        goto(app, 3000)
        await pilot.press("f")
        screen = await dialog(pilot)
        assert [t.pid for t in screen.plan.first] == [2000]
        await pilot.press("y")
        await settled(pilot)
        assert backend.sent == [(2000, signal.SIGTERM), (2001, signal.SIGTERM)]
        assert any("Port 3000 is free." in n for n in notes(app)), notes(app)


async def test_c_copies_the_stop_command_of_a_managed_row() -> None:
    app = demo_app()
    copied: list[str] = []
    async with running(app) as pilot:
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign, assignment]
        goto(app, 8080)
        await pilot.press("c")
        assert copied == ["kill 3100"]
        assert any("Copied the command that stops it for good: kill 3100" in n
                   for n in notes(app))


async def test_a_container_row_frees_through_docker_and_warns_before_sigkill() -> None:
    backend = DemoBackend()
    app = demo_app(backend)
    async with running(app, size=(180, 50)) as pilot:
        goto(app, 8025)
        await pilot.pause()
        row = table(app).current
        assert row is not None and table(app).cells(row, 0.0)["manager"] == "docker mailpit"
        text = text_of(app, "#details-body")
        assert "container (mailpit)" in text and "stop     docker stop mailpit" in text
        assert "broken port mapping" in text
        await pilot.press("f")
        screen = await dialog(pilot)
        body = str(screen.query_one("#dialog-body").render())
        assert "First, ask docker to stop container mailpit: docker stop mailpit" in body
        assert screen.plan.title == "Free port 8025 for good: stop container mailpit?"
        await pilot.press("y")
        await settled(pilot)
        assert [r.via for r in backend.asked] == ["docker"] and backend.sent == []
        # A SIGKILL on a unit that systemd restarts after one says so before it is sent.
        goto(app, 6379)
        await pilot.press("k")
        screen = await dialog(pilot)
        body = str(screen.query_one("#dialog-body").render())
        assert "systemd restarts redis-server.service after SIGKILL" in body, body
