"""portside list --json against `ss`, as root and as the user nobody: same sockets, same owners."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
from typing import Any

import pytest

from conftest import RUNUSER, Spawner, list_json, make_time_wait, require_root, run_cli, wait_for
from portside.system.probe import is_ipv6_available

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
    pytest.mark.skipif(shutil.which("ss") is None, reason="ss (iproute2) is not installed"),
]

SS_STATES = {"ESTAB": "ESTABLISHED", "TIME-WAIT": "TIME_WAIT", "SYN-SENT": "SYN_SENT",
             "SYN-RECV": "SYN_RECV", "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2",
             "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK", "LISTEN": "LISTEN",
             "CLOSING": "CLOSING", "CLOSE": "CLOSE", "UNCONN": "NONE"}
Row = tuple[str, str, int, Any, Any, str]


def _endpoint(text: str, v6_hint: bool) -> tuple[str, int]:
    addr, _, port = text.rpartition(":")
    addr = addr.strip("[]").split("%")[0]
    if addr == "*":  # ss prints a dual-stack "::" socket as *
        addr = "::" if v6_hint else "0.0.0.0"
    return str(ipaddress.ip_address(addr)), int(port) if port != "*" else 0


def ss_rows(proto: str, user: str | None = None) -> dict[Row, tuple[list[int], float | None]]:
    """`ss -Htanpo` (or -u): every socket with its holder PIDs and TIME_WAIT timer."""
    cmd = ["ss", "-H", "-n", "-a", "-p", "-o", "-t" if proto == "tcp" else "-u"]
    if user:
        cmd = [RUNUSER, "-u", user, "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout
    rows: dict[Row, tuple[list[int], float | None]] = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 5:
            continue
        state = "NONE" if proto == "udp" else SS_STATES[f[0]]
        v6 = f[3].startswith("[") or f[3].startswith("*")
        laddr, lport = _endpoint(f[3], v6)
        raddr, rport = _endpoint(f[4], v6)
        if rport == 0 and ipaddress.ip_address(raddr).is_unspecified:
            key: Row = (proto, laddr, lport, None, None, state)
        else:
            key = (proto, laddr, lport, raddr, rport, state)
        # A process holding the socket in two descriptors (a Werkzeug reloader's child does)
        # is listed by ss once per descriptor; we list each holder once.
        pids = sorted({int(p) for p in re.findall(r"pid=(\d+)", line)})
        m = re.search(r"timer:\(timewait,(?:(\d+)min)?(?:(\d+)sec)?(?:([\d.]+)ms)?", line)
        left = None
        if m:
            # Below 10 s ss prints seconds with three decimals but labels them "ms".
            ms = m[3] or "0"
            frac = float(ms) if "." in ms else int(ms) / 1000
            left = int(m[1] or 0) * 60 + int(m[2] or 0) + frac
        rows[key] = (pids, left)
    return rows


def ours(user: str | None = None) -> dict[Row, tuple[list[int], float | None]]:
    rows = list_json("--all", user=user)
    return {(r["proto"], r["local_address"], r["local_port"], r["remote_address"],
             r["remote_port"], r["state"]): (r["holders"], r["time_left"]) for r in rows}


def compare(user: str | None = None) -> None:
    """Same sockets and holders as ss; TIME_WAIT time left within 2 s. Retried: the two
    tools read a moment apart, and other programs on the machine may open sockets."""
    problems: list[str] = []
    for _ in range(5):
        theirs = {**ss_rows("tcp", user), **ss_rows("udp", user)}
        mine = ours(user)
        problems = []
        if set(theirs) != set(mine):
            only_ss, only_us = set(theirs) - set(mine), set(mine) - set(theirs)
            problems.append(f"only ss: {only_ss}; only us: {only_us}")
        for key in set(theirs) & set(mine):
            (spids, sleft), (mpids, mleft) = theirs[key], mine[key]
            if spids != mpids:
                problems.append(f"{key}: ss holders {spids}, ours {mpids}")
            if (sleft is None) != (mleft is None) or (
                    sleft is not None and mleft is not None and abs(sleft - mleft) > 2.0):
                problems.append(f"{key}: ss time left {sleft}, ours {mleft}")
        if not problems:
            return
    raise AssertionError("\n".join(problems))


def _population(spawn: Spawner) -> list[int]:
    held = [spawn("--fork"), spawn("--udp")]
    if is_ipv6_available():
        held.append(spawn("--host", "::1"))
        held.append(spawn("--host", "::"))
    make_time_wait(5)
    return [h.port for h in held]


def test_list_agrees_with_ss_as_root(spawn: Spawner) -> None:
    _population(spawn)
    with socket.socket() as lsn:  # and a live connection, for --all
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        with socket.create_connection(lsn.getsockname()):
            srv, _ = lsn.accept()
            with srv:
                compare()


def test_list_agrees_with_ss_as_nobody(spawn: Spawner) -> None:
    require_root()
    ports = _population(spawn)
    mine = spawn(user="nobody")  # a listener the ordinary user owns
    compare(user="nobody")
    rows = list_json(user="nobody")
    by_port = {r["local_port"]: r for r in rows if r["state"] != "TIME_WAIT"}
    # root's listeners are all there, owner unknown, the user taken from the socket
    for port in ports:
        assert by_port[port]["pid"] is None and by_port[port]["holders"] == []
        assert by_port[port]["user"] == "root"
    assert by_port[mine.port]["pid"] == mine.pid and by_port[mine.port]["user"] == "nobody"
    table = run_cli("list", user="nobody")
    assert table.returncode == 0 and "sudo" in table.stderr


def test_nobody_cannot_kill_roots_process(spawn: Spawner) -> None:
    require_root()
    held = spawn()
    res = run_cli("kill", f":{held.port}", "--yes", user="nobody")
    assert res.returncode == 1 and "sudo" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("kill", str(held.pid), "--yes", "--grace", "0.2", user="nobody")
    assert res.returncode == 1 and "permission denied" in res.stderr
    assert str(held.pid) in res.stderr and "sudo" in res.stderr
    assert "--force" not in res.stdout + res.stderr  # it could not help
    assert wait_for(lambda: os.path.exists(f"/proc/{held.pid}"))


def test_nobody_can_kill_its_own_listener(spawn: Spawner) -> None:
    require_root()
    held = spawn(user="nobody")
    res = run_cli("kill", f":{held.port}", "--yes", user="nobody")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"port {held.port}: freed" in res.stdout
    why = run_cli("why", str(held.port), user="nobody")
    assert why.returncode == 0, why.stdout
