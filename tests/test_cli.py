"""The one-shot commands as real processes, against real listeners and TIME_WAIT sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from conftest import (
    ROOT,
    Spawner,
    alive,
    installed,
    list_json,
    make_time_wait,
    portside_cmd,
    run_cli,
    wait_for,
)
from portside.system.probe import is_ipv6_available

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
KEYS = {"proto", "family", "local_address", "local_port", "remote_address", "remote_port",
        "state", "pid", "holders", "process", "user", "cmdline", "time_left",
        "time_left_exact", "managed_by"}
MANAGER_KEYS = {"kind", "name", "pid", "command", "restarts", "stop", "evidence", "caution"}


@linux
def test_list_json_listeners_holders_and_time_wait(spawn: Spawner) -> None:
    v4 = spawn("--host", "127.0.0.1", "--fork")
    v6 = spawn("--host", "::1") if is_ipv6_available() else None
    udp = spawn("--udp")
    tw_port = make_time_wait(2)
    rows = list_json()
    assert all(set(r) == KEYS for r in rows)
    mine = [r for r in rows if r["local_port"] == v4.port]
    assert len(mine) == 1
    r = mine[0]
    assert (r["proto"], r["family"], r["local_address"], r["state"]) == (
        "tcp", "ipv4", "127.0.0.1", "LISTEN")
    assert r["pid"] == v4.pid and r["holders"] == v4.pids
    assert r["process"].startswith("python") and "child.py" in " ".join(r["cmdline"])
    assert r["remote_address"] is None and r["remote_port"] is None
    assert r["time_left"] is None and r["time_left_exact"] is False
    # A forking server: its parent holds the socket with its child, the master of a prefork.
    m = r["managed_by"]
    assert set(m) == MANAGER_KEYS and (m["kind"], m["pid"], m["stop"]) == (
        "prefork", v4.pid, f"kill {v4.pid}")
    assert m["restarts"] == "unknown" and m["evidence"] and m["caution"] is None
    if v6 is not None:
        r6 = next(r for r in rows if r["local_port"] == v6.port)
        assert (r6["family"], r6["local_address"], r6["pid"]) == ("ipv6", "::1", v6.pid)
        assert r6["managed_by"] is None  # started by the test's own process: nobody manages
    ru = next(r for r in rows if r["local_port"] == udp.port)
    assert (ru["proto"], ru["state"], ru["pid"]) == ("udp", "NONE", udp.pid)
    tws = [r for r in rows if r["local_port"] == tw_port]
    assert len(tws) == 2
    for t in tws:
        assert t["state"] == "TIME_WAIT" and t["pid"] is None and t["holders"] == []
        assert t["time_left_exact"] is True and 50 < t["time_left"] <= 60
        assert t["remote_address"] == "127.0.0.1" and isinstance(t["remote_port"], int)
        assert t["managed_by"] is None


@linux
def test_list_filters_and_table(spawn: Spawner) -> None:
    held = spawn()
    other = spawn()
    rows = list_json(f":{held.port}")
    assert [r["local_port"] for r in rows] == [held.port]
    assert list_json(f"-:{held.port}", f":{held.port}") == []
    res = run_cli("list", f"port:{held.port},{other.port}")
    assert res.returncode == 0
    assert str(held.pid) in res.stdout and str(other.pid) in res.stdout
    assert res.stdout.splitlines()[0].split()[:4] == ["PROTO", "LOCAL", "REMOTE", "STATE"]
    bad = run_cli("list", "port:abc")
    assert bad.returncode == 2 and "port:abc" in bad.stderr and "Traceback" not in bad.stderr


def test_list_all_includes_established() -> None:
    import socket
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        port = lsn.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            srv, _ = lsn.accept()
            with srv:
                states = {r["state"] for r in list_json("--all", f":{port}")}
                assert states == {"LISTEN", "ESTABLISHED"}
                assert {r["state"] for r in list_json(f":{port}")} == {"LISTEN"}


@linux
def test_why_on_a_listened_port(spawn: Spawner) -> None:
    held = spawn("--host", "127.0.0.1", "--fork")
    res = run_cli("why", str(held.port))
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"PID {held.pid}" in res.stdout and f"PID {held.child}" in res.stdout
    assert f"portside kill :{held.port}" in res.stdout
    data = json.loads(run_cli("why", f":{held.port}", "--json").stdout)
    assert data["can_bind"] is False
    assert sorted(h["pid"] for h in data["holders"]) == held.pids
    binds = {(b["address"], b["reuseaddr"]): b for b in data["binds"]}
    assert binds[("127.0.0.1", False)]["error"] == "EADDRINUSE"
    assert binds[("0.0.0.0", True)]["ok"] is False  # a listener blocks even SO_REUSEADDR


def test_why_on_a_time_wait_only_port() -> None:
    port = make_time_wait(3)
    res = run_cli("why", "--json", str(port))
    data = json.loads(res.stdout)
    assert res.returncode == 1
    assert data["listeners"] == [] and data["time_wait"] == 3
    assert 50 < data["time_wait_last_expiry"] <= 60
    assert data["can_bind"] is False and data["can_bind_with_reuseaddr"] is True
    text = run_cli("why", str(port)).stdout
    assert "TIME_WAIT" in text and "set SO_REUSEADDR" in text and "wait" in text


def test_why_time_wait_from_a_socket_without_reuseaddr() -> None:
    port = make_time_wait(1, reuse=False)
    res = run_cli("why", "--json", str(port))
    data = json.loads(res.stdout)
    assert res.returncode == 1 and data["time_wait"] == 1
    # The kernel lets SO_REUSEADDR past TIME_WAIT only if the old socket had it too.
    assert data["can_bind_with_reuseaddr"] is False
    assert any("only waiting helps" in line for line in data["verdict"])


def test_why_on_a_free_port() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run_cli("why", str(port))
    assert res.returncode == 0 and "is free" in res.stdout


@linux
def test_kill_port_frees_a_port_held_by_parent_and_child(spawn: Spawner) -> None:
    held = spawn("--fork")
    res = run_cli("kill", f":{held.port}", "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"port {held.port}: freed" in res.stdout
    assert str(held.pid) in res.stdout and str(held.child) in res.stdout
    wait_for(lambda: not alive(held.pid) and not alive(held.child))


@linux
def test_kill_stubborn_process_needs_force(spawn: Spawner) -> None:
    held = spawn("--ignore-term")
    res = run_cli("kill", f":{held.port}", "--yes", "--grace", "0.5")
    assert res.returncode == 1
    assert f"still held by PID {held.pid}" in res.stdout and "--force" in res.stderr
    assert alive(held.pid)
    res = run_cli("kill", f":{held.port}", "--yes", "--grace", "0.5", "--force")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SIGKILL" in res.stdout
    wait_for(lambda: not alive(held.pid))


def test_kill_pid_target(spawn: Spawner) -> None:
    held = spawn()
    res = run_cli("kill", str(held.pid), "--yes", "--signal", "INT")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"PID {held.pid}: exited" in res.stdout


def test_kill_refusals_send_nothing() -> None:
    res = run_cli("kill", "1", "--yes")
    assert res.returncode == 1 and "init" in res.stderr
    # The CLI's parent is this test process: refused as an ancestor.
    res = run_cli("kill", str(os.getpid()), "--yes")
    assert res.returncode == 1 and "parents" in res.stderr


def test_kill_without_terminal_or_yes_refuses(spawn: Spawner) -> None:
    held = spawn()
    res = run_cli("kill", f":{held.port}")
    assert res.returncode == 2 and "--yes" in res.stderr
    assert alive(held.pid)
    dry = run_cli("kill", f":{held.port}", "--dry-run")
    assert dry.returncode == 0 and "nothing sent" in dry.stdout and str(held.pid) in dry.stdout
    assert alive(held.pid)


def _kill_on_a_terminal(port: int, answer: bytes) -> tuple[int, str]:
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([*portside_cmd(), "kill", f":{port}"],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=installed().root)
        os.write(master, answer)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    return proc.returncode, out.decode()


def test_kill_asks_on_a_terminal(spawn: Spawner) -> None:
    held = spawn()
    code, out = _kill_on_a_terminal(held.port, b"n\n")
    assert code == 1 and "[y/N]" in out and "cancelled" in out
    assert alive(held.pid)
    code, out = _kill_on_a_terminal(held.port, b"y\n")
    assert code == 0 and f"port {held.port}: freed" in out
    wait_for(lambda: not alive(held.pid))


def test_kill_nothing_matched() -> None:
    port = make_time_wait(1)  # TIME_WAIT only: no process to stop
    res = run_cli("kill", f":{port}", "--yes")
    assert res.returncode == 3 and "nothing" in res.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [(["why", "0"], "'0'"), (["why", "70000"], "'70000'"), (["why", "abc"], "'abc'"),
     (["kill", ":0"], "':0'"), (["kill", "x"], "'x'"), (["kill", ":80", "--grace", "-1"], "'-1'"),
     (["kill", ":80", "--grace", "nan"], "'nan'"), (["kill", ":80", "--grace", "inf"], "'inf'"),
     (["kill", ":80", "--signal", "USR1"], "'USR1'"), (["wait", ":80", "--free",
                                                       "--timeout", "-2"], "'-2'"),
     (["wait", ":80"], "--free"), (["list", "--bogus"], "--bogus"), (["--interval", "0.1"],
                                                                     "'0.1'"),
     (["--interval", "nan"], "'nan'"), (["--frobnicate"], "--frobnicate")],
)
def test_bad_arguments_exit_2_naming_the_argument(args: list[str], named: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2, res.stderr
    assert named in res.stderr and "Traceback" not in res.stderr


def test_help_and_version() -> None:
    for cmd in ([], ["list"], ["why"], ["kill"], ["wait"]):
        res = run_cli(*cmd, "--help")
        assert res.returncode == 0 and "usage:" in res.stdout
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("portside ")


def test_core_paths_do_not_import_textual() -> None:
    code = ("import sys, portside.model, portside.query, portside.fmt, portside.cli, "
            "portside.system.sampler, portside.system.control, portside.system.probe; "
            "from portside.cli import run; import io; "
            "run(['list', '--json'], io.StringIO(), io.StringIO(), sys.stdin); "
            "print('textual' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [[], ["--json"], ["--all", "--json"], [":3000"],
                                  [":3000", "--json", "proc:node"], ["--all"],
                                  ["--json", "--json", "user:me", ""]])
def test_plain_list_arguments_read_as_its_parser_reads_them(argv: list[str]) -> None:
    from portside.cli.args import plain_list_args
    from portside.cli.parsers import command_parser
    from portside.cli.parsers import parse_args as parse

    plain = plain_list_args(argv)
    assert plain is not None and vars(plain) == vars(parse(command_parser("list"), argv, True))


@pytest.mark.parametrize("argv", [["--js"], ["-proc:node"], ["--help"], ["-h"],
                                  ["--json=1"], ["--", ":3000"], [":3000", "--bogus"]])
def test_other_list_arguments_go_to_its_parser(argv: list[str]) -> None:
    from portside.cli.args import plain_list_args

    assert plain_list_args(argv) is None


def test_a_plain_listing_loads_nothing_it_does_not_use() -> None:
    # Each of these was a millisecond or more of every listing's start: argparse's parser
    # (with shutil, locale and gettext's catalogs), socket's and signal's enums, threading,
    # and ipaddress when no address is asked for.
    heavy = ("argparse", "shutil", "locale", "socket", "signal", "threading", "ipaddress")
    code = ("import sys, io; from portside.cli import run; "
            "code = run(['list', '--json', ':1', 'proc:x'], io.StringIO(), io.StringIO(), "
            "sys.stdin); "
            f"print(code, *[m for m in {heavy!r} if m in sys.modules])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0"]


@linux
def test_wait_free_and_listening(spawn: Spawner) -> None:
    held = spawn()
    res = run_cli("wait", f":{held.port}", "--free", "--timeout", "0.3")
    assert res.returncode == 1 and "timed out" in res.stderr
    assert run_cli("wait", f":{held.port}", "--listening", "--timeout", "5").returncode == 0
    waiter = subprocess.Popen([*portside_cmd(), "wait", f":{held.port}",
                               "--free", "--timeout", "30"], cwd=installed().root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        held.proc.kill()
        held.proc.wait(10)
        out, err = waiter.communicate(timeout=40)
        assert waiter.returncode == 0, err
        assert "free" in out and time.monotonic() - t0 < 30
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)


def test_json_fast_path_matches_the_json_module() -> None:
    from portside.cli import json_lines, socket_json
    from portside.demo import demo_snapshot

    snap = demo_snapshot(all_states=True)
    for sock in snap.sockets:
        assert json.loads(json_lines([sock], snap)) == [socket_json(sock, snap)]
    # Every TIME_WAIT row takes the formatted path; its time_left prints as round(x, 3).
    odd = [s._replace(ends=snap.monotonic + t) for s in snap.sockets if s.state == "TIME_WAIT"
           for t in (0.0, 0.0005, 0.0015, 59.9995, 12.3456789, 60.0, -1.0)]
    assert odd and json.loads(json_lines(odd, snap)) == [socket_json(s, snap) for s in odd]
    socks = list(snap.sockets)
    assert json.loads(json_lines(socks, snap)) == [socket_json(s, snap) for s in socks]
    assert json.loads(json_lines([], snap)) == []
    # Names, users and command lines are hostile text: each holder's part of the object
    # is made once by the json module and shared by its sockets (many per holder here).
    hostile = ['a"b\\c', "line\nbreak\t\x00", "[bold]x[/]", "名前 \u202e", "\udcff"]
    procs = {pid: p._replace(name=hostile[i % 5], username=hostile[(i + 1) % 5],
                             cmdline=(hostile[(i + 2) % 5], "--x=\"y\""))
             for i, (pid, p) in enumerate(snap.processes.items())}
    many = [s._replace(lport=s.lport + k) for s in socks for k in range(3)]
    # One daemon holding ports for two containers; owners unknown, of two users; a timer
    # on a socket that is not TIME_WAIT (an orphaned FIN_WAIT2), and a TIME_WAIT one
    # without its remote end.
    daemon = next(s for s in socks if s.pid is not None and s.state == "LISTEN")
    first = next(iter(snap.managers.values()))
    assert daemon.pid is not None
    ports = {(daemon.pid, daemon.lport + k): first._replace(name=f"c{k}", pid=k + 1)
             for k in range(3)}
    unknown = next(s for s in socks if s.state == "LISTEN")._replace(pid=None, holders=())
    many += [unknown._replace(user="alice"), unknown._replace(user="bob", lport=1),
             daemon._replace(state="FIN_WAIT2", raddr="10.0.0.1", rport=5,
                             ends=snap.monotonic + 12.3456, time_left_exact=True),
             daemon._replace(state="TIME_WAIT", ends=snap.monotonic - 0.25)]
    odd_snap = snap._replace(processes=procs, port_managers=ports)
    text = json_lines(many, odd_snap)
    assert json.loads(text) == [socket_json(s, odd_snap) for s in many]
    assert len(text.splitlines()) == len(many)  # one object per line, whatever the names
    assert text.isascii()  # written as UTF-8: a lone surrogate must stay escaped


def test_list_rows_made_once_per_holder_are_the_rows_made_each_time() -> None:
    import io

    from portside.cli.output import list_row, write_table
    from portside.demo import demo_snapshot
    from portside.fmt import text_width

    snap = demo_snapshot(all_states=True)
    daemon = next(s for s in snap.sockets if s.pid is not None and s.state == "LISTEN")
    first = next(iter(snap.managers.values()))
    assert daemon.pid is not None
    ports = {(daemon.pid, daemon.lport + k): first._replace(name=f"c{k}") for k in range(3)}
    snap = snap._replace(port_managers=ports)
    socks = [s._replace(lport=s.lport + k) for s in snap.sockets for k in range(3)]
    unknown = daemon._replace(pid=None, holders=())
    socks += [unknown._replace(user="alice"), unknown._replace(user="bob"),
              unknown._replace(state="TIME_WAIT", user=None, ends=snap.monotonic + 3.0)]
    known: dict[tuple[object, ...], tuple[str, ...]] = {}
    for managed in (True, False):
        each = [list_row(s, snap, managed) for s in socks]
        assert [list_row(s, snap, managed, known) for s in socks] == each
        known.clear()
        # Nobody holds a TIME_WAIT socket: no process, where a listener's is unknown.
        assert {r[5] for r, s in zip(each, socks, strict=True) if s.state == "TIME_WAIT"} \
            == {""}
        assert each[-3][4:6] == each[-2][4:6] == ["?", "?"] and each[-3][6] == "alice"
    # The table: ASCII columns by one format per row, the same as padding each cell.
    rows = [["PROTO", "PROCESS", "X"], ["tcp4", "node", ""], ["udp6", "a-much-longer", "1"]]
    fast = io.StringIO()
    write_table(rows, fast)
    assert fast.getvalue() == "".join(
        "  ".join(c.ljust(n) for c, n in zip(r, (5, 13, 1), strict=True)).rstrip() + "\n"
        for r in rows)
    wide = io.StringIO()
    write_table([*rows, ["tcp4", "名前", "2"]], wide)
    lines = wide.getvalue().splitlines()
    assert lines[:3] == fast.getvalue().splitlines()
    assert text_width(lines[3]) == text_width(lines[2]) and lines[3].endswith(" 2")


@linux
def test_kill_pid_of_a_zombie_leader_whose_thread_holds_the_port(spawn: Spawner) -> None:
    # The main thread exited; another thread holds the listener and ignores SIGTERM. The
    # process is alive: "exited" with exit 0 would be a lie while the port stays held.
    held = spawn("--zombie-leader", "--ignore-term")
    wait_for(lambda: len(os.listdir(f"/proc/{held.pid}/task")) == 2
             and psutil.Process(held.pid).status() == psutil.STATUS_ZOMBIE)
    res = run_cli("kill", str(held.pid), "--yes", "--grace", "0.5")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"PID {held.pid}: SIGTERM sent" in res.stdout
    assert f"PID {held.pid}: still running" in res.stdout and "exited" not in res.stdout
    assert "--force" in res.stderr  # here SIGKILL is what helps
    res = run_cli("kill", str(held.pid), "--yes", "--grace", "5", "--force")
    assert res.returncode == 0 and f"PID {held.pid}: exited" in res.stdout
    held.proc.wait(10)  # reaped: it really ended
