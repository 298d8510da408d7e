"""Honest under faults: odd bytes, closed streams, signals, missing files, exhausted
descriptors, hidden processes. Each fault is made for real where the machine allows."""

from __future__ import annotations

import _socket
import errno
import json
import os
import random
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual.widgets import Input

from conftest import (
    RUNUSER,
    Spawner,
    Tmux,
    alive,
    ended,
    installed,
    list_json,
    nobody_env,
    portside_cmd,
    require_root,
    run_cli,
    wait_for,
)
from portside.demo import DEMO_MONOTONIC, DemoBackend
from portside.fmt import text_width
from portside.model import Snapshot
from portside.report import sample_notes
from portside.system.sampler import Sampler
from portside.ui.app import PortsideApp
from portside.ui.widgets import FilterInput, StatusLine
from uikit import SIZE, demo_app, running, until

# A name that is not UTF-8, with the 8-bit CSI (0x9B) a terminal would obey, an ESC and
# a C1 control spelled in UTF-8 (U+0085).
HOSTILE = os.fsdecode(b"bad\xff\x9b31m\x1b[7m\xc2\x85name")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed portside with raw bytes out, as a terminal would receive them."""
    return subprocess.run([*portside_cmd(), *args], capture_output=True, timeout=60,
                          cwd=installed().root, env={**os.environ, **(env or {})})


# Bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "utf-8"}, {"PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "PYTHONIOENCODING": ""},
                                 {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""}],
                         ids=["strict-utf8", "ascii", "C-locale", "C.UTF-8"])
def test_names_that_are_not_utf8_are_escaped_whatever_the_encoding(
        spawn: Spawner, env: dict[str, str]) -> None:
    held = spawn("--name", HOSTILE, "--fork")
    for args in (["list", f":{held.port}"], ["why", str(held.port)],
                 ["kill", f":{held.port}", "--dry-run"], ["list", "--json", f":{held.port}"]):
        res = _run(*args, env=env)
        out = res.stdout
        assert res.returncode in (0, 1), (args, res.stderr)
        assert b"internal error" not in res.stderr, (args, res.stderr)
        # No raw control byte reaches the terminal: not C0, not C1, not ESC.
        assert not any((b < 0x20 and b not in b"\n") or 0x7F <= b < 0xA0 for b in out), out
        assert b"\xff" not in out and b"\xc2\x85" not in out
        if args[0] != "list" or "--json" not in args:
            assert b"bad\\xff\\x9b31m\\e[7m\\x85n" in out, (args, out)  # comm: 15 bytes
        else:
            assert json.loads(out)[0]["process"].startswith("bad")
    assert alive(held.pid)


# Streams --------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["why", "22"],
                                  ["kill", "999999", "--dry-run"], []])
def test_a_closed_stdout_is_a_clear_message_and_exit_74(args: list[str]) -> None:
    cmd = " ".join(shlex.quote(c) for c in [*portside_cmd(), *args])
    res = subprocess.run(["sh", "-c", f"{cmd} >&-"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 74, res.stderr
    assert "standard output is closed" in res.stderr and "Traceback" not in res.stderr


def test_a_full_disk_is_a_clear_message_and_exit_74() -> None:
    for args in (["list"], ["list", "--json"], ["why", "22"]):
        with open("/dev/full", "w") as full:
            res = subprocess.run([*portside_cmd(), *args], stdout=full, stderr=subprocess.PIPE,
                                 text=True, timeout=60)
        assert res.returncode == 74, (args, res.stderr)
        assert "cannot write the output: No space left on device" in res.stderr


def test_kill_with_a_closed_stdin_asks_nobody_and_sends_nothing(spawn: Spawner) -> None:
    held = spawn()
    cmd = " ".join(shlex.quote(c) for c in [*portside_cmd(), "kill", f":{held.port}"])
    res = subprocess.run(["sh", "-c", f"{cmd} <&-"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "no terminal to ask on (add --yes)" in res.stderr and "Traceback" not in res.stderr
    assert alive(held.pid)


def test_ctrl_c_during_the_grace_period_says_what_was_sent(spawn: Spawner) -> None:
    held = spawn("--report-term")
    with ended(subprocess.Popen([*portside_cmd(), "kill", f":{held.port}", "--yes", "--grace",
                                 "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=installed().root)) as kill:
        assert held.proc.stdout is not None
        assert held.proc.stdout.readline().strip() == "SIGTERM"  # it has it, and lives on
        kill.send_signal(signal.SIGINT)
        out, err = kill.communicate(timeout=30)
    assert kill.returncode == 130, out + err
    assert f"PID {held.pid}: SIGTERM sent" in out
    assert f"interrupted: the signals above were sent (to PID {held.pid})" in out
    assert "freed" not in out and "Traceback" not in err
    assert alive(held.pid)


def _dashboard_pid(term: Tmux) -> int:
    def find() -> int | None:
        for p in psutil.Process(term.pid).children(recursive=True):
            if p.name() != "sh" and any(c.endswith("bin/portside") for c in p.cmdline()):
                return p.pid
        return None
    pid: int = wait_for(find)
    return pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT],
                         ids=["TERM", "HUP", "QUIT"])
def test_a_signal_to_the_dashboard_restores_the_terminal(
        spawn: Spawner, tmux: Callable[..., Tmux], sig: signal.Signals) -> None:
    held = spawn()
    dashboard = " ".join(shlex.quote(c) for c in [*portside_cmd(), f":{held.port}"])
    # After the dashboard: its exit code and whether the terminal echoes again.
    term = tmux(["sh", "-c", f"{dashboard}; echo rc=$?; stty -a | tr ' ' '\\n' "
                 "| grep -x -e echo -e -echo"])
    term.wait_text(str(held.pid), timeout=30)
    assert term.pane("#{alternate_on}#{mouse_any_flag}") == "11"  # what the dashboard set
    os.kill(_dashboard_pid(term), sig)
    assert term.exit_code() == 0  # the sh -c
    screen = term.history()
    assert f"rc={128 + sig}" in screen and "\necho\n" in screen + "\n", screen
    assert term.pane("#{alternate_on}#{mouse_any_flag}#{mouse_sgr_flag}") == "000"
    assert "Traceback" not in screen


# Truth under faults ----------------------------------------------------------------------

LOOP = Path(__file__).resolve().parent / "sample_loop.py"
CHURN = Path(__file__).resolve().parent / "churn.py"
SANDBOX = Path(__file__).resolve().parent / "sandbox.py"


class SampleLoop:
    """tests/sample_loop.py run by the installed interpreter: one warm sampler."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([str(installed().python), str(LOOP)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     cwd=installed().root)

    def sample(self, *where: int | str) -> dict[str, Any]:
        """One sample, about the listeners on these ports and local addresses."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(" ".join(map(str, where)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the sampler exited ({self.proc.wait(10)})"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def test_running_out_of_descriptors_is_reported_retried_and_recovered(spawn: Spawner) -> None:
    first = spawn()
    loop = SampleLoop()
    try:
        before = loop.sample(first.port)
        assert before["holders"] == {str(first.port): [first.pid]} and not before["notes"]
        soft, hard = resource.prlimit(loop.proc.pid, resource.RLIMIT_NOFILE)
        # One descriptor to spare: the kernel's socket table can be read (one socket), a
        # process's fd directory opened but not listed (that takes a second one).
        resource.prlimit(loop.proc.pid, resource.RLIMIT_NOFILE,
                         (before["free_fd"] + 1, hard))
        second = spawn()  # a new process, first read while descriptors are short
        during = [loop.sample(first.port, second.port) for _ in range(3)]
        resource.prlimit(loop.proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
        after = loop.sample(first.port, second.port)
    finally:
        loop.close()
    for d in during:
        text = " ".join(d["notes"])
        assert "Too many open files (EMFILE)" in text, d
        assert "even as root" not in text, d
        assert d["holders"][str(first.port)] == [first.pid], d  # as last read
        assert d["holders"][str(second.port)] == [] and d["unknown"] == 1, d
    # Descriptors are back: the very next sample reads everything again.
    assert after["holders"] == {str(first.port): [first.pid], str(second.port): [second.pid]}
    assert after["unknown"] == 0 and not after["notes"], after


def test_sockets_whose_process_exits_mid_sample_are_not_called_unreadable() -> None:
    addr = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    loop = SampleLoop()
    churn = subprocess.Popen([sys.executable, str(CHURN), addr, "60"], text=True,
                             stdout=subprocess.PIPE)
    seen: list[dict[str, Any]] = []
    try:
        loop.sample(addr)  # warm: the next samples know what was there
        assert churn.stdout is not None and churn.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 40
        # Until the race happened a few times: sockets listed whose process then exited.
        while sum(1 for s in seen if s["no_holder"]) < 3 and time.monotonic() < deadline:
            seen.append(loop.sample(addr))
    finally:
        churn.kill()
        churn.wait(10)
        loop.close()
    raced = [s for s in seen if s["no_holder"]]
    assert len(raced) >= 3, f"no socket lost its process mid-sample in {len(seen)} samples"
    assert [s for s in seen if s["unknown"]] == [], raced
    assert not any("even as root" in n or "with owner unknown" in n
                   for s in seen for n in s["notes"]), raced


class FlakyNetlink(_socket.socket):
    """A netlink socket whose first `fails` receives fail with ENOBUFS (the lowest seam:
    the kernel gives ENOBUFS or EINTR here when it cannot keep up)."""

    fails = 0

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if FlakyNetlink.fails > 0:
            FlakyNetlink.fails -= 1
            raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        return super().recv(bufsize, flags)


def test_a_transient_netlink_error_is_retried_not_taken_for_good(
        spawn: Spawner, monkeypatch: pytest.MonkeyPatch) -> None:
    held = spawn()
    # What kernel.py makes its socket with: the C module under `socket`.
    monkeypatch.setattr(_socket, "socket", FlakyNetlink)
    sampler = Sampler()
    FlakyNetlink.fails = 1  # once: the retry reads sock_diag, nobody hears of it
    snap = sampler.sample()
    assert snap.source == "sock_diag" and not snap.gaps.notes
    assert held.pid in next(s.holders for s in snap.sockets if s.lport == held.port)
    FlakyNetlink.fails = 3  # every try of one sample: /proc/net this time, and it says so
    snap = sampler.sample()
    assert any("sock_diag failed 3 times" in n and "ENOBUFS" in n and "this sample" in n
               for n in snap.gaps.notes), snap.gaps.notes
    assert held.pid in next(s.holders for s in snap.sockets if s.lport == held.port)
    snap = sampler.sample()  # ... and sock_diag again the next time
    assert snap.source == "sock_diag" and not snap.gaps.notes


def _sandboxed(*cmd: str, no_proc: bool = False) -> list[str]:
    """cmd with netlink refused (seccomp); with no_proc, in a mount namespace whose /proc
    is an empty directory."""
    inner = [sys.executable, str(SANDBOX), "--no-netlink", "--", *cmd]
    if not no_proc:
        return inner
    script = "mount -t tmpfs none /proc && exec " + " ".join(shlex.quote(c) for c in inner)
    return ["unshare", "--mount", "sh", "-c", script]


def test_netlink_refused_for_good_is_said_in_the_cli_and_the_dashboard(
        spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    held = spawn()
    res = subprocess.run(_sandboxed(*portside_cmd(), "list", f":{held.port}"),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and str(held.pid) in res.stdout, res.stderr
    assert "sock_diag netlink is unavailable (sock_diag: Operation not permitted (EPERM)): " \
        "reading /proc/net instead" in res.stderr
    term = tmux(_sandboxed(*portside_cmd(), f":{held.port}"), size=(160, 40))
    term.wait_text(str(held.pid), timeout=30)
    # The rows may be drawn a moment before the banner: the sample goes into the table on
    # the sampler's thread, the header and the banner follow on the UI thread.
    screen = term.wait_text("reading /proc/net instead")
    assert "Operation not permitted" in screen and str(held.pid) in screen
    term.send("q")
    assert term.exit_code() == 0


def test_no_socket_tables_at_all_is_exit_69_with_the_reason(tmux: Callable[..., Tmux]) -> None:
    require_root()  # a mount namespace
    res = subprocess.run(_sandboxed(*portside_cmd(), "list", no_proc=True),
                         capture_output=True, text=True, timeout=60)
    reason = ("cannot read this machine's sockets: sock_diag: Operation not permitted (EPERM); "
              "and no socket tables under /proc/net (is /proc mounted?)")
    assert res.returncode == 69 and reason in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    term = tmux(_sandboxed(*portside_cmd(), no_proc=True), size=(200, 20))
    assert term.exit_code(timeout=30) == 69
    assert reason in term.history() and "Traceback" not in term.history()


def test_an_unreadable_proc_stat_is_a_fault_not_a_crash(spawn: Spawner) -> None:
    require_root()  # a mount namespace
    held = spawn()
    cmd = " ".join(shlex.quote(c) for c in [*portside_cmd(), "list", f":{held.port}"])
    # Every start time needs /proc/stat's boot time: without it no process can be named.
    res = subprocess.run(["unshare", "--mount", "sh", "-c",
                          f"mount --bind /dev/null /proc/stat && exec {cmd}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "1 socket(s) with owner unknown: held by processes that could not be read " \
        "(line 'btime' not found in /proc/stat)" in res.stderr, res.stderr
    assert "internal error" not in res.stderr


def test_a_process_hidden_by_hidepid_is_said_to_be_hidden(spawn: Spawner) -> None:
    require_root()  # a mount namespace with its own proc instance, seen by nobody
    held = spawn()
    kill = " ".join(shlex.quote(c) for c in [
        RUNUSER, "-u", "nobody", "--", str(installed().portside), "kill", str(held.pid), "1",
        "--dry-run"])
    res = subprocess.run(["unshare", "--mount", "sh", "-c",
                          f"mount -t proc -o hidepid=2 proc /proc && exec {kill}"],
                         capture_output=True, text=True, timeout=60, env=nobody_env())
    # The kernel spells hidepid=2 "invisible" since 5.8.
    assert re.search(f"PID {held.pid} exists but is hidden from this user \\(/proc is mounted "
                     f"with hidepid=(2|invisible)\\): run as root to see it \\(sudo portside "
                     f"kill {held.pid}\\)", res.stderr), res.stderr
    assert "PID 1 is the init process" in res.stderr
    assert "no such process" not in res.stderr and res.returncode == 1, res.stderr
    assert alive(held.pid)
    # Truly gone is still "no such process".
    gone = run_cli("kill", "2147483646", "--dry-run", user="nobody")
    assert gone.returncode == 3 and "PID 2147483646: no such process" in gone.stderr


def test_why_explains_fin_wait2_left_by_a_server_that_died(spawn: Spawner,
                                                          tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind",
                               "127.0.0.1"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert server.stdout is not None
        port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))  # type: ignore[union-attr]
        client = spawn("--connect", f"127.0.0.1:{port}")

        def server_end(state: str) -> list[dict[str, Any]]:
            return [s for s in list_json("--all", f"lport:{port}") if s["state"] == state]
        wait_for(lambda: any(s["holders"] == [server.pid] for s in server_end("ESTABLISHED")))
        server.kill()  # the server dies with the connection open
        server.wait(10)
        wait_for(lambda: server_end("FIN_WAIT2"))
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    res = run_cli("why", str(port))
    assert res.returncode == 1, res.stdout
    assert "belong to no process (1 FIN_WAIT2)" in res.stdout, res.stdout
    assert f"PID {client.pid} (python) holds 1 of the other ends, in CLOSE_WAIT" in res.stdout
    assert re.search(r"or by themselves in \d+s at the latest", res.stdout), res.stdout
    assert "when the processes holding them close them" not in res.stdout
    data = json.loads(run_cli("why", str(port), "--json").stdout)
    assert [(o["state"], o["peer_pid"], o["peer_state"]) for o in data["orphans"]] == [
        ("FIN_WAIT2", client.pid, "CLOSE_WAIT")]
    assert 0 < data["orphans"][0]["time_left"] <= data["fin_timeout"]
    # The table says it has no process rather than an unknown one.
    row = run_cli("list", "--all", f"lport:{port}").stdout.splitlines()[1]
    assert "FIN_WAIT2" in row and "?" not in row and "left" in row, row


# The header over old data -----------------------------------------------------------------


class LateBackend(DemoBackend):
    """The demo machine, but its second sample is delivered 100 s after it began (as when
    the UI or the machine was too busy), and its third never arrives (a stuck /proc read)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock
        self.stuck = threading.Event()
        self.released = threading.Event()

    def sample(self, all_states: bool) -> Snapshot:
        snap = super().sample(all_states)
        if self.samples == 2:
            self.clock[0] += 100
        elif self.samples > 2:
            self.stuck.set()
            self.released.wait(30)
        return snap


