"""`portside free :PORT...`: stop what holds the port and what brings it back; confirm,
act, then check the port stays free."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from ..actions import REQUEST_HOW, ForGood, for_good, request_label
from ..backend import PortHolders
from ..fmt import manager_cell, safe_text
from ..model import SENT
from .args import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_NO_MATCH,
    EXIT_OK,
    EXIT_RETAKEN,
)
from .kill import _retaken, _ticker, ask, write_signals, write_spared
from .output import write_target

if TYPE_CHECKING:
    from ..system.freeing import FreeResult
    from ..system.sampler import Sampler


def run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """Plan, show, confirm, then free each port."""
    from ..system import control
    from ..system.pidfds import REGISTRY
    from ..system.sampler import Sampler

    sampler = Sampler(pidfds=REGISTRY, managers=True)
    snap = sampler.sample()
    plans: list[ForGood] = []
    matched = False
    for port in args.ports:
        if PortHolders.of(port, snap).free:
            err.write(f"port {port}: nothing listens on it\n")
            continue
        matched = True
        plan = for_good(port, snap)
        # The live refusals (PID 1, ourselves and our parents, the pm2 daemon...) drop
        # a process from the plan, with the reason.
        ok, refused = control.allowed((*plan.managers, *plan.holders))
        for _pid, why in refused:
            err.write(f"refused: {why}\n")
        keep = {t.pid for t in ok}
        plan = plan._replace(managers=tuple(t for t in plan.managers if t.pid in keep),
                             holders=tuple(t for t in plan.holders if t.pid in keep))
        for why in plan.blocked:
            err.write(f"port {port}: cannot free it for good: {why}\n")
        if plan.unknown:
            err.write(f"port {port}: {plan.unknown} listening socket(s) with owner unknown, "
                      f"so not touched: {snap.gaps.unknown_reason}\n")
        if not plan.empty:
            plans.append(plan)
    if not plans:
        if not matched:
            return EXIT_NO_MATCH
        err.write("nothing to do\n")
        return EXIT_FAIL
    for plan in plans:
        _show(plan, args.dry_run, out)
    if args.dry_run:
        out.write("dry run: nothing done\n")
        return EXIT_OK
    declined = ask(args.yes, "Go ahead?", "act", "done", stdin, out, err)
    if declined is not None:
        return declined
    out.flush()
    return _execute(args, plans, sampler, out, err)


def _show(plan: ForGood, dry_run: bool, out: TextIO) -> None:
    """The plan, step by step, as it will be carried out."""
    out.write(f"{'Would free' if dry_run else 'Will free'} port {plan.port} for good:\n")
    step = 0
    managed = dict(plan.managed)
    for req in plan.requests:
        step += 1
        what = safe_text(request_label(req))
        out.write(f"  {step}. ask {req.via} to stop {what} ({REQUEST_HOW[req.via]}): "
                  f"{safe_text(req.command)}\n")
        pids = ", ".join(map(str, req.holders))
        out.write(f"     PID {pids} {'holds' if len(req.holders) == 1 else 'hold'} the port "
                  f"for it: stopping {what} closes it (portside signals no "
                  "process for this step)\n")
    if plan.managers:
        step += 1
        out.write(f"  {step}. SIGTERM what restarts the server, first:\n")
        for t in plan.managers:
            above = sorted(p for p, m in managed.items() if m.pid == t.pid)
            what = next((manager_cell(m, pid=False) for m in managed.values()
                         if m.pid == t.pid), "")
            write_target(t, [], out, f"{what}, above PID {', '.join(map(str, above))}")
    if plan.holders:
        step += 1
        then = "then, if they still hold the port, " if plan.managers else ""
        out.write(f"  {step}. {then}SIGTERM the holders:\n")
        for t in plan.holders:
            m = managed.get(t.pid)
            write_target(t, [plan.port], out, m.role(t.pid) if m is not None else "")
    out.write(f"  {step + 1}. check that port {plan.port} stays free\n")


def _execute(args: argparse.Namespace, plans: list[ForGood], sampler: Sampler, out: TextIO,
             err: TextIO) -> int:
    from ..system import freeing

    code = EXIT_OK
    for plan in plans:
        tick = _ticker(err, [plan.port], [])
        res = freeing.free(plan, args.grace, args.force, sampler, args.settle, tick)
        if tick is not None:
            err.write("\r\x1b[K")
        code = max(code, _report(args, plan, res, out, err), key=_rank)
    return code


def _rank(code: int) -> int:
    """Which exit code wins across ports: interrupted, then still held, then re-taken."""
    return {EXIT_INTERRUPTED: 3, EXIT_FAIL: 2, EXIT_RETAKEN: 1}.get(code, 0)


def _report(args: argparse.Namespace, plan: ForGood, res: FreeResult, out: TextIO,
            err: TextIO) -> int:
    port, stop = plan.port, res.stop
    for _req, ok, said in res.asked:
        (out if ok else err).write(f"  {said}\n")
    write_signals([*res.first, *stop.results], stop.killed, args.grace, stop.interrupted, out)
    write_spared(stop.spared, err)
    if stop.interrupted:
        return EXIT_INTERRUPTED
    held = stop.ports.get(port)
    if port in stop.retaken:
        _retaken(port, *stop.retaken[port], out)
        return EXIT_RETAKEN
    if held is None or held.free:
        if stop.alive:
            out.write(f"port {port}: freed, but PID "
                      f"{', '.join(str(t.pid) for t in stop.alive)} still runs\n")
            return EXIT_FAIL
        stayed = f" (and stayed free for {args.settle:g}s)" if args.settle > 0 else ""
        out.write(f"port {port}: freed for good{stayed}\n")
        return EXIT_OK if all(ok for _, ok, _ in res.asked) else EXIT_FAIL
    who = ", ".join(str(p) for p in held.pids) or "a process portside cannot see"
    out.write(f"port {port}: still held by PID {who}\n")
    if not args.force and {r.target.pid for r in stop.results if r.outcome == SENT} & \
            set(held.pids):
        err.write("add --force to send SIGKILL to what is left\n")
    return EXIT_FAIL
