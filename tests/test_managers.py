"""Who brings a server back, for real: Flask's reloader, uvicorn --reload, npm run dev,
supervisord, pm2 (fork and cluster mode) and a shell loop, each started by the test. For
each: the manager in `list --json`, `why` naming the action that frees the port for good,
`kill` exiting 4 where the manager restarts the server, and `free` leaving the port free
for the whole settle time."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import CHILD, Tmux, alive, ended, list_json, portside_cmd, run_cli, wait_for
from managed import (
    APP_JS,
    Loop,
    Pm2,
    Tree,
    free_port,
    listening,
    port_is_free,
)
from portside.model import Manager, ProcessInfo
from portside.system.managers import ManagerIndex

FLASK_APP = """
import sys
from flask import Flask
app = Flask(__name__)
app.run(host="127.0.0.1", port=int(sys.argv[1]), debug=True)
"""
ASGI_APP = """
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})
"""
Start = Callable[..., Tree]


def _other(row: dict[str, Any]) -> int:
    """The holder that is not the main one (the serving child, the worker)."""
    others = [p for p in row["holders"] if p != row["pid"]]
    assert len(others) == 1, row
    return int(others[0])


def _freed(port: int, *args: str) -> str:
    """`portside free :PORT --yes` must free it for good; returns what it printed."""
    res = run_cli("free", f":{port}", "--yes", "--settle", "2", *args, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"port {port}: freed for good (and stayed free for 2s)" in res.stdout, res.stdout
    assert port_is_free(port)
    return res.stdout


# Flask (Werkzeug's reloader) ----------------------------------------------------------------


def _flask(start: Start, tmp_path: Path) -> tuple[int, Tree, dict[str, Any]]:
    port = free_port()
    (tmp_path / "app.py").write_text(FLASK_APP)
    # As a user types it: `python app.py`; the reloader runs its child with the full path.
    python = Path(sys.executable)
    tree = start([python.name, "app.py", str(port)], cwd=tmp_path,
                 env={"PATH": f"{python.parent}:{os.environ.get('PATH', '')}"})
    row = listening(port, holders=2)  # the reloader and its serving child
    tree.remember()
    return port, tree, row


def test_flask_debug_reloader_is_named_and_freed(start: Start, tmp_path: Path) -> None:
    port, tree, row = _flask(start, tmp_path)
    child = _other(row)
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == (
        "reloader", "werkzeug", tree.pid, "on file change")
    assert m["stop"] == f"kill {tree.pid}" and row["pid"] == tree.pid
    why = run_cli("why", str(port)).stdout
    assert f"PID {tree.pid} is the reloader werkzeug (PID {tree.pid}): it holds the port " \
        f"with its child PID {child}, which serves it" in why, why
    assert f"Remedy (frees it for good): `portside kill :{port}`" in why
    said = _freed(port)
    assert "(reloader)" in said and "(serves)" in said  # told apart in the plan
    assert not alive(tree.pid) and not alive(child)


def test_a_werkzeug_child_left_by_a_killed_reloader_is_an_orphan(start: Start,
                                                                 tmp_path: Path) -> None:
    port, tree, row = _flask(start, tmp_path)
    child = _other(row)
    tree.proc.send_signal(signal.SIGKILL)  # the reloader dies; its child keeps the port
    tree.proc.wait(10)
    orphan = wait_for(lambda: next((r for r in list_json(f":{port}")
                                    if r["pid"] == child and r["managed_by"]), None))
    m = orphan["managed_by"]
    assert (m["kind"], m["pid"], m["restarts"], m["stop"]) == (
        "orphan", None, "never", f"kill {child}")
    assert any("WERKZEUG_RUN_MAIN=true" in e for e in m["evidence"]), m
    why = run_cli("why", str(port)).stdout
    assert f"PID {child} is an orphan: it is a Werkzeug reloader's child" in why, why
    _freed(port)
    assert not alive(child)


# uvicorn --reload ---------------------------------------------------------------------------


def test_uvicorn_reload_restarts_the_worker_on_a_file_change(start: Start,
                                                             tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "asgi.py").write_text(ASGI_APP)
    tree = start([sys.executable, "-m", "uvicorn", "asgi:app", "--port", str(port),
                  "--reload"], cwd=tmp_path)
    row = listening(port, holders=2)
    worker = _other(row)
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == (
        "reloader", "uvicorn --reload", tree.pid, "on file change")
    why = run_cli("why", str(port)).stdout
    assert f"PID {tree.pid} is the reloader uvicorn --reload (PID {tree.pid}): it holds the " \
        f"port with its child PID {worker}, which serves it, and starts a new server on the " \
        "next file change." in why, why
    # Killing the worker alone: "exited", and the reloader keeps the port.
    res = run_cli("kill", str(worker), "--yes", "--settle", "0")
    assert res.returncode == 0 and f"PID {worker}: exited" in res.stdout, res.stdout
    assert f"note: PID {worker} serves under the reloader PID {tree.pid}, which holds the " \
        "port too, and starts a new one on the next file change: signalling PID " \
        f"{worker} alone does not free it" in res.stderr, res.stderr
    held = listening(port)
    assert held["holders"] == [tree.pid]
    (tmp_path / "asgi.py").write_text(ASGI_APP + "\n# changed\n")
    again = listening(port, holders=2)  # ... and starts a new worker on the next change
    assert _other(again) != worker
    tree.remember()
    said = _freed(port)
    assert "(reloader)" in said
    assert not alive(tree.pid)


# npm run dev --------------------------------------------------------------------------------


def _npm(start: Start, tmp_path: Path, user: str | None = None) -> tuple[int, Tree,
                                                                          dict[str, Any]]:
    port = free_port()
    (tmp_path / "server.js").write_text(APP_JS)
    (tmp_path / "package.json").write_text('{"name": "demo", "version": "1.0.0", '
                                           '"scripts": {"dev": "node server.js"}}')
    if user:
        tmp_path.chmod(0o777)
    tree = start(["npm", "run", "dev"], cwd=tmp_path, env={"PORT": str(port)}, user=user)
    row = listening(port, user=user)
    tree.remember()
    return port, tree, row


def _npm_pid(tree: Tree) -> int:
    """npm itself (under runuser, its child)."""
    for proc in [psutil.Process(tree.pid), *psutil.Process(tree.pid).children(recursive=True)]:
        if proc.name().startswith("npm"):
            return proc.pid
    raise AssertionError("no npm process")


@pytest.fixture
def node_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="portside-npm-"))


def test_npm_run_dev_names_the_script_and_frees_both(start: Start, node_dir: Path) -> None:
    port, tree, row = _npm(start, node_dir)
    npm, node = tree.pid, row["pid"]
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == (
        "script", "npm run dev", npm, "never")
    assert m["stop"] == f"kill {npm} {node}"
    why = run_cli("why", str(port)).stdout
    assert f"PID {node} runs under the package script npm run dev (PID {npm}), which does " \
        "not restart it." in why, why
    said = _freed(port)
    assert said.index(f"PID {npm}: SIGTERM sent") < said.index(f"PID {node}: SIGTERM sent")
    assert not alive(npm) and not alive(node)


def test_sigterm_to_npm_alone_leaves_an_orphan_that_free_ends(start: Start,
                                                             node_dir: Path) -> None:
    port, tree, row = _npm(start, node_dir)
    node = row["pid"]
    res = run_cli("kill", str(tree.pid), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    orphan = wait_for(lambda: next((r for r in list_json(f":{port}")
                                    if (r["managed_by"] or {}).get("kind") == "orphan"), None))
    assert orphan["pid"] == node
    assert any("npm_lifecycle_event=dev" in e for e in orphan["managed_by"]["evidence"])
    _freed(port)
    assert not alive(node)


def test_npm_as_nobody_for_its_own_server(start: Start, node_dir: Path) -> None:
    port, tree, row = _npm(start, node_dir, user="nobody")
    npm = _npm_pid(tree)
    assert row["managed_by"]["kind"] == "script" and row["managed_by"]["pid"] == npm
    res = run_cli("free", f":{port}", "--yes", "--settle", "1", user="nobody")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "freed for good" in res.stdout and port_is_free(port)


# supervisord --------------------------------------------------------------------------------


SUPERVISOR_CONF = """
[unix_http_server]
file={dir}/s.sock
[supervisord]
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:web]
command={python} {child} --port {port} --lifetime 600
startsecs=0
"""


def test_supervisord_program_is_restarted_by_kill_and_stopped_by_free(start: Start) -> None:
    from conftest import CHILD

    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="sv-", dir="/tmp"))  # a unix socket path is short
    conf = home / "supervisord.conf"
    conf.write_text(textwrap.dedent(SUPERVISOR_CONF.format(
        dir=home, python=sys.executable, child=CHILD, port=port)))
    supervisord = str(Path(sys.executable).parent / "supervisord")
    tree = start([sys.executable, supervisord, "-c", str(conf)], cwd=home)
    row = listening(port)
    tree.remember()
    url = f"unix://{home}/s.sock"
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == (
        "supervisord", "web", tree.pid, "always")
    assert m["stop"] == f"supervisorctl -s {url} stop web"
    why = run_cli("why", str(port)).stdout
    assert f"Remedy (frees it for good): `supervisorctl -s {url} stop web`" in why, why
    res = run_cli("kill", f":{port}", "--yes")
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"restarted by supervisord (PID {tree.pid}, program web): something restarts " \
        "it" in res.stdout, res.stdout
    tree.remember()
    said = _freed(port)
    assert "supervisord stopped web" in said and "SIGTERM" not in said
    assert alive(tree.pid)  # supervisord itself goes on, with the program stopped


# pm2 ------------------------------------------------------------------------------------------


def test_pm2_fork_mode_app_is_stopped_by_free(pm2: Pm2, tmp_path: Path) -> None:
    pm2.port = free_port()
    (tmp_path / "app.js").write_text(APP_JS)
    assert pm2.run("start", str(tmp_path / "app.js"), "--name", "api").returncode == 0
    row = listening(pm2.port)
    daemon = pm2.daemon()
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == ("pm2", "api", daemon, "always")
    assert m["stop"] == f"PM2_HOME={pm2.home} pm2 stop api"
    why = run_cli("why", str(pm2.port)).stdout
    assert f"runs under pm2 (PID {daemon}, app api), which restarts it at once" in why, why
    assert f"Remedy (frees it for good): `PM2_HOME={pm2.home} pm2 stop api`" in why
    res = run_cli("kill", f":{pm2.port}", "--yes")
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"restarted by pm2 (PID {daemon}, app api): something restarts it" in res.stdout
    res = run_cli("free", f":{pm2.port}", "--yes", "--settle", "2")
    assert res.returncode == 1 and "pm2 is not on PATH" in res.stderr  # said, not guessed
    res = run_cli("free", f":{pm2.port}", "--yes", "--settle", "2", env=pm2.path_env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pm2 stopped api" in res.stdout and port_is_free(pm2.port)
    assert daemon is not None and alive(daemon)


def test_pm2_cluster_app_is_stopped_by_free_and_the_daemon_never_signalled(
        pm2: Pm2, tmp_path: Path) -> None:
    pm2.port = free_port()
    (tmp_path / "app.js").write_text(APP_JS)
    assert pm2.run("start", str(tmp_path / "app.js"), "-i", "2", "--name", "web"
                   ).returncode == 0
    row = listening(pm2.port)
    daemon = pm2.daemon()
    assert row["pid"] == daemon
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"]) == ("pm2", "web", daemon)
    assert "is the pm2 daemon" in m["caution"]
    why = run_cli("why", str(pm2.port)).stdout
    assert f"Remedy (frees it for good): `PM2_HOME={pm2.home} pm2 stop web`" in why, why
    res = run_cli("free", f":{pm2.port}", "--yes", "--settle", "2", env=pm2.path_env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pm2 stopped web" in res.stdout and "SIGTERM" not in res.stdout
    assert daemon is not None and alive(daemon)


# A shell loop ---------------------------------------------------------------------------------


def test_a_shell_loop_is_named_and_stopped_first(loop: Loop) -> None:
    server = loop.server()
    row = listening(loop.port)
    m = row["managed_by"]
    assert (m["kind"], m["name"], m["pid"], m["restarts"]) == (
        "loop", "sh", loop.shell.pid, "always")
    assert m["stop"] == f"kill {loop.shell.pid} {server}"
    assert m["caution"] == (f"PID {server} is restarted by the shell loop PID "
                            f"{loop.shell.pid}: signalling it frees the port only until the "
                            "shell loop restarts it")
    why = run_cli("why", str(loop.port)).stdout
    assert f"PID {server} runs under a sh restart loop (PID {loop.shell.pid}), which " \
        "restarts it at once when it exits." in why, why
    assert f"Remedy (frees it for good): `kill {loop.shell.pid} {server}`, or `portside free " \
        f":{loop.port}`." in why
    table = run_cli("list", f":{loop.port}").stdout
    assert table.splitlines()[0].split()[-1] == "MANAGER"
    assert f"sh loop ({loop.shell.pid})" in table
    said = _freed(loop.port)
    assert said.index(f"PID {loop.shell.pid}: SIGTERM sent") < \
        said.index(f"PID {server}: SIGTERM sent")
    assert loop.shell.wait(10) is not None and not alive(server)


def test_a_shell_loop_as_nobody(nobody_loop: tuple[int, Tree]) -> None:
    port, tree = nobody_loop
    row = listening(port, user="nobody")
    m = row["managed_by"]
    assert m["kind"] == "loop" and psutil.Process(m["pid"]).username() == "nobody"
    tree.remember()
    res = run_cli("free", f":{port}", "--yes", "--settle", "1", user="nobody")
    assert res.returncode == 0, res.stdout + res.stderr
    assert port_is_free(port) and not alive(m["pid"]) and not alive(row["pid"])


# A harness above the tests: loops that wait, read lines, or are Python run nothing again.
HARNESS = """python3 -c '
while False:
    done = True
