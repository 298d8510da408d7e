"""`make bench`: portside side by side with ss, lsof and psutil, on loopback populations.

Writes tests/bench/RESULTS.md, results.json and sampling.png. Everything talks to
127.0.0.1 only; every helper process is ended by its PID; every loop is bounded.
Environment: BENCH_RUNS (default 7), BENCH_SOAK seconds of churn for the memory test
(default 240), BENCH_QUICK=1 for a smoke run. `run.py --soak 3600` runs the hour-long
memory soak by itself (into soak.json); `run.py --plain` the sampler, the one-shot
commands and the dashboard at 10k-100k without the extra processes, quiet and with a
second core busy (into plain.json, also part of the full run); `run.py
--idle` measures the idle cost with and without the 200 extra processes (into
idle.json); `run.py --report` rewrites
RESULTS.md from results.json, soak.json and idle.json.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# What users run: the installed `portside` script (python -m adds runpy's ~6 ms).
_SCRIPT = Path(sys.executable).with_name("portside")
PORTSIDE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "portside"]
# In tmux: this checkout's code, whatever the tmux server's environment holds.
IN_TMUX = f"sh -c 'cd {ROOT} && exec env PYTHONPATH={ROOT}/app {' '.join(PORTSIDE)}"
QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "3" if QUICK else "7"))
SOAK = float(os.environ.get("BENCH_SOAK", "30" if QUICK else "240"))
WARMUP = 20.0 if QUICK else 90.0  # churn first fills the 60 s TIME_WAIT window
LIFETIME = 1800  # helpers end by themselves after this, whatever happens to the bench

helpers: list[psutil.Process] = []


def log(msg: str) -> None:
    # stderr: `run.py --dashboard` keeps stdout for its JSON.
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# Populations ---------------------------------------------------------------------------


def spawn_helper(*args: str) -> list[int]:
    """Start a helper; remember every PID it reports so that it is ended by PID."""
    proc = subprocess.Popen([sys.executable, str(HERE / "helpers.py"), *args, str(LIFETIME)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"helper {args} failed to start")
    pids: list[int] = json.loads(line)["pids"]
    for pid in pids:
        helpers.append(psutil.Process(pid))
    return pids


def end_helpers(procs: list[psutil.Process] | None = None) -> None:
    """SIGKILL helpers by PID (psutil checks they are still the processes we started).

    Killed all at once, then awaited together for at most 10 s: orphans that nobody reaps
    stay zombies, and a zombie counts as ended.
    """
    todo = list(procs if procs is not None else helpers)
    for p in todo:
        try:
            p.kill()
        except psutil.Error:
            pass
        if p in helpers:
            helpers.remove(p)
    deadline = time.monotonic() + 10
    while todo and time.monotonic() < deadline:
        todo = [p for p in todo if _running(p)]
        if todo:
            time.sleep(0.05)


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


_client_ip = [1]


def make_time_wait(count: int) -> None:
    """`count` TIME_WAIT sockets on loopback: server closes first.

    Linux reuses a loopback TIME_WAIT socket when a new connection has the same four-tuple
    (tcp_tw_reuse=2), so each batch connects from its own 127.0.0.x address and every
    connection of a batch from its own port.
    """
    made = 0
    while made < count:
        batch = min(10000, count - made)
        _client_ip[0] = _client_ip[0] % 250 + 2
        client_ip = f"127.0.0.{_client_ip[0]}"
        with socket.socket() as lsn:
            lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsn.bind(("127.0.0.1", 0))
            lsn.listen(1024)
            addr = lsn.getsockname()
            for i in range(batch):
                cli = socket.socket()
                cli.settimeout(5)
                cli.bind((client_ip, 20000 + i))
                cli.connect(addr)
                srv, _ = lsn.accept()
                srv.close()
                cli.recv(1)
                cli.close()
        made += batch


def tcp_count() -> int:
    out = subprocess.run(["ss", "-Htan"], capture_output=True, text=True, check=True).stdout
    return out.count("\n")


def build(kind: str, n: int) -> tuple[list[psutil.Process], float]:
    """Build one population; returns its helpers and when it was built (for TIME_WAIT age)."""
    before = list(helpers)
    if kind == "listeners":
        spawn_helper("listeners", str(n))
    elif kind == "established":
        spawn_helper("established", str(n))
    elif kind == "time_wait":
        make_time_wait(n)
    return [p for p in helpers if p not in before], time.monotonic()


# Timing --------------------------------------------------------------------------------


def run_cmd(cmd: list[str]) -> Callable[[], None]:
    def f() -> None:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return f


def alternate(contenders: dict[str, Callable[[], object]], runs: int,
              limits: dict[str, int] | None = None) -> dict[str, float]:
    """Medians (ms) of each contender, run in turn, in a different order every round."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    order = list(contenders)
    for i in range(runs):
        random.Random(i).shuffle(order)
        for name in order:
            if limits and len(times[name]) >= limits.get(name, runs):
                continue
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items() if v}


def whole_check(port: int, sampler: Any) -> object:
    """Is the port free, read from a whole sample (what the check did before)."""
    from portside.backend import PortHolders

    return PortHolders.of(port, sampler.sample())