async def test_the_header_never_calls_old_data_live() -> None:
    clock = [DEMO_MONOTONIC]
    backend = LateBackend(clock)
    app = PortsideApp(backend, interval=0.5, clock=lambda: clock[0])
    try:
        async with app.run_test(size=SIZE) as pilot:
            header = app.main.query_one(StatusLine)
            await until(pilot, lambda: backend.samples >= 1 and "● live" in str(header.render()))
            # The second sample arrives 100 s after it was taken.
            await until(pilot, lambda: backend.stuck.is_set())
            await pilot.pause()
            text = str(header.render())
            assert "STALE" in text and "live" not in text and "1m40s ago" in text, text
            # The sampler is stuck: time passes, and the header keeps saying so.
            clock[0] += 60
            app.main._tick()
            text = str(header.render())
            assert "STALE" in text and "live" not in text and "2m40s ago" in text, text
    finally:
        backend.released.set()


# The filter language ----------------------------------------------------------------------

QUERIES = [":", "-:", ":x", "port:", '"my app', "a\\", "it's", ":3000", "::1", '"my app"',
           ":3000 :8080 -state:tw", "state:bogus", ":70000", "port:5-3", "proc:",
           "x" * 257, "-", ":3000 '", 'proc:"node js"']


def _cli_says(query: str) -> tuple[int, str]:
    """The installed CLI given the query as one shell word: exit code and filter error."""
    res = run_cli("list", query) if not query.startswith("-") else run_cli("list", "--", query)
    prefix = "portside list: invalid filter: "
    errors = [line[len(prefix):] for line in res.stderr.splitlines() if line.startswith(prefix)]
    return res.returncode, errors[0] if errors else ""


