"""Process control against real child processes: identity checks, refusals, freeing."""

from __future__ import annotations

import os
import signal
import sys

import psutil
import pytest

from conftest import Spawner, alive, wait_for
from portside import model
from portside.backend import PortHolders
from portside.fmt import signal_name
from portside.policy import socket_refusal
from portside.system import control
from portside.system.pidfds import REGISTRY
from portside.system.sampler import Sampler

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_refusals() -> None:
    assert control.refusal(0) is not None
    assert control.refusal(-3) is not None
    assert "init" in (control.refusal(1) or "")
    assert "itself" in (control.refusal(os.getpid()) or "")
    assert "parents" in (control.refusal(os.getppid()) or "")
    for parent in psutil.Process().parents():
        if parent.pid > 1:
            assert "parents" in (control.refusal(parent.pid) or "")


@linux
def test_kernel_threads_are_refused() -> None:
    kthreads = [p for p in psutil.pids() if p > 1 and control._is_kernel_thread(p)]
    if not kthreads:
        pytest.skip("no kernel thread visible in this PID namespace")
    assert "kernel thread" in (control.refusal(kthreads[0]) or "")


def test_refused_targets_are_not_signalled(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[object] = []
    monkeypatch.setattr(os, "kill", lambda *a: sent.append(a))
    me = control.target_of(os.getpid())
    assert me is not None
    res = control.send_signal(me, signal.SIGTERM)
    assert res.outcome == model.REFUSED and not sent


@pytest.mark.parametrize("use_pidfd", [True, False])
def test_pid_reuse_sends_nothing(spawn: Spawner, monkeypatch: pytest.MonkeyPatch,
                                 use_pidfd: bool) -> None:
    held = spawn()
    real = control.target_of(held.pid)
    assert real is not None
    # The PID now names a process started at another time: the one the user chose is gone.
    stale = model.Target(held.pid, real.create_time - 50.0, real.name)
    sent: list[object] = []
    monkeypatch.setattr(signal, "pidfd_send_signal", lambda *a: sent.append(a), raising=False)
    monkeypatch.setattr(os, "kill", lambda *a: sent.append(a))
    res = control.send_signal(stale, signal.SIGKILL, use_pidfd=use_pidfd)
    assert res.outcome == model.GONE and res.message == "exited or PID reused"
    assert sent == []
    assert alive(held.pid)


@pytest.mark.parametrize("use_pidfd", [True, False])
def test_sigterm_ends_a_real_process(spawn: Spawner, use_pidfd: bool) -> None:
    held = spawn()
    target = control.target_of(held.pid)
    assert target is not None and target.name.startswith("python")
    res = control.send_signal(target, signal.SIGTERM, use_pidfd=use_pidfd)
    assert res.ok, res.message
    wait_for(lambda: not alive(held.pid))
    again = control.send_signal(target, signal.SIGTERM, use_pidfd=use_pidfd)
    assert again.outcome == model.GONE


@pytest.mark.parametrize("use_pidfd", [True, False])
def test_sigterm_to_a_stopped_process_is_followed_by_sigcont(spawn: Spawner,
                                                             use_pidfd: bool) -> None:
    held = spawn()
    os.kill(held.pid, signal.SIGSTOP)
    wait_for(lambda: psutil.Process(held.pid).status() == psutil.STATUS_STOPPED)
    target = control.target_of(held.pid)
    assert target is not None
    res = control.send_signal(target, signal.SIGTERM, use_pidfd=use_pidfd)
    assert res.ok and "SIGCONT" in res.message
    wait_for(lambda: not alive(held.pid))


def test_socket_refusals() -> None:
    from portside.model import Socket
    tw = Socket("tcp", "ipv4", "127.0.0.1", 3000, "127.0.0.1", 5000, "TIME_WAIT")
    unknown = Socket("tcp", "ipv4", "127.0.0.1", 3000, None, None, "LISTEN", 9)
    owned = Socket("tcp", "ipv4", "127.0.0.1", 3000, None, None, "LISTEN", 9, holders=(5,), pid=5)
    assert "TIME_WAIT" in (socket_refusal(tw) or "")
    assert "unknown" in (socket_refusal(unknown) or "")
    assert socket_refusal(owned) is None


@linux
def test_free_port_signals_every_holder(spawn: Spawner) -> None:
    held = spawn("--fork")
    sampler = Sampler(pidfds=REGISTRY)
    holders = PortHolders.of(held.port, sampler.sample())
    targets, refused = control.targets_of(holders)
    assert sorted(t.pid for t in targets) == held.pids and refused == []
    ticks: list[float] = []
    res = control.stop(targets, grace=10, ports=[held.port], sampler=sampler,
                       tick=ticks.append)
    assert res.ok and res.ports[held.port].free and res.ports[held.port].pids == ()
    assert [r.outcome for r in res.results] == ["sent", "sent"]
    wait_for(lambda: not alive(held.pid) and not alive(held.child))


@linux
def test_free_port_without_force_leaves_a_stubborn_holder(spawn: Spawner) -> None:
    held = spawn("--ignore-term")
    sampler = Sampler(pidfds=REGISTRY)
    targets, _ = control.targets_of(PortHolders.of(held.port, sampler.sample()))
    res = control.stop(targets, grace=0.5, ports=[held.port], sampler=sampler)
    still = res.ports[held.port]
    assert not res.ok and not still.free and still.pids == (held.pid,) and still.unknown == 0
    assert alive(held.pid) and res.killed == []
    forced = control.stop(targets, grace=0.5, force=True, ports=[held.port],
                          sampler=sampler)
    assert forced.ok
    assert [signal_name(r.signal) for r in forced.results] == ["SIGTERM"]
    assert [signal_name(r.signal) for r in forced.killed] == ["SIGKILL"]
    wait_for(lambda: not alive(held.pid))


@linux
def test_free_port_never_kills_a_holder_it_was_not_asked_about(spawn: Spawner) -> None:
    held = spawn("--ignore-term")
    sampler = Sampler(pidfds=REGISTRY)
    # Confirmed with no targets (say the holder changed after the dialog opened).
    res = control.stop([], grace=0.2, force=True, ports=[held.port], sampler=sampler)
    assert not res.ok and res.results == [] and res.killed == [] and alive(held.pid)


def test_stop_awaits_pid_targets(spawn: Spawner) -> None:
    held = spawn("--ignore-term")
    target = control.target_of(held.pid)
    assert target is not None
    res = control.stop([target], grace=0.3, awaited=[target])
    assert not res.ok and res.alive == [target]
    res = control.stop([target], grace=0.3, force=True, awaited=[target])
    assert res.ok and res.alive == [] and [r.ok for r in res.killed] == [True]