'
n=0; while [ "$n" -lt 1 ]; do n=$((n + 1)); done
printf "x\\n" | while read line; do echo "$line" >/dev/null; done
while ! test -d /; do sleep 1; done
timeout 600 sh -c "$SERVER; true"
true
"""


def test_loops_in_a_harness_above_the_server_restart_nothing(start: Start) -> None:
    port = free_port()
    server = shlex.join([sys.executable, str(CHILD), "--port", str(port), "--lifetime", "600"])
    tree = start(["bash", "-c", HARNESS], env={"SERVER": server})
    row = listening(port)
    chain = [p.name() for p in psutil.Process(row["pid"]).parents()]
    assert chain[:3] == ["sh", "timeout", "bash"], chain  # the harness is above it
    assert row["managed_by"] is None, row["managed_by"]
    assert f"portside kill :{port}" in run_cli("why", str(port)).stdout
    tree.end()


# The rules, on a made-up /proc --------------------------------------------------------------


class FakeProc:
    """A /proc of made-up processes: environ and stat files, as ManagerIndex reads them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[int, ProcessInfo] = {}

    def add(self, pid: int, ppid: int, cmdline: tuple[str, ...], env: dict[str, str] | None
            = None, pgid: int | None = None, sid: int | None = None, tty: int = 0,
            cwd: str | None = None) -> ProcessInfo:
        d = self.root / str(pid)
        d.mkdir()
        if cwd is not None:
            (d / "cwd").symlink_to(cwd)
        if env is not None:  # no environ file: unreadable, as another user's would be
            (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))
        (d / "stat").write_text(f"{pid} ({cmdline[0][:15]}) S {ppid} {pgid or pid} "
                                f"{sid or pgid or pid} {tty} 0 0\n")
        info = ProcessInfo(pid, ppid, cmdline[0].rsplit("/", 1)[-1], 1000.0 + pid,
                           cmdline=cmdline, cwd=cwd)
        self.procs[pid] = info
        return info

    def judge(self, *holders: int) -> dict[int, Manager]:
        return ManagerIndex(str(self.root)).judge({h: set(holders) for h in holders},
                                                   self.procs)


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    (tmp_path / "proc").mkdir()
    return FakeProc(tmp_path / "proc")


