"""What may be done on a row, and what a confirmed action will do: no Textual, no psutil.

One refusal policy: the dashboard asks it to dim and explain a key, and the system layer
asks it again, against the live machine, just before a signal is sent.
"""

from __future__ import annotations

import signal
from collections.abc import Collection
from typing import Final, Literal

from .actions import GRACE, ActionKind, ActionPlan, Request, addr_of, for_good
from .daemons import manager_refusal
from .fmt import format_endpoint
from .model import TIME_WAIT, Snapshot, Socket, Target, holder_pids, listeners_on
from .view import GONE, Row

RowAction = Literal["terminate", "kill", "free", "copy_pid", "copy_cmdline", "watch", "probe"]
SIGNALS: Final[dict[ActionKind, int]] = {"terminate": signal.SIGTERM, "kill": signal.SIGKILL,
                                         "free": signal.SIGTERM}


def refusal(pid: int | None, own_pid: int, protected: Collection[int]) -> str | None:
    """Why this PID must never be signalled, or None when it may be."""
    if pid is None:
        return "the owner of this socket is unknown (run with sudo to see it)"
    if pid <= 0:
        return f"PID {pid} is not a process"
    if pid == 1:
        return "PID 1 is the init process: never signalled"
    if pid == own_pid:
        return f"PID {pid} is portside itself"
    if pid in protected:
        return f"PID {pid} is one of portside's parents (your shell or terminal)"
    return None


def socket_refusal(sock: Socket, is_root: bool = False) -> str | None:
    """Why no process behind this socket can be acted on, or None."""
    if sock.state == TIME_WAIT:
        return "a TIME_WAIT socket belongs to no process: it goes by itself (see its time left)"
    if not sock.holders:
        return ("its owner is unknown: its process's files cannot be read" if is_root
                else "its owner is unknown: run portside with sudo to see it")
    return None


def row_port(row: Row | None) -> int | None:
    """The port a row stands for (a fold's port, else the local port)."""
    if row is None:
        return None
    if row.folded:
        return row.fold_of[2]
    return row.sock.lport


def unavailable(action: RowAction, row: Row | None, snap: Snapshot | None, own_pid: int,
                protected: Collection[int], too_small: bool = False) -> str | None:
    """Why an action cannot run on this row now, or None."""
    if row is None or snap is None:
        return "no row is highlighted"
    if too_small and action not in ("watch", "probe"):
        return "the terminal is too small to show the highlighted row: enlarge it"
    sock = row.sock
    if action in ("watch", "probe"):
        return None
    if action == "copy_pid":
        return None if sock.pid is not None else "no PID to copy"
    if action == "copy_cmdline":
        proc = snap.process(sock.pid)
        return None if proc is not None and proc.cmdline else "no command line to copy"
    why = socket_refusal(sock, snap.gaps.is_root)
    if sock.state == TIME_WAIT:
        return why
    if row.mark == GONE:
        return "this socket is gone"
    if action == "free" and not sock.is_listening:
        return "only a listening socket's port can be freed"
    if why:
        return why
    pids: tuple[int | None, ...] = (sock.pid,)
    if action == "free":
        # From the row's own socket: this is asked on every refresh of the footer, and the
        # port's other sockets (if any) are checked again, live, before any signal.
        good = for_good(sock.lport, snap, (sock,))
        if good.blocked:
            return f"it cannot be freed for good: {good.blocked[0]}"
        # Holders a manager is asked to stop get no signal: only the rest are checked.
        pids = tuple(t.pid for t in (*good.managers, *good.holders))
    for pid in pids:
        why = refusal(pid, own_pid, protected)
        if why:
            return why
        proc = snap.process(pid)
        if proc is None:
            return f"PID {pid} is no longer known"
        why = manager_refusal(proc.pid, proc.name, proc.cmdline)
        if why:
            return why
    return None


def plan(kind: ActionKind, row: Row, snap: Snapshot, operator: str,
         grace: float = GRACE) -> ActionPlan:
    """Freeze what a confirmation will act on, from the snapshot on screen now.

    Ask unavailable() first: this assumes the row can be acted on. "free" frees the port
    for good: managers are asked to stop their program, the processes that restart a
    holder are signalled first, then the holders.
    """
    sock = row.sock
    requests: tuple[Request, ...] = ()
    first: tuple[Target, ...] = ()
    if kind == "free":
        # Every listening socket on the port, with every holder of each.
        socks = listeners_on(snap, sock.lport)
        holders = snap.targets(holder_pids(socks))
        good = for_good(sock.lport, snap, socks)
        chosen, requests, first = good.holders, good.requests, good.managers
        addrs = tuple(sorted({addr_of(s) for s in socks}))
    else:
        holders = snap.targets(sock.holders)
        chosen = snap.targets((sock.pid,) if sock.pid is not None else ())
        addrs = (addr_of(sock),)
    port = sock.lport if sock.is_listening else None
    label = f"{sock.proto_label} {format_endpoint(sock.laddr, sock.lport)} {sock.state}"
    at = sock.lport
    managers = [m for t in holders if (m := snap.manager_at(t.pid, at)) is not None]
    cautions = tuple(dict.fromkeys(
        m.caution for t in chosen if (m := snap.manager_at(t.pid, at)) is not None
        and m.caution and not manager_refusal(t.pid, t.name, t.cmdline)))
    kill_cautions = tuple(dict.fromkeys(
        m.no_kill for t in chosen if (m := snap.manager_at(t.pid, at)) is not None and m.no_kill))
    if kind == "kill":
        cautions = tuple(dict.fromkeys((*cautions, *kill_cautions)))
    stop = "; ".join(dict.fromkeys(m.stop for m in managers
                                   if m.stop and m.kind not in ("orphan", "unknown")))
    # Another user's process (or root's, when a person runs us through sudo) must be
    # confirmed by typing its PID; one's own processes need only `y`.
    return ActionPlan(kind, SIGNALS[kind], chosen, holders, port, addrs, label, operator,
                      grace, requests, first, cautions, stop, kill_cautions)