def idle_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def sampler_section(results: dict[str, Any]) -> None:
    from portside.system import control
    from portside.system.sampler import Sampler

    pops = [("50 listeners", "listeners", 50), ("500 listeners", "listeners", 500),
            ("2k established", "established", 2000), ("1k TIME_WAIT", "time_wait", 1000),
            ("10k TIME_WAIT", "time_wait", 10000), ("30k TIME_WAIT", "time_wait", 30000),
            ("50k TIME_WAIT", "time_wait", 50000)]
    if QUICK:
        pops = [pops[0], pops[4]]
    rows = []
    for label, kind, n in pops:
        procs, built = build(kind, n)
        sockets = tcp_count()
        warm = Sampler(all_states=True)
        warm.sample()
        # As the dashboard samples: who manages each holder judged too (parent chains,
        # environment markers read once per process).
        managed = Sampler(all_states=True, managers=True)
        managed.sample()
        # "Is the port free now?", as kill, free, wait and the dashboard ask it after a
        # signal: the kernel asked for that port only, against a whole sample (before).
        check, again = Sampler(managers=True), Sampler(managers=True)
        check.sample()
        again.sample()  # its own: a port check keeps only that port's processes cached
        idle = idle_port()
        contenders: dict[str, Callable[[], object]] = {
            "portside": warm.sample,
            "portside +managers": managed.sample,
            "port check": functools.partial(control.port_holders, idle, check),
            "port check, whole sample": functools.partial(whole_check, idle, again),
            "portside cold": lambda: Sampler(all_states=True).sample(),
            "ss -tanp": run_cmd(["ss", "-tanp"]),
            "ss -tan": run_cmd(["ss", "-tan"]),
            "psutil": lambda: psutil.net_connections("tcp"),
        }
        limits = {}
        if shutil.which("lsof"):
            contenders["lsof -nP -iTCP"] = run_cmd(["lsof", "-nP", "-iTCP"])
            limits["lsof -nP -iTCP"] = 3 if n >= 10000 else RUNS
        med = alternate(contenders, RUNS, limits)
        whole = alternate({
            "portside list --json": run_cmd([*PORTSIDE, "list", "--json"]),
            "portside list --all --json": run_cmd([*PORTSIDE, "list", "--all", "--json"]),
            "ss -tanp": run_cmd(["ss", "-tanp"]),
        }, RUNS)
        age = time.monotonic() - built
        row = {"population": label, "sockets": sockets, "age_s": round(age, 1),
               "sampler": med, "process": whole}
        rows.append(row)
        log(f"{label}: {sockets} TCP sockets; portside {med['portside']:.1f} ms, "
            f"ss -tanp {med['ss -tanp']:.1f} ms, list --json "
            f"{whole['portside list --json']:.0f} ms vs {whole['ss -tanp']:.0f} ms "
            f"(measured {age:.0f}s after building)")
        end_helpers(procs)
        # Closing connections leaves TIME_WAIT sockets too: let them go before the next.
        wait_time_wait_gone()
    results["sampler"] = rows


def wait_time_wait_gone(limit: float = 75.0) -> None:
    """TIME_WAIT sockets last 60 s: let the previous population drain before the next."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Htan", "state", "time-wait"], capture_output=True,
                             text=True).stdout
        if out.count("\n") < 200:
            return
        time.sleep(1.0)


# The dashboard, headless -----------------------------------------------------------------


def synthetic(n: int, seed: int, mono: float) -> Any:
    from portside.demo import demo_snapshot
    from portside.model import Snapshot, Socket

    base = demo_snapshot(monotonic=mono)
    rnd = random.Random(seed)
    socks = list(base.sockets)
    for i in range(n):
        if rnd.random() < 0.05:  # 5% churn per tick
            continue
        socks.append(Socket("tcp", "ipv4", "127.0.0.1", 3000 + i % 50, "127.0.0.1",
                            10000 + i, "TIME_WAIT", ends=mono + 60.0 - (i % 60),
                            time_left_exact=True))
    return Snapshot(taken_at=base.taken_at, monotonic=mono, sockets=tuple(socks),
                    processes=base.processes, gaps=base.gaps, connections=base.connections)


def dashboard_section(results: dict[str, Any]) -> None:
    """In a fresh process: the dashboard's own heap, not the bench's, is what the GC walks."""
    out = subprocess.run([sys.executable, __file__, "--dashboard"], capture_output=True,
                         text=True, check=True, timeout=900)
    for line in out.stderr.splitlines():
        print(line, flush=True)
    results.update(json.loads(out.stdout))


def dashboard_measurements() -> dict[str, Any]:
    """The dashboard section's measurements (run by itself: run.py --dashboard)."""
    results: dict[str, Any] = {}
    from portside.demo import DEMO_MONOTONIC, DemoBackend
    from portside.ui.app import PortsideApp

    out = []
    for n in ([1000, 10000] if QUICK else [1000, 10000, 50000]):
        clock = [DEMO_MONOTONIC]

        def now(c: list[float] = clock) -> float:
            return c[0]

        app = PortsideApp(DemoBackend(), clock=now, live=False)
        walls: list[float] = []
        cpus: list[float] = []

        async def main(n: int = n, app: Any = app, walls: Any = walls, cpus: Any = cpus,
                       clock: Any = clock) -> None:
            async with app.run_test(size=(200, 50)) as pilot:
                app.apply_snapshot(synthetic(n, 0, clock[0]))
                await pilot.pause()
                snaps = [synthetic(n, k, clock[0] + k) for k in range(1, RUNS + 2)]
                for s in snaps:
                    clock[0] = s.monotonic
                    # Every socket a new object: each row is found by its key, as when
                    # the sampler keeps none (the live app's worst case).
                    w0, c0 = time.perf_counter(), time.process_time()
                    app.main.apply_snapshot(s)
                    await pilot.pause()
                    walls.append((time.perf_counter() - w0) * 1000)
                    cpus.append((time.process_time() - c0) * 1000)

        pauses: list[float] = []  # full passes
        every: list[float] = [0.0]  # the longest pass of any generation
        began = [0.0]

        def timed(phase: str, info: dict[str, int], began: list[float] = began,
                  pauses: list[float] = pauses, every: list[float] = every) -> None:
            if phase == "start":
                began[0] = time.perf_counter()
                return
            took = (time.perf_counter() - began[0]) * 1000
            every[0] = max(every[0], took)
            if info["generation"] == 2:
                pauses.append(took)

        gc.callbacks.append(timed)
        try:
            asyncio.run(main())
        finally:
            gc.callbacks.remove(timed)
        row = {"rows": n, "wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus),
               "gc2_count": len(pauses), "gc2_max_ms": max(pauses, default=0.0),
               "gc_max_ms": every[0]}
        out.append(row)
        log(f"dashboard apply+repaint at {n} rows: {row['wall_ms']:.1f} ms wall, "
            f"{row['cpu_ms']:.1f} ms CPU; {row['gc2_count']} full GC passes, the longest "
            f"{row['gc2_max_ms']:.1f} ms; the longest GC pass of any generation "
            f"{row['gc_max_ms']:.1f} ms")
    results["dashboard"] = out
    results["latency"] = key_latency()
    return results