@pytest.mark.parametrize("shell,script", [
    ("sh", "while true; do node s.js; done"),
    ("bash", "until node s.js; do sleep 1; done"),
    ("/bin/dash", "while :\ndo\n  node s.js\ndone"),
])
def test_a_restart_loop_in_any_shell(fake: FakeProc, shell: str, script: str) -> None:
    fake.add(100, 1, (shell, "-c", script), {})
    fake.add(101, 100, ("node", "s.js"), {})
    m = fake.judge(101)[101]
    assert (m.kind, m.pid, m.restarts, m.stop) == ("loop", 100, "always", "kill 100 101")


@pytest.mark.parametrize("script", [
    "while ! nc -z db 5432; do sleep 1; done; node s.js; true",  # waits, then runs it once
    "ls | while read f; do node \"$f\"; done",  # one run per line read: not a restart
    "python3 -c 'while x: do(s.js)'; node s.js; true",  # another language's loop
    "while true; do nodemon x.js; done; node s.js; true",  # a loop that runs something else
    "until node -e 1; do sleep 1; done; node s.js; true",  # the same program, other arguments
])
def test_a_loop_that_does_not_run_the_server_again(fake: FakeProc, script: str) -> None:
    fake.add(100, 1, ("bash", "-c", script), {})
    fake.add(101, 100, ("node", "s.js"), {})
    assert fake.judge(101) == {}