async def test_the_cli_and_the_dashboard_accept_and_reject_the_same_queries() -> None:
    cli = {q: _cli_says(q) for q in QUERIES}
    app = demo_app()
    async with running(app) as pilot:
        box = app.main.query_one("#filter", Input)
        for query in QUERIES:
            box.value = ""
            await pilot.pause()
            box.value = query  # as if pasted
            await pilot.pause()
            shown = app.main.query_one(FilterInput).error
            code, message = cli[query]
            if box.has_class("-invalid"):
                assert code == 2 and message, (query, code, shown)
                assert shown == f"{message} (still showing: all)", (query, shown, message)
            else:
                assert code == 0 and not message, (query, code, message)
    # The cases the documented language names.
    assert cli[":"] == (2, "':': a port is missing after ':' (e.g. :3000)")
    assert cli['"my app'] == (2, "'\"my app': unclosed quote")
    assert cli["::1"][0] == cli['"my app"'][0] == 0


# Cell widths -----------------------------------------------------------------------------

# Names whose drawn width terminals disagree on, or that are not text at all.
ODD_NAMES = [os.fsdecode(b"c1\xc2\x9bx\xe2\x80\x8dy"), "vs\u2714\ufe0fz", "cjk\u4e2d\u6587",
             "comb\u0065\u0301\u0301", os.fsdecode(b"raw\x9b\xff"),
             "fam\U0001f468\u200d\U0001f469", "flag\U0001f1eb\U0001f1f7"]


