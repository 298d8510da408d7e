"""`portside kill :PORT|PID...`: confirm, signal, wait for the port, report."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO

from ..actions import newcomers
from ..backend import PortHolders
from ..fmt import safe_text, signal_name
from ..model import DENIED, SENT, Manager, SignalResult, Snapshot, Target
from .args import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_RETAKEN,
    EXIT_USAGE,
)
from .output import write_target

if TYPE_CHECKING:
    from ..system.sampler import Sampler


def ask(yes: bool, question: str, verb: str, done: str, stdin: TextIO, out: TextIO,
        err: TextIO) -> int | None:
    """Confirmation on the terminal (or --yes): None to go ahead, else the exit code.
    With no terminal to ask on, nothing is done without --yes."""
    if yes:
        return None
    if not stdin.isatty():
        err.write(f"refusing to {verb} without confirmation: no terminal to ask on "
                  "(add --yes)\n")
        return EXIT_USAGE
    if not _confirm(question, stdin, out):
        out.write(f"cancelled: nothing {done}\n")
        return EXIT_FAIL
    return None


def _confirm(question: str, stdin: TextIO, out: TextIO) -> bool:
    out.write(f"{question} [y/N] ")
    out.flush()
    try:
        answer = stdin.readline()
    except (EOFError, KeyboardInterrupt):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """Find the targets, ask, then signal and wait."""
    from ..system import control
    from ..system.pidfds import REGISTRY
    from ..system.sampler import Sampler

    # A pidfd for every holder, while it is listed; and who manages each.
    sampler = Sampler(pidfds=REGISTRY, managers=True)
    snap = sampler.sample()
    ports = sorted({v for k, v in args.targets if k == "port"})
    pids = sorted({v for k, v in args.targets if k == "pid"})
    targets: dict[int, Target] = {}
    ports_of: dict[int, list[int]] = {}
    refused: dict[int, str] = {}
    matched = False
    for port in ports:
        holders = PortHolders.of(port, snap)
        if holders.free:
            err.write(f"port {port}: nothing listens on it\n")
            continue
        matched = True
        allowed, denied = control.targets_of(holders)
        for t in allowed:
            targets[t.pid] = t
            ports_of.setdefault(t.pid, []).append(port)
        refused.update(denied)
        if holders.unknown:
            err.write(f"port {port}: {holders.unknown} listening socket(s) with owner unknown, "
                      f"so not signalled: {snap.gaps.unknown_reason}\n")
    for pid in pids:
        target = control.target_of(pid)
        if target is None:
            hidden = control.hidden(pid)
            if hidden is None:
                err.write(f"PID {pid}: no such process\n")
                continue
            # It exists: a refusal first (PID 1 is never signalled, seen or not).
            matched = True
            refused[pid] = control.refusal(pid) or hidden
            continue
        matched = True
        why = control.refusal(pid)
        if why is not None:
            refused[pid] = why
        else:
            targets.setdefault(pid, target)
    if not matched:
        err.write("nothing matched\n")
        return EXIT_NO_MATCH
    if not args.holder_only:
        for pid in list(targets):
            m = _manager(snap, pid, ports_of)
            if m is not None and m.kind == "docker" and m.caution:
                # A docker-proxy, or a container's init: signalling it alone breaks the
                # container's mapping, or is ignored and then restarted by its policy.
                del targets[pid]
                free = " ".join(f":{p}" for p in ports_of.get(pid, []))
                refused[pid] = (f"{safe_text(m.caution)} (`portside free {free}` stops it for "
                                "good; --holder-only signals this process anyway)")
    for _pid, why in sorted(refused.items()):
        err.write(f"refused: {why}\n")
    if not targets:
        err.write("no process to signal\n")
        return EXIT_FAIL
    sig_name = signal_name(args.signal)
    out.write(f"{'Would send' if args.dry_run else 'Will send'} {sig_name} to "
              f"{len(targets)} process(es):\n")
    for t in targets.values():
        write_target(t, ports_of.get(t.pid, []), out)
    for t in targets.values():
        m = _manager(snap, t.pid, ports_of)
        if m is not None and m.caution:
            free = " ".join(f":{p}" for p in ports_of.get(t.pid, []))
            err.write(f"note: {safe_text(m.caution)}; "
                      + (f"`portside free {free}` stops it for good\n" if free else
                         f"to stop it for good: {safe_text(m.stop)}\n"))
    if args.dry_run:
        out.write("dry run: nothing sent\n")
        return EXIT_OK
    declined = ask(args.yes, f"Send {sig_name}?", "signal", "sent", stdin, out, err)
    if declined is not None:
        return declined
    out.flush()  # the targets are on record before anything is sent
    spare = no_kill(snap, targets.values(), ports_of)
    return _execute(args, sampler, spare, list(targets.values()), ports, pids, out, err)


def _execute(args: argparse.Namespace, sampler: Sampler, spare: dict[int, str],
             targets: list[Target],
             ports: list[int], pids: list[int], out: TextIO, err: TextIO) -> int:
    from ..system import control

    tick = _ticker(err, ports, pids)
    awaited = [t for t in targets if t.pid in pids]
    res = control.stop(targets, args.signal, args.grace, args.force, ports, awaited,
                       sampler, tick, settle=args.settle, spare=spare)
    if tick is not None:
        err.write("\r\x1b[K")
    write_signals(res.results, res.killed, args.grace, res.interrupted, out)
    write_spared(res.spared, err)
    if res.interrupted:
        for port in ports:
            held = res.ports.get(port)
            state = "not checked yet" if held is None else "free when last checked" \
                if held.free else "held by PID " + (", ".join(map(str, held.pids)) or "?") \
                + " when last checked"
            out.write(f"port {port}: {state}\n")
        return EXIT_INTERRUPTED
    for port in ports:
        held = res.ports.get(port)
        if port in res.retaken:
            _retaken(port, *res.retaken[port], out)
        elif held is None or held.free:
            stayed = f" (and stayed free for {args.settle:g}s)" if args.settle > 0 else ""
            out.write(f"port {port}: freed{stayed}\n")
        else:
            who = ", ".join(str(p) for p in held.pids) or "a process portside cannot see"
            out.write(f"port {port}: still held by PID {who}\n")
    for t in awaited:
        out.write(f"PID {t.pid}: {'still running' if t in res.alive else 'exited'}\n")
    denied = [r.target.pid for r in res.results if r.outcome == DENIED]
    if denied:
        err.write(f"permission denied for PID {', '.join(map(str, denied))}: "
                  "they belong to another user; try: sudo portside kill ...\n")
    # --force helps only where a process we signalled still holds on: never after a
    # refusal, a permission error or a reused PID (nothing was sent to those).
    signalled = {r.target.pid for r in res.results if r.outcome == SENT}
    holding = {p for held in res.ports.values() for p in held.pids} | \
        {t.pid for t in res.alive}
    if not res.ok and not args.force and args.signal != signal.SIGKILL and signalled & holding:
        err.write("add --force to send SIGKILL to what is left\n")
    if res.retaken:
        return EXIT_RETAKEN
    return EXIT_OK if res.ok else EXIT_FAIL


def write_signals(results: list[SignalResult], killed: list[SignalResult], grace: float,
                  interrupted: bool, out: TextIO) -> None:
    """What each signal did, the SIGKILLs of --force, and, after Ctrl-C, what went out
    (claiming nothing about after): kill and free say it alike."""
    for r in results:
        out.write(f"  PID {r.target.pid}: {r.message}\n")
    if killed:
        out.write(f"still there after {grace:g}s: sending SIGKILL\n")
    for r in killed:
        out.write(f"  PID {r.target.pid}: {r.message}\n")
    if interrupted:
        sent = [r.target.pid for r in [*results, *killed] if r.outcome == SENT]
        out.write("interrupted: " + (f"the signals above were sent (to PID "
                  f"{', '.join(map(str, sent))}); not waiting to see them end\n" if sent
                  else "nothing was sent\n"))


def no_kill(snap: Snapshot, targets: Iterable[Target], ports_of: dict[int, list[int]]
            ) -> dict[int, str]:
    """The targets --force must not SIGKILL: their unit or container restarts them after
    one (where SIGTERM stops them for good), with why."""
    return {t.pid: m.no_kill for t in targets
            if (m := _manager(snap, t.pid, ports_of)) is not None and m.no_kill}


def _manager(snap: Snapshot, pid: int, ports_of: dict[int, list[int]]) -> Manager | None:
    """Who manages a target, for the first port it was named by (else any)."""
    ports = ports_of.get(pid)
    return snap.manager_at(pid, ports[0]) if ports else snap.managers.get(pid)


def write_spared(spared: list[tuple[Target, str]], err: TextIO) -> None:
    """What --force did not SIGKILL, and why."""
    for t, why in spared:
        err.write(f"PID {t.pid}: not sent SIGKILL: {safe_text(why)}\n")


def _retaken(port: int, held: PortHolders, after: float, out: TextIO) -> None:
    """A port freed and taken again: by whom, started by whom; the newcomer is never
    signalled."""
    from ..system import control

    by = {t.pid: b for t in held.targets if (b := control.started_by(t.pid)) is not None}
    out.write(f"port {port}: freed, then taken again {after:.1f}s later by "
              f"{newcomers(held, by)}: "
              "something restarts it, and the newcomer was not signalled (`portside why "
              f"{port}` shows what restarts it; `portside free :{port}` stops that)\n")


def _ticker(err: TextIO, ports: list[int], pids: list[int]) -> Callable[[float], None] | None:
    if not err.isatty():
        return None
    what = ", ".join([f"port {p}" for p in ports] + [f"PID {p}" for p in pids])

    def tick(left: float) -> None:
        err.write(f"\r\x1b[Kwaiting for {what}: {left:4.1f}s left")
        err.flush()

    return tick