def key_latency(population: int = 50000, presses: int = 60) -> dict[str, Any]:
    """Key-press latency while the live sampler refreshes a real population every second."""
    from textual import events

    from portside.system.backend import LiveBackend
    from portside.ui.app import PortsideApp
    from portside.ui.table import SocketTable

    n = 10000 if QUICK else population
    make_time_wait(n)
    app = PortsideApp(LiveBackend(), interval=1.0)
    lat: list[float] = []
    applied = [0]

    async def main() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            deadline = time.monotonic() + 30
            while app.model.snapshot is None and time.monotonic() < deadline:
                await pilot.pause(0.05)
            rnd = random.Random(1)
            table = app.query_one(SocketTable)
            for i in range(presses):
                await asyncio.sleep(rnd.uniform(0.05, 0.35))
                before = table.cursor
                # A key as the terminal delivers it; measured until the cursor has moved.
                # (Pilot.press() waits for idle and adds ~100 ms of its own.)
                t0 = time.perf_counter()
                app.post_message(events.Key("down" if i % 2 == 0 else "up", None))
                while table.cursor == before and time.perf_counter() - t0 < 10:
                    await asyncio.sleep(0)
                lat.append((time.perf_counter() - t0) * 1000)
            applied[0] = len(app.model.view)

    asyncio.run(main())
    lat.sort()
    res = {"sockets": applied[0], "p50_ms": statistics.median(lat),
           "p95_ms": lat[int(0.95 * (len(lat) - 1))], "presses": len(lat)}
    log(f"key latency at {applied[0]} rows refreshing every 1s: p50 {res['p50_ms']:.1f} ms, "
        f"p95 {res['p95_ms']:.1f} ms")
    wait_time_wait_gone()
    return res


# Real terminal runs: idle CPU, memory, start-up -------------------------------------------


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def pane_pid(session: str) -> int:
    return int(tmux("display", "-p", "-t", session, "#{pane_pid}").strip())


def cpu_seconds(pid: int) -> float:
    p = psutil.Process(pid)
    t = p.cpu_times()
    return float(t.user + t.system)


def launch(session: str, cmd: str, size: tuple[int, int] = (120, 40)) -> int:
    tmux("kill-session", "-t", session)
    # Right after its last session is killed the tmux server is still exiting, and a new
    # session asked of it is lost: asked again, a few times, until its pane is there.
    for _ in range(5):
        tmux("new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]),
             f"exec {cmd}")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            pid = tmux("display", "-p", "-t", session, "#{pane_pid}").strip()
            if pid.isdigit():
                return int(pid)
            time.sleep(0.05)
    raise RuntimeError(f"tmux did not start {cmd!r}")


def idle_section(results: dict[str, Any]) -> None:
    procs, _ = build("listeners", 100)
    seconds = 15 if QUICK else 60
    portside_pid = launch("bench-portside", f"{IN_TMUX}'")
    have_htop = shutil.which("htop") is not None
    htop_pid = launch("bench-htop", "htop -d 20") if have_htop else 0
    time.sleep(5)  # let both settle (start-up is measured separately)
    c0 = cpu_seconds(portside_pid)
    h0 = cpu_seconds(htop_pid) if have_htop else 0.0
    time.sleep(seconds)
    idle = {"seconds": seconds, "sockets": tcp_count(), "processes": len(psutil.pids()),
            "portside_pct": (cpu_seconds(portside_pid) - c0) / seconds * 100}
    if have_htop:
        idle["htop_pct"] = (cpu_seconds(htop_pid) - h0) / seconds * 100
    tmux("kill-session", "-t", "bench-portside")
    tmux("kill-session", "-t", "bench-htop")
    end_helpers(procs)
    results["idle"] = idle
    log(f"idle over {seconds}s at ~{idle['sockets']} sockets, {idle['processes']} processes, "
        f"2s refresh: portside {idle['portside_pct']:.2f}% of a core, "
        f"htop {idle.get('htop_pct', float('nan')):.2f}%")


# Typing at 100k sockets: a filter and the cursor, end to end ----------------------------

TYPED = ("-nginx 127.0.0 state:estab,tw -pid:1 python -postgres :3000-3049 proto:tcp "
         "-user:nobody addr:127.0.0.0/8 ") * 3  # 253 characters, half-written terms between
TYPED = TYPED[:253]