def test_odd_names_keep_every_cell_in_its_column_in_a_real_terminal(
        spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    addr = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    held = [spawn("--host", addr, "--name", name) for name in ODD_NAMES]
    listed = run_cli("list", f"addr:{addr}")
    rows = listed.stdout.splitlines()
    # The CLI's columns line up in terminal cells, whatever the names.
    user_at = {text_width(r[:r.index(" root ")]) for r in rows[1:]}
    assert len(rows) == len(held) + 1 and len(user_at) == 1, listed.stdout
    term = tmux([*portside_cmd(), f"addr:{addr}"], size=(220, 40))
    term.wait_text(str(held[-1].pid), timeout=30)
    for _ in range(len(held)):  # each row highlighted in turn, the details beside it
        term.send("Down")
        screen = term.wait_text("holders (1)")
        lines = [line for line in screen.splitlines() if "│" in line]
        # The pane's border is in one column on every line, and what the table drew
        # stays left of it: the pane's own lines read as the pane wrote them.
        border = {text_width(line[:line.index("│")]) for line in lines}
        assert len(border) == 1, screen
        pane = [line[line.index("│") + 1:].rstrip() for line in lines]
        labels = [p.split()[0] for p in pane if p.strip()]
        for label in ("socket", "parents", "user", "status", "started", "cpu/mem", "exe",
                      "cwd", "command"):
            assert label in labels, (label, screen)
        table = [line[:line.index("│")] for line in lines]
        table = [r for r in table if addr in r]
        assert len(table) == len(held), screen
        assert len({text_width(r[:r.index(" root ")]) for r in table}) == 1, screen


def test_the_unknown_owner_note_counts_only_the_sockets_listed(spawn: Spawner) -> None:
    require_root()
    roots = spawn()  # root's: nobody cannot see its process
    mine = spawn(user="nobody")
    own = run_cli("list", f":{mine.port}", user="nobody")
    assert own.returncode == 0 and str(mine.pid) in own.stdout
    assert "owner unknown" not in own.stderr, own.stderr  # nothing listed is unknown
    other = run_cli("list", f":{roots.port}", user="nobody")
    assert "note: 1 socket(s) with owner unknown: held by other users' processes (run with " \
        "sudo to see every process's sockets)" in other.stderr, other.stderr
    why = run_cli("why", str(mine.port), user="nobody")
    assert "owner unknown" not in why.stderr, why.stderr


def test_a_missing_proc_stat_is_a_fault_named_with_the_file(
        spawn: Spawner, monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/stat cannot be removed for real: the reader of it, the lowest seam, fails as
    # it would without the file (what a hardened container can look like).
    from portside.system import procps

    held = spawn()

    def no_stat(*_: object) -> float:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/proc/stat")

    monkeypatch.setattr(procps, "boot_time", no_stat)
    snap = Sampler().sample()
    mine = [s for s in snap.sockets if s.lport == held.port]
    assert [s.holders for s in mine] == [()]
    assert sample_notes(mine, snap.gaps)[0] == (
        "1 socket(s) with owner unknown: held by processes that could not be read "
        "(No such file or directory: /proc/stat (ENOENT))")


def test_a_terminal_closed_while_the_dashboard_starts_ends_it(
        spawn: Spawner, tmux: Callable[..., Tmux]) -> None:
    # The bench found dashboards left behind this way: the hang-up came while Textual
    # was still writing its first screens to a terminal that was gone.
    held = spawn()
    for _ in range(6):
        term = tmux([*portside_cmd(), f":{held.port}"])
        pid = _dashboard_pid(term)
        dashboard = psutil.Process(pid)
        term.wait_text(str(held.pid), timeout=30)
        term._tmux("kill-server")  # the terminal goes away: SIGHUP, and no tty

        def gone(p: int = pid) -> bool:
            return not alive(p)
        try:
            wait_for(gone, timeout=15)
        finally:
            try:  # no longer the pane's child: ended by its PID (psutil checks it is the
                dashboard.kill()  # same process), pass or fail
            except psutil.Error:
                pass
