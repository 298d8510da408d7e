"""What a user installs: the wheel in a fresh virtualenv, run from outside the checkout."""

from __future__ import annotations

import zipfile
from collections.abc import Callable

from conftest import ROOT, Spawner, Tmux, alive, installed, portside_cmd, run_cli, wait_for


def test_the_wheel_ships_every_file_of_the_package() -> None:
    wheel = next((installed().root / "wheels").glob("portside-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    src = ROOT / "app"
    files = [f.relative_to(src).as_posix() for f in (src / "portside").rglob("*")
             if f.is_file() and "__pycache__" not in f.parts]
    assert files and [f for f in files if f not in names] == []


def test_installed_dashboard_shows_a_real_listener_and_quits(
        spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    held = spawn()
    term = tmux([*portside_cmd(), f":{held.port}"])
    screen = term.wait_text("127.0.0.1", timeout=30)
    assert str(held.port) in screen and str(held.pid) in screen
    term.send("q")
    assert term.exit_code() == 0
    assert "Traceback" not in term.screen()


def test_a_dashboard_that_cannot_start_says_so_in_one_line_and_exits_non_zero(
        tmux: Callable[..., Tmux]) -> None:
    # The exact fault users met: the stylesheet missing from the install.
    css = next((installed().root / "venv").rglob("portside/ui/portside.tcss"))
    hidden = css.with_suffix(".hidden")
    css.rename(hidden)
    try:
        term = tmux(portside_cmd())
        code = term.exit_code(timeout=30)
        screen = term.history()
    finally:
        hidden.rename(css)
    assert code == 70, screen
    assert "portside: the dashboard stopped on an error: StylesheetError" in screen, screen
    assert "Traceback" not in screen and "╭" not in screen


def test_installed_list_why_and_kill(spawn: Spawner) -> None:
    held = spawn()
    listed = run_cli("list", f":{held.port}")
    assert listed.returncode == 0 and str(held.pid) in listed.stdout
    why = run_cli("why", str(held.port))
    assert why.returncode == 1 and str(held.pid) in why.stdout
    killed = run_cli("kill", f":{held.port}", "--yes")
    assert killed.returncode == 0 and f"port {held.port}: freed" in killed.stdout
    wait_for(lambda: not alive(held.pid))
