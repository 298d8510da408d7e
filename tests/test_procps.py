"""procps (/proc read directly) says what psutil says, process by process, as root and as
an ordinary user: the one-shot commands read processes with it instead of psutil."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import RUNUSER, installed, nobody_env, nobody_python, wait_for

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")

# Run as a script (as root here, as nobody through runuser): every process of the machine,
# every field, psutil's answer against procps's; prints the differences as JSON.
COMPARE = r"""
import json, sys
import psutil
from portside.system import procps

FIELDS = ("create_time", "name", "ppid", "username", "exe", "cmdline", "cwd", "status",
          "memory_info")

def read(mod, pid, field):
    try:
        proc = mod.Process(pid)
        with proc.oneshot():
            value = getattr(proc, field)()
    except Exception as exc:
        return [type(exc).__name__, None]
    if field == "memory_info":
        value = value.rss
    return ["ok", value]

pids = [int(a) for a in sys.argv[1:]] or psutil.pids()
out = {"compared": 0, "denied": 0, "differ": []}
for pid in pids:
    for field in FIELDS:
        a, b = read(psutil, pid, field), read(procps, pid, field)
        if a[0] == b[0] == "ok" and field == "create_time":
            same = abs(a[1] - b[1]) < 1e-6
        else:
            same = a == b
        if same:
            out["compared"] += 1
            out["denied"] += a[0] == "AccessDenied"
        elif psutil.pid_exists(pid) and field not in ("status", "memory_info"):
            # status and memory move between two reads of a live process: those are
            # compared on a process that holds still (test_a_still_process...).
            out["differ"].append([pid, field, a, b])
print(json.dumps(out))
"""


def compare(*pids: int, user: str | None = None) -> dict[str, Any]:
    if user is None:
        cmd = [sys.executable, "-c", COMPARE, *map(str, pids)]
        env = None
    else:
        cmd = [RUNUSER, "-u", user, "--", *nobody_python(), "-c", COMPARE, *map(str, pids)]
        env = nobody_env()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


@linux
def test_every_process_reads_the_same_as_root() -> None:
    got = compare()
    assert got["differ"] == []
    assert got["compared"] >= 9 * 10  # a machine has more than ten processes


@linux
def test_every_process_reads_the_same_as_an_ordinary_user() -> None:
    installed()
    got = compare(user="nobody")
    assert got["differ"] == []
    # Root's processes' programs and directories are denied to nobody, by both.
    assert got["denied"] >= 2


@linux
def test_a_still_process_long_name_and_zombie(tmp_path: Path) -> None:
    # A program whose name the kernel cuts to 15 characters: psutil takes it whole from
    # the command line.
    long = tmp_path / "portside-a-very-long-program-name"
    shutil.copyfile(shutil.which("sleep") or "/bin/sleep", long)
    long.chmod(0o755)
    still = subprocess.Popen([str(long), "60"], cwd=tmp_path)
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    try:
        wait_for(lambda: psutil.Process(zombie).status() == "zombie")
        wait_for(lambda: psutil.Process(still.pid).status() == "sleeping")
        got = compare(still.pid, zombie)
        assert got["differ"] == [] and got["compared"] == 18
        from portside.system import procps
        proc = procps.Process(still.pid)
        assert proc.name() == long.name and proc.cwd() == str(tmp_path)
        assert (proc.status(), proc.memory_info().rss) == ("sleeping", psutil.Process(
            still.pid).memory_info().rss)
        with pytest.raises(procps.ZombieProcess):
            procps.Process(zombie).exe()
        assert proc.cpu_percent() == 0.0  # the first reading primes, as psutil's
    finally:
        still.kill()
        still.wait()
        os.waitpid(zombie, 0)
    with pytest.raises(procps.NoSuchProcess):
        procps.Process(zombie)