def filter_typing(population: int = 100000, gap: float = 0.02) -> dict[str, Any]:
    """Headless: TYPED into the filter box one key every `gap` seconds at `population`
    rows, a heartbeat on the event loop measuring how long the screen was held."""
    from textual import events

    from portside.demo import DEMO_MONOTONIC, DemoBackend, demo_snapshot
    from portside.model import Socket
    from portside.ui.app import PortsideApp

    base = demo_snapshot()
    pids = list(base.processes)
    socks = list(base.sockets)
    for i in range(population):
        pid = pids[i % len(pids)] if i % 3 == 0 else None
        socks.append(Socket("tcp", "ipv4", f"127.0.{i // 50000}.1", 3000 + i % 50,
                            "127.0.0.1", 10000 + i % 50000,
                            "ESTABLISHED" if pid else "TIME_WAIT", pid=pid,
                            holders=(pid,) if pid else (),
                            ends=None if pid else DEMO_MONOTONIC + 30.0))
    snap = base._replace(sockets=tuple(socks))
    app = PortsideApp(DemoBackend(), clock=lambda: DEMO_MONOTONIC, live=False)
    gaps: list[float] = []
    out: dict[str, Any] = {}

    async def beat(stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append((now - last) * 1000)
            last = now

    async def main() -> None:
        async with app.run_test(size=(200, 50)) as pilot:
            app.apply_snapshot(snap)
            await pilot.pause()
            await pilot.press("slash")
            box = app.main.query_one("#filter")
            stop = asyncio.Event()
            task = asyncio.create_task(beat(stop))
            t0 = time.perf_counter()
            for ch in TYPED:
                box.post_message(events.Key("space" if ch == " " else ch, ch))
                await asyncio.sleep(gap)
            typed = time.perf_counter()
            deadline = typed + 600
            while (app.main.filtering is not None or getattr(box, "value", "") != TYPED) \
                    and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            done = time.perf_counter()
            stop.set()
            await task
            gaps.sort()
            out.update(rows=len(app.model.rows), chars=len(TYPED), gap_ms=gap * 1000,
                       typing_s=typed - t0, last_key_to_view_s=done - typed,
                       longest_hold_ms=gaps[-1] - 5, p99_hold_ms=gaps[int(0.99 * len(gaps))] - 5)

    asyncio.run(main())
    return out


def tmux_cursor(session: str, presses: int = 40) -> dict[str, Any]:
    """Cursor keys sent to a dashboard in tmux; each timed until the screen first changes
    (the cursor drawn on the next row) and until the details pane shows the next socket
    (it follows on the table's message, a frame or more later)."""
    def details(screen: str) -> str | None:
        m = re.search(r"│ socket\s+(\S+ \S+)", re.sub(r"\x1b\[[0-9;:]*m", "", screen))
        return m[1] if m else None
    rnd = random.Random(1)
    drawn: list[float] = []
    followed: list[float] = []
    for i in range(presses):
        time.sleep(rnd.uniform(0.05, 0.35))
        before = tmux("capture-pane", "-p", "-e", "-t", session)
        t0 = time.monotonic()
        tmux("send-keys", "-t", session, "Down" if i % 2 == 0 else "Up")
        moved = None
        while time.monotonic() - t0 < 10:
            screen = tmux("capture-pane", "-p", "-e", "-t", session)
            if moved is None and screen != before:
                moved = time.monotonic() - t0
            if details(screen) != details(before):
                break
        followed.append((time.monotonic() - t0) * 1000)
        drawn.append((moved if moved is not None else time.monotonic() - t0) * 1000)
    drawn.sort()
    followed.sort()

    def p95(v: list[float]) -> float:
        return v[int(0.95 * (len(v) - 1))]
    return {"presses": presses, "p50_ms": statistics.median(drawn), "p95_ms": p95(drawn),
            "max_ms": drawn[-1], "details_p50_ms": statistics.median(followed),
            "details_p95_ms": p95(followed)}


def tmux_typing(session: str) -> dict[str, Any]:
    """TYPED sent to the dashboard's filter in tmux, a key every 20 ms: when the last key
    shows in the box, and when the table shows the filter's result."""
    tmux("send-keys", "-t", session, "/")
    time.sleep(0.5)
    t0 = time.monotonic()
    for ch in TYPED:
        tmux("send-keys", "-t", session, "-l", ch)
        time.sleep(0.02)
    typed = time.monotonic()
    echo = None
    while time.monotonic() - typed < 300:
        screen = tmux("capture-pane", "-p", "-t", session)
        if echo is None and TYPED.rstrip()[-24:] in screen:
            echo = time.monotonic() - typed
        if echo is not None and "filtering" not in screen.splitlines()[0]:
            break
        time.sleep(0.02)
    tmux("send-keys", "-t", session, "Escape")
    return {"send_s": typed - t0, "echo_s": echo if echo is not None else float("nan"),
            "result_s": time.monotonic() - typed}


def typing_only() -> int:
    """`run.py --typing`: keys at 100k sockets, into typing.json."""
    out: dict[str, Any] = {**stamp()}
    res = subprocess.run([sys.executable, __file__, "--typing-headless"], capture_output=True,
                         text=True, check=True, timeout=1800)
    out["headless"] = json.loads(res.stdout)
    log(f"filter typed headless: {out['headless']}")
    try:
        for block in range(10):
            spawn_helper("spread", "10000", str(block + 1))
        session = "bench-typing"
        launch(session, f"{IN_TMUX} --interval 1'", size=(200, 50))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not re.search(
                r" 100\d\d\d sockets", tmux("capture-pane", "-p", "-t", session)):
            time.sleep(0.5)
        out["sockets"] = tcp_count()
        pid = pane_pid(session)
        c0 = cpu_seconds(pid)
        time.sleep(20)
        out["no_keys_pct"] = (cpu_seconds(pid) - c0) / 20 * 100
        out["cursor"] = tmux_cursor(session)
        out["typing"] = tmux_typing(session)
        status = Path(f"/proc/{pid}/status").read_text()
        hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
        out["peak_rss_mb"] = int(hwm[1]) / 1024 if hwm else float("nan")
        log(f"tmux at {out['sockets']} sockets: {out}")
    finally:
        tmux("kill-session", "-t", "bench-typing")
        end_helpers()
    (HERE / "typing.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


def plain_only() -> int:
    """`run.py --plain`: the sampler and the one-shot commands against `ss -tanp` on a
    machine with only its own processes (no extra fd holders, which slow `ss -p`), at
    50 to 100k listeners, by themselves and with a second core kept busy, and the check
    that a port is free; at 10k and above the dashboard in tmux too (CPU with no keys,
    cursor keys end to end, RSS).
    Into plain.json."""
    rows = []
    try:
        for setting in ("quiet", "busy core"):
            busy = spawn_helper("busy", "1") if setting == "busy core" else []
            for n in (50, 1000, 10000, 50000, 100000):
                rows.append(plain_row(n, setting))
                end_helpers([p for p in helpers if p.pid not in busy])
            end_helpers()
    finally:
        end_helpers()
        tmux("kill-session", "-t", "bench-plain")
    (HERE / "plain.json").write_text(json.dumps({**stamp(), "runs": RUNS, "rows": rows},
                                                indent=1) + "\n")
    return 0


def plain_row(n: int, setting: str) -> dict[str, Any]:
    """One population of `run.py --plain`."""
    from portside.system import control
    from portside.system.sampler import Sampler

    if n <= 10000:
        spawn_helper("listeners", str(n))
    else:
        for block in range(n // 10000):
            spawn_helper("spread", "10000", str(block + 1))
    sockets = tcp_count()
    warm, managed, check = Sampler(), Sampler(managers=True), Sampler(managers=True)
    warm.sample()
    managed.sample()
    check.sample()
    med = alternate({
        "sampler": warm.sample,
        "sampler +managers": managed.sample,
        # "Is the port free now?" after a signal: the kernel asked for that port only.
        "port check": functools.partial(control.port_holders, idle_port(), check),
        "portside list --json": run_cmd([*PORTSIDE, "list", "--json"]),
        "portside list": run_cmd([*PORTSIDE, "list"]),
        "ss -tanp": run_cmd(["ss", "-tanp"]),
    }, RUNS)
    row: dict[str, Any] = {"setting": setting, "listeners": n, "sockets": sockets,
                           "processes": len(psutil.pids()), "ms": med}
    ss = med["ss -tanp"]
    log(f"{setting}, {n} listeners ({sockets} TCP sockets, {row['processes']} processes): "
        + ", ".join(f"{k} {v:.0f} ms ({v / ss:.2f}x)" for k, v in med.items()))
    if n >= 10000:
        row["dashboard"] = plain_dashboard(n)
        log(f"  dashboard at {n}: {row['dashboard']}")
    return row


def plain_dashboard(n: int) -> dict[str, Any]:
    """The dashboard in tmux at 1 s refresh: CPU with no keys (20 s) and resident memory
    meanwhile (median and highest), then cursor keys end to end; then at the default
    refresh (2 s), CPU with no keys again."""
    out = _plain_dashboard_run(n, "--interval 1")
    out["no_keys_pct_default"] = _plain_dashboard_run(n, "", keys=False)["no_keys_pct"]
    return out


def _plain_dashboard_run(n: int, options: str, keys: bool = True) -> dict[str, Any]:
    session = "bench-plain"
    launch(session, f"{IN_TMUX}{' ' + options if options else ''}'", size=(200, 50))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not re.search(
                rf" {n // 1000}\d\d\d sockets", tmux("capture-pane", "-p", "-t", session)):
            time.sleep(0.5)
        pid = pane_pid(session)
        time.sleep(5)  # past start-up's first samples
        c0 = cpu_seconds(pid)
        # Resident memory every 0.25 s meanwhile: one reading lands before or in a sample
        # by chance (at 100k listeners they differ by ~25 MB).
        rss: list[float] = []
        proc = psutil.Process(pid)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            rss.append(proc.memory_info().rss / 2**20)
            time.sleep(0.25)
        out: dict[str, Any] = {"no_keys_pct": (cpu_seconds(pid) - c0) / 20 * 100}
        out["rss_mb"], out["rss_max_mb"] = statistics.median(rss), max(rss)
        if keys:
            out["cursor"] = tmux_cursor(session, presses=30)
        return out
    finally:
        tmux("kill-session", "-t", session)


def idle_only() -> int:
    """`run.py --idle`: idle cost with and without the 200 extra processes, into idle.json.

    htop reads every process at each refresh, portside only the new ones: how they compare
    depends on how many processes the machine runs.
    """
    runs: list[dict[str, Any]] = []
    try:
        for extra in (True, False, True, False):
            if extra:
                spawn_helper("fdholders", "200", "100")
            res: dict[str, Any] = {}
            idle_section(res)
            runs.append(res["idle"])
            end_helpers()
    finally:
        end_helpers()
        for session in ("bench-portside", "bench-htop"):
            tmux("kill-session", "-t", session)
    out = {**stamp(), "runs": runs}
    (HERE / "idle.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


def memory_section(results: dict[str, Any]) -> None:
    n = 10000 if QUICK else 50000
    make_time_wait(n)
    pid = launch("bench-mem", f"{IN_TMUX} --interval 1'")
    time.sleep(8)
    peak = psutil.Process(pid).memory_info().rss
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    hwm = int(m[1]) * 1024 if m else peak
    tmux("kill-session", "-t", "bench-mem")
    wait_time_wait_gone()
    results["memory"] = {"tw_sockets": n, "peak_rss_mb": hwm / 2**20, **soak(SOAK)}
    log(f"memory: peak {hwm / 2**20:.0f} MB at {n} TIME_WAIT; soak {SOAK:.0f}s "
        f"{results['memory']['soak_start_mb']:.1f} -> {results['memory']['soak_end_mb']:.1f} MB")


def soak(seconds: float) -> dict[str, Any]:
    """RSS of a live dashboard (0.5 s refresh) while listeners and TIME_WAIT churn."""
    pid = launch("bench-soak", f"{IN_TMUX} --interval 0.5'")
    time.sleep(5)
    samples = []
    end = time.monotonic() + seconds
    rnd = random.Random(7)
    started = time.monotonic()
    while time.monotonic() < end + WARMUP:
        procs, _ = build("listeners", rnd.randint(10, 200))
        make_time_wait(rnd.randint(200, 800))  # about 15k TIME_WAIT alive at any time
        time.sleep(2.0)
        end_helpers(procs)
        if time.monotonic() - started >= WARMUP:
            samples.append((time.monotonic() - started, psutil.Process(pid).memory_info().rss))
    tmux("kill-session", "-t", "bench-soak")
    wait_time_wait_gone()
    # After the warm-up the population is steady: what the RSS does now is growth.
    rss = [r for _, r in samples]
    base = statistics.median(rss[: max(1, len(rss) // 5)])
    last = statistics.median(rss[-max(1, len(rss) // 5):])
    return {"soak_seconds": seconds, "soak_warmup": WARMUP, "soak_start_mb": base / 2**20,
            "soak_end_mb": last / 2**20, "soak_max_mb": max(rss) / 2**20,
            "soak_trace": [(round(t), round(r / 2**20, 1))
                           for t, r in [*samples[::max(1, len(samples) // 12)], samples[-1]]]}


def stamp() -> dict[str, str]:
    """When, and on which commit, a run made by itself was measured."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit}


def soak_only(seconds: float) -> int:
    """`run.py --soak SECONDS`: the long memory run alone, into soak.json (read by the report)."""
    try:
        res = soak(seconds)
    finally:
        end_helpers()
        tmux("kill-session", "-t", "bench-soak")
    res.update(stamp())
    (HERE / "soak.json").write_text(json.dumps(res, indent=1) + "\n")
    log(f"soak {seconds:.0f}s: {res['soak_start_mb']:.1f} -> {res['soak_end_mb']:.1f} MB "
        f"(max {res['soak_max_mb']:.1f} MB)")
    return 0


def startup_section(results: dict[str, Any]) -> None:
    procs, _ = build("listeners", 50)
    times = []
    for i in range(3 if QUICK else 7):
        session = f"bench-start-{i}"
        t0 = time.perf_counter()
        launch(session, f"{IN_TMUX}'")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if re.search(r"tcp4\s+127\.0\.0\.1\s+\d+\s+LISTEN", tmux("capture-pane", "-p", "-t",
                                                                    session)):
                break
            time.sleep(0.01)
        times.append((time.perf_counter() - t0) * 1000)
        tmux("kill-session", "-t", session)
    end_helpers(procs)
    results["startup_ms"] = statistics.median(times)
    log(f"start-up to the first table with data: {results['startup_ms']:.0f} ms (median)")


# Report ------------------------------------------------------------------------------------


def baseline_lines(results: dict[str, Any]) -> list[str]:
    """Side by side with baseline.json: a whole run of an earlier commit on the same host
    (made by running this script in a checkout of that commit). Figures of runs on
    different hosts do not compare; these do."""
    path = HERE / "baseline.json"
    if not path.exists():
        return []
    base = json.loads(path.read_text())
    rows: list[tuple[str, float, float, str]] = []
    for old, new in zip(base["sampler"], results["sampler"], strict=False):
        pop = new["population"]
        rows.append((f"sample / ss -tanp, {pop}", old["sampler"]["portside"] /
                     old["sampler"]["ss -tanp"], new["sampler"]["portside"] /
                     new["sampler"]["ss -tanp"], "x"))
        rows.append((f"list --json / ss -tanp, {pop}", old["process"]["portside list --json"]
                     / old["process"]["ss -tanp"], new["process"]["portside list --json"]
                     / new["process"]["ss -tanp"], "x"))
    for old, new in zip(base["dashboard"], results["dashboard"], strict=False):
        rows.append((f"dashboard apply + repaint CPU, {new['rows']} rows", old["cpu_ms"],
                     new["cpu_ms"], " ms"))
    rows += [("key latency p95", base["latency"]["p95_ms"], results["latency"]["p95_ms"], " ms"),
             ("idle, % of a core", base["idle"]["portside_pct"],
              results["idle"]["portside_pct"], "%"),
             ("peak RSS at 50k TIME_WAIT", base["memory"]["peak_rss_mb"],
              results["memory"]["peak_rss_mb"], " MB"),
             ("start-up to the first table", base["startup_ms"], results["startup_ms"], " ms")]
    lines = ["## Against the baseline on the same host", "",
             f"baseline.json: {base.get('label', 'an earlier commit')}, measured "
             f"{base['date']} on {base['machine']}.", "",
             "| figure | baseline | this run |", "|---|---:|---:|"]
    for name, old_v, new_v, unit in rows:
        fmt = "{:.2f}" if unit in ("x", "%") else "{:.1f}"
        lines.append(f"| {name} | {fmt.format(old_v)}{unit} | {fmt.format(new_v)}{unit} |")
    return [*lines, ""]


def write_report(results: dict[str, Any]) -> None:
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# portside benchmark results", "",
             f"Measured {results['date']} on {results['machine']}; medians of {RUNS} runs, "
             "contenders alternated in a shuffled order every round, all on loopback. "
             "Regenerate with `make bench`.", ""]
    lines += ["## Sampling: one full snapshot (sockets, every holder, process details)", "",
              "`portside` is the dashboard's sampler between two refreshes (caches warm); "
              "`portside cold` a fresh sampler (what one `portside list` does): it reads "
              "every process's open files as `ss -p` does, in forked children that share "
              "the work through a pipe while it reads the kernel's socket tables; `+managers` "
              "the same warm sampler judging who manages every holder too (parent chains "
              "and environment markers), as the dashboard samples. Every "
              "population also has 200 extra processes holding 100 open files each.", "",
              "| population | TCP sockets | portside | portside +managers | portside cold | "
              "ss -tanp | ss -tan | lsof -nP -iTCP | psutil | portside / ss -tanp | "
              "+managers / ss -tanp |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["sampler"]:
        s = r["sampler"]
        ratio = s["portside"] / s["ss -tanp"]
        managed = s.get("portside +managers", float("nan"))
        lines.append(f"| {r['population']} | {r['sockets']} | {s['portside']:.1f} ms | "
                     f"{managed:.1f} ms | "
                     f"{s['portside cold']:.1f} ms | {s['ss -tanp']:.1f} ms | "
                     f"{s['ss -tan']:.1f} ms | {s.get('lsof -nP -iTCP', float('nan')):.1f} ms "
                     f"| {s['psutil']:.1f} ms | **{ratio:.2f}x** | "
                     f"**{managed / s['ss -tanp']:.2f}x** |")
    lines += ["", "## Is the port free now? (after a signal)", "",
              "What `kill`, `free`, `wait` and the dashboard ask while waiting for a port: "
              "the kernel asked for that port's listeners only (a sock_diag filter, as `ss "
              "sport = :P`), against a whole sample, as before.", "",
              "| population | TCP sockets | port check | whole sample |", "|---|---:|---:|---:|"]
    for r in results["sampler"]:
        s = r["sampler"]
        if "port check" in s:
            lines.append(f"| {r['population']} | {r['sockets']} | {s['port check']:.1f} ms | "
                         f"{s['port check, whole sample']:.1f} ms |")
    lines += ["", "## Whole processes: `portside list --json` against `ss -tanp`", "",
              "| population | TCP sockets | portside list --json | list --all --json | "
              "ss -tanp | ratio |", "|---|---:|---:|---:|---:|---:|"]
    for r in results["sampler"]:
        p = r["process"]
        lines.append(f"| {r['population']} | {r['sockets']} | "
                     f"{p['portside list --json']:.0f} ms | "
                     f"{p['portside list --all --json']:.0f} ms | {p['ss -tanp']:.0f} ms | "
                     f"**{p['portside list --json'] / p['ss -tanp']:.2f}x** |")
    lines += ["", "## The dashboard, headless (200x50), 5% churn per tick", "",
              "CPU is the work of applying the snapshot and repainting; the wall time also "
              "holds the test harness waiting for Textual's next screen refresh (compare "
              "the 1k row).", "",
              "| rows | apply + repaint (wall) | CPU | full GC passes | longest GC pause (any "
              "generation) |", "|---:|---:|---:|---:|---:|"]
    for d in results["dashboard"]:
        lines.append(f"| {d['rows']} | {d['wall_ms']:.1f} ms | {d['cpu_ms']:.1f} ms | "
                     f"{d.get('gc2_count', '-')} | "
                     + (f"{d['gc_max_ms']:.1f} ms |" if "gc_max_ms" in d else "- |"))
    lat = results["latency"]
    lines += ["", f"Key-press latency while the live sampler refreshes {lat['sockets']} real "
              f"sockets every second: p50 **{lat['p50_ms']:.1f} ms**, p95 "
              f"**{lat['p95_ms']:.1f} ms** ({lat['presses']} presses).", ""]
    idle = results["idle"]
    lines += ["## Idle cost, memory, start-up", "",
              f"- Idle: {idle['portside_pct']:.2f}% of one core over {idle['seconds']} s "
              f"with {idle['sockets']} sockets at the default 2 s refresh; htop at the same "
              f"refresh in the same terminal size: {idle.get('htop_pct', float('nan')):.2f}%.",
              f"- Memory: peak RSS {results['memory']['peak_rss_mb']:.0f} MB with "
              f"{results['memory']['tw_sockets']} TIME_WAIT sockets; over "
              f"{results['memory']['soak_seconds']:.0f} s of churn (listeners and TIME_WAIT "
              f"sockets coming and going, after {results['memory']['soak_warmup']:.0f} s of "
              "warm-up), RSS went from "
              f"{results['memory']['soak_start_mb']:.1f} to "
              f"{results['memory']['soak_end_mb']:.1f} MB (max "
              f"{results['memory']['soak_max_mb']:.1f} MB).",
              f"- Start-up: {results['startup_ms']:.0f} ms from launch (in tmux) to the first "
              "table with data (median).", ""]
    lines += baseline_lines(results)
    idle_runs = HERE / "idle.json"
    if idle_runs.exists():  # `run.py --idle`, run by itself
        d = json.loads(idle_runs.read_text())
        lines += [f"Idle again ({d['date']}, commit {d['commit']}, `python tests/bench/run.py "
                  "--idle`), 60 s each, ~100 sockets, 2 s refresh, portside against htop:"]
        lines += [f"- {r['processes']} processes on the machine: portside "
                  f"{r['portside_pct']:.2f}%, htop {r.get('htop_pct', float('nan')):.2f}%"
                  for r in d["runs"]]
        lines += ["", "htop reads every process at each refresh and portside only the new "
                  "ones, so htop's cost follows the number of processes on the machine and "
                  "portside's does not.", ""]
    typing = HERE / "typing.json"
    if typing.exists():  # `run.py --typing`, run by itself
        t = json.loads(typing.read_text())
        h, c, k = t["headless"], t["cursor"], t["typing"]
        lines += [f"Typing at 100k sockets ({t['date']}, commit {t['commit']}, `python "
                  "tests/bench/run.py --typing`):",
                  f"- Headless, {h['rows']} rows: a {h['chars']}-character filter typed a key "
                  f"every {h['gap_ms']:.0f} ms took {h['typing_s']:.2f} s to type "
                  f"({h['chars'] * h['gap_ms'] / 1000:.2f} s of gaps); the event loop was held "
                  f"at most {h['longest_hold_ms']:.0f} ms (p99 {h['p99_hold_ms']:.0f} ms); the "
                  f"table showed the result {h['last_key_to_view_s']:.2f} s after the last key.",
                  f"- In tmux (200x50, 1 s refresh) at {t['sockets']} real listeners: cursor "
                  f"keys, until the cursor is drawn on the next row, p50 "
                  f"**{c['p50_ms']:.0f} ms**, p95 **{c['p95_ms']:.0f} ms**, max "
                  f"{c['max_ms']:.0f} ms ({c['presses']} presses); until the details pane "
                  f"shows that row, p50 {c.get('details_p50_ms', float('nan')):.0f} ms, p95 "
                  f"{c.get('details_p95_ms', float('nan')):.0f} ms (a capture of the pane "
                  "costs ~3 ms of each); the same filter typed in "
                  f"{k['send_s']:.1f} s, its last key shown {k['echo_s']:.2f} s after it was "
                  f"sent, the result {k['result_s']:.2f} s after; with no keys, "
                  f"{t['no_keys_pct']:.0f}% of a core; peak RSS "
                  f"{t.get('peak_rss_mb', float('nan')):.0f} MB.", ""]
    plain = HERE / "plain.json"
    if plain.exists():  # `run.py --plain` (also the last part of the full run)
        lines += plain_report(json.loads(plain.read_text()))
    long_soak = HERE / "soak.json"
    if long_soak.exists():  # `run.py --soak 3600`, run by itself (it takes an hour)
        s = json.loads(long_soak.read_text())
        lines += [f"Long soak ({s['date']}, commit {s['commit']}, `python tests/bench/run.py "
                  f"--soak {s['soak_seconds']:.0f}`): {s['soak_seconds'] / 60:.0f} minutes of "
                  f"churn at a 0.5 s refresh after {s['soak_warmup']:.0f} s of warm-up; RSS "
                  f"{s['soak_start_mb']:.1f} MB at the start, {s['soak_end_mb']:.1f} MB at the "
                  f"end, at most {s['soak_max_mb']:.1f} MB. RSS over time (s, MB): "
                  + ", ".join(f"{t} {m}" for t, m in s["soak_trace"]) + ".", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    chart(results)


def plain_report(d: dict[str, Any]) -> list[str]:
    """RESULTS.md's lines for plain.json."""
    lines = [f"## Without the extra processes, quiet and with a second core busy ({d['date']}, "
             f"commit {d['commit']}, `python tests/bench/run.py --plain`)", "",
             "Listeners held by a few processes, the machine's own processes only; medians "
             f"of {d['runs']}, ratios against `ss -tanp` in the same run. The dashboard: in "
             "tmux (200x50) at a 1 s refresh, CPU over 20 s with no keys (and at the default "
             "2 s refresh, in brackets), cursor keys until drawn (p95), resident memory "
             "(median over the 20 s, and its highest).", "",
             "| setting | listeners | TCP sockets | sampler | sampler +managers | list --json "
             "| list / list --json | ss -tanp | port check | dashboard CPU, no keys | "
             "cursor p95 | RSS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["rows"]:
        ms, dash = r["ms"], r.get("dashboard")
        ss = ms["ss -tanp"]
        lines.append(
            f"| {r.get('setting', 'quiet')} | {r['listeners']} | {r['sockets']} | "
            f"{ms['sampler'] / ss:.2f}x | {ms['sampler +managers'] / ss:.2f}x | "
            f"**{ms['portside list --json'] / ss:.2f}x** ({ms['portside list --json']:.0f} ms) "
            f"| {ms['portside list'] / ms['portside list --json']:.2f}x | {ss:.1f} ms | "
            + (f"{ms['port check']:.1f} ms | " if "port check" in ms else "| ")
            + (f"{dash['no_keys_pct']:.1f}%"
               + (f" ({dash['no_keys_pct_default']:.1f}%)"
                  if "no_keys_pct_default" in dash else "")
               + f" | {dash['cursor']['p95_ms']:.0f} ms | "
               f"{dash['rss_mb']:.0f} MB"
               + (f" (≤ {dash['rss_max_mb']:.0f})" if "rss_max_mb" in dash else "") + " |"
               if dash else "| | |"))
    return [*lines, ""]


def chart(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(results["sampler"], key=lambda r: r["sockets"])
    x = [r["sockets"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name, style in (("portside", "o-"), ("ss -tanp", "s-"), ("psutil", "^-"),
                        ("lsof -nP -iTCP", "x-")):
        ys = [r["sampler"].get(name) for r in rows]
        if all(y is not None for y in ys):
            ax.plot(x, ys, style, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("TCP sockets on the machine")
    ax.set_ylabel("time for one full sample (ms, median)")
    ax.set_title("Sampling time against socket count (2 cores, loopback)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "sampling.png")


def main() -> int:
    for tool in ("ss", "tmux"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (make bench installs it as root)", file=sys.stderr)
            return 1
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
    }
    try:
        log("200 extra processes holding 100 open files each")
        spawn_helper("fdholders", "200", "100")
        sampler_section(results)
        dashboard_section(results)
        idle_section(results)
        memory_section(results)
        startup_section(results)
        end_helpers()  # the typing section measures without the extra processes
        typing_only()
        plain_only()  # and so does this one: quiet, and with a second core busy
    finally:
        end_helpers()
        for s in ("bench-portside", "bench-htop", "bench-mem", "bench-soak"):
            tmux("kill-session", "-t", s)
    write_report(results)
    log(f"wrote {HERE / 'RESULTS.md'} and {HERE / 'sampling.png'}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if sys.argv[1:] == ["--report"]:  # RESULTS.md again from results.json (and soak.json)
        write_report(json.loads((HERE / "results.json").read_text()))
        sys.exit(0)
    if sys.argv[1:] == ["--idle"]:
        sys.exit(idle_only())
    if sys.argv[1:] == ["--plain"]:
        sys.exit(plain_only())
    if sys.argv[1:] == ["--typing"]:
        sys.exit(typing_only())
    if sys.argv[1:] == ["--typing-headless"]:
        print(json.dumps(filter_typing()))
        sys.exit(0)
    if sys.argv[1:2] == ["--soak"] and len(sys.argv) == 3:
        sys.exit(soak_only(float(sys.argv[2])))
    if sys.argv[1:] == ["--dashboard"]:
        print(json.dumps(dashboard_measurements()))
        sys.exit(0)
    sys.exit(main())