def test_a_restart_loop_above_a_wrapper(fake: FakeProc) -> None:
    # The loop runs npm; npm's shell runs the server: the loop is judged by what it runs.
    fake.add(100, 1, ("bash", "-c", "while true; do npm run dev; sleep 1; done"), {})
    fake.add(101, 100, ("npm", "run", "dev"), {})
    fake.add(102, 101, ("sh", "-c", "node s.js"), {"npm_lifecycle_event": "dev"})
    fake.add(103, 102, ("node", "s.js"), {"npm_lifecycle_event": "dev"})
    m = fake.judge(103)[103]
    assert (m.kind, m.pid, m.restarts) == ("loop", 100, "always")
    assert m.evidence[0].endswith("while true; do npm run dev; sleep 1; done")


def test_a_loop_in_a_script_file(fake: FakeProc, tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\nwhile true\ndo\n  ./server\ndone\n")
    fake.add(100, 1, ("bash", "run.sh"), {}, cwd=str(tmp_path))
    fake.add(101, 100, ("./server",), {})
    assert fake.judge(101)[101].kind == "loop"
    fake2 = FakeProc(tmp_path / "proc2")
    (tmp_path / "proc2").mkdir()
    (tmp_path / "once.sh").write_text("#!/bin/sh\n./server\n")
    fake2.add(100, 1, ("bash", "once.sh"), {}, cwd=str(tmp_path))
    fake2.add(101, 100, ("./server",), {})
    assert fake2.judge(101) == {}  # a script without a loop restarts nothing


def test_django_runserver_autoreloader(fake: FakeProc) -> None:
    # Typed as `python3 manage.py runserver`: the reloader runs its child with the full
    # path of the interpreter.
    fake.add(600, 1, ("python3", "manage.py", "runserver"), {})
    fake.add(601, 600, ("/usr/bin/python3", "manage.py", "runserver"), {"RUN_MAIN": "true"})
    managers = fake.judge(600, 601)
    assert (managers[601].kind, managers[601].name, managers[601].pid) == (
        "reloader", "django", 600)
    assert managers[600].pid == 600 and managers[600].kind == "reloader"
    assert "holds the port too" in (managers[601].caution or "")


def test_a_script_read_from_a_pipe_is_never_read(start: Start) -> None:
    """`bash /dev/stdin` (or /dev/fd/N, process substitution): the path names the shell's
    own descriptor. Opened by portside it would be portside's: its stdin, a pipe still
    open here, and reading it would block `list` for ever (it blocked `make bench`)."""
    from conftest import CHILD

    port = free_port()
    r, w = os.pipe()
    try:
        tree = start(["bash", "/dev/fd/0"], stdin=r)
        os.write(w, f"while true; do {sys.executable} {CHILD} --port {port}; sleep 1; done\n"
                 .encode())
        listening(port)
        tree.remember()
        with ended(subprocess.Popen([*portside_cmd(), "list", "--json", f":{port}"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)) as listed:
            code = listed.wait(timeout=30)  # its stdin stays open (communicate would close it)
            assert listed.stdout is not None
            out = listed.stdout.read()
        assert code == 0 and str(port) in out
    finally:
        os.close(r)
        os.close(w)


def test_parent_pid_1_alone_is_not_an_orphan(fake: FakeProc) -> None:
    fake.add(200, 1, ("node", "server.js"), {})  # setsid node server.js: its own leader
    assert fake.judge(200) == {}
    # Left behind by a job that ended: its group's leader is gone, on a terminal.
    fake.add(300, 1, ("gunicorn", "app:app"), {}, pgid=290, sid=280, tty=34816)
    m = fake.judge(300)[300]
    assert m.kind == "orphan" and any("process group 290" in e for e in m.evidence)
    # On a desktop, orphans go to the user's systemd (a subreaper), not to PID 1.
    fake.add(50, 1, ("/usr/lib/systemd/systemd", "--user"), {})
    fake.add(310, 50, ("python3", "app.py"), {"WERKZEUG_RUN_MAIN": "true"})
    m = fake.judge(310)[310]
    assert m.kind == "orphan" and m.evidence[-1] == ("its parent is PID 50 (systemd), which "
                                                      "adopted it")


def test_an_unreadable_environment_is_unknown_never_unmanaged(fake: FakeProc) -> None:
    fake.add(400, 1, ("python3", "server.py"), None)  # another user's: environ unreadable
    m = fake.judge(400)[400]
    assert (m.kind, m.restarts, m.via) == ("unknown", "unknown", "holders")
    assert "cannot be read" in m.evidence[0]
    fake.add(401, 1, ("python3", "server.py"), {})  # readable, and nothing manages it
    assert fake.judge(401) == {}


def test_supervisord_seen_from_its_command_line_when_the_environment_is_unreadable(
        fake: FakeProc) -> None:
    fake.add(500, 1, ("/usr/bin/python3", "/usr/bin/supervisord", "-n"), None)
    fake.add(501, 500, ("python3", "web.py"), None)
    m = fake.judge(501)[501]
    assert (m.kind, m.pid, m.via) == ("supervisord", 500, "none")


def test_markers_are_read_once_per_process(fake: FakeProc) -> None:
    fake.add(100, 1, ("sh", "-c", "while true; do x; done"), {})
    fake.add(101, 100, ("x",), {"npm_lifecycle_event": "dev"})
    index = ManagerIndex(str(fake.root))
    index.judge({101: {101}}, fake.procs)
    (fake.root / "101" / "environ").write_bytes(b"npm_lifecycle_event=start")
    index.judge({101: {101}}, fake.procs)
    assert index.markers(fake.procs[101]).env == {"npm_lifecycle_event": "dev"}
    # A new process on the same PID (another start time) is read again.
    fake.procs[101] = fake.procs[101]._replace(create_time=5000.0)
    assert index.markers(fake.procs[101]).env == {"npm_lifecycle_event": "start"}


# The dashboard in a real terminal -------------------------------------------------------------


def test_the_dashboard_in_a_terminal_names_the_manager_and_frees_for_good(
        loop: Loop, tmux: Callable[..., Tmux]) -> None:
    server = loop.server()
    term = tmux([*portside_cmd(), f":{loop.port}", "--settle", "1"], size=(180, 45))
    screen = term.wait_text("sh loop", timeout=30)
    assert "MANAGER" in screen and str(server) in screen
    screen = term.wait_text("shell restart loop (sh)")
    assert f"PID {loop.shell.pid} sh -c 'while true;" in screen
    assert f"PID {server} python" in screen and "serves" in screen
    term.send("t")
    screen = term.wait_text("Press a to free it for good instead")
    assert f"PID {server} is restarted by the shell loop PID {loop.shell.pid}" in screen
    term.wait_text("Ready: press y")  # keys before that are dropped
    term.send("a")
    term.wait_text("for good: stop what restarts it, then its holders?")
    term.wait_text("Ready: press y")
    term.send("y")
    term.wait_text(f"Port {loop.port} is free", timeout=30)
    assert loop.shell.wait(10) is not None and not alive(server)
    term.send("q")
    assert term.exit_code() == 0


# free: confirmation, dry run, refusals ----------------------------------------------------------


def test_free_asks_first_and_refuses_without_a_terminal(spawn: Any) -> None:
    held = spawn()
    res = run_cli("free", f":{held.port}")  # stdin is not a terminal, and no --yes
    assert res.returncode == 2 and "refusing to act without confirmation" in res.stderr
    dry = run_cli("free", f":{held.port}", "--dry-run")
    assert dry.returncode == 0 and f"Would free port {held.port} for good:" in dry.stdout
    assert "dry run: nothing done" in dry.stdout and alive(held.pid)
    res = run_cli("free", f":{held.port}", "--yes", "--settle", "0.5")
    assert res.returncode == 0 and f"PID {held.pid}: SIGTERM sent" in res.stdout
    assert not alive(held.pid)


def test_free_says_what_it_cannot_do() -> None:
    assert run_cli("free", f":{free_port()}").returncode == 3
    bad = run_cli("free", "0")
    assert bad.returncode == 2 and "invalid port '0'" in bad.stderr
    with socket.socket() as mine:  # held by the test itself: portside's own parent
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        res = run_cli("free", f":{mine.getsockname()[1]}", "--yes")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "one of portside's parents" in res.stderr and "nothing to do" in res.stderr
        assert "Traceback" not in res.stderr


def test_a_hostile_app_name_is_text_everywhere(fake: FakeProc) -> None:
    from portside.fmt import manager_cell, manager_title
    from portside.report import manager_sentence

    evil = "[bold]web\x1b[2J\u202e"
    fake.add(700, 1, ("PM2 v5.4.3: God Daemon (/tmp/p)",), {})
    fake.add(701, 700, ("node", "app.js"), {"pm_id": "0", "name": evil, "PM2_HOME": "/tmp/p"})
    m = fake.judge(701)[701]
    assert m.name == evil  # kept as it is (JSON escapes it), made safe where it is shown
    for shown in (manager_cell(m), manager_title(m), manager_sentence(701, m)):
        assert "\x1b" not in shown and "\u202e" not in shown and "web" in shown
