"""The details pane: everything known about the highlighted row, as plain Rich Text."""

from __future__ import annotations

from rich.text import Text

from ..fmt import (
    clock_time,
    format_duration,
    format_endpoint,
    join_cmdline,
    safe_text,
    state_cell,
    time_left_cell,
)
from ..model import TIME_WAIT, Manager, ProcessInfo, Snapshot, Socket, owner_unknown
from ..view import GONE, Row, TableModel

LABEL = "bold"
MUTED = "dim"


def _line(text: Text, label: str, value: str, style: str = "") -> None:
    text.append(f"{label:<9}", LABEL)
    text.append(value + "\n", style)


def _wall(snap: Snapshot, now: float) -> float:
    return snap.taken_at + (now - snap.monotonic)


def _mem(rss: int | None) -> str:
    if rss is None:
        return "?"
    mib = rss / (1 << 20)
    return f"{mib:.0f} MiB" if mib >= 10 else f"{mib:.1f} MiB"


def _sock_label(s: Socket) -> str:
    label = f"{s.proto_label} {format_endpoint(s.laddr, s.lport)}"
    if s.raddr:
        label += f" → {format_endpoint(s.raddr, s.rport or 0)}"
    return f"{label} {state_cell(s)}"


def parent_chain(snap: Snapshot, proc: ProcessInfo, limit: int = 8) -> str:
    """'bash (1204) ← sshd (812) ← systemd (1)' from the snapshot's processes."""
    parts: list[str] = []
    seen = {proc.pid}
    ppid = proc.ppid
    while ppid and ppid not in seen and len(parts) < limit:
        seen.add(ppid)
        parent = snap.process(ppid)
        if parent is None:
            parts.append(f"PID {ppid}")
            break
        parts.append(f"{safe_text(parent.name)} ({ppid})")
        ppid = parent.ppid
    return " ← ".join(parts) or "none"


def details_text(model: TableModel, row: Row | None, now: float) -> Text:
    """The details of a row; `now` is the monotonic clock."""
    text = Text()
    snap = model.snapshot
    if row is None or snap is None:
        text.append("No socket selected.", MUTED)
        return text
    sock = row.sock
    if row.mark == GONE:
        text.append("This socket is gone (kept a few seconds).\n\n", "bold")
    if sock.state == TIME_WAIT:
        _time_wait(text, model, row, now)
        return text
    _line(text, "socket", _sock_label(sock))
    if sock.is_listening and sock.proto == "tcp":
        conns = snap.connections.get(sock.lport, 0)
        count, _, last = model.drain(sock.lport, now)
        drain = f", {count} TIME_WAIT (last in {format_duration(last)})" if count else ""
        _line(text, "", f"{conns} connection(s){drain}")
    if not sock.holders:
        text.append("\nOwner unknown", "bold")
        text.append(f" (socket user {safe_text(sock.user or '?')}).\n")
        gaps = snap.gaps
        if owner_unknown(sock, gaps):
            text.append(f"{gaps.unknown_reason[:1].upper()}{gaps.unknown_reason[1:]}.\n")
        elif sock.inode in gaps.pending:
            text.append("No process was found holding it in this sample (its process may "
                        "have just exited): it is looked up again at the next one.\n")
        else:
            text.append("No process holds it: the kernel keeps it until the connection "
                        "ends.\n")
        return text
    proc = row.proc or snap.process(sock.pid)
    if proc is None:
        _line(text, "PID", str(sock.pid))
        return text
    text.append("\n")
    text.append(safe_text(proc.name), "bold")
    text.append(f"  PID {proc.pid}\n")
    _line(text, "parents", parent_chain(snap, proc))
    _line(text, "user", safe_text(proc.username or sock.user or "?"))
    _line(text, "status", safe_text(proc.status or "?"))
    up = _wall(snap, now) - proc.create_time
    _line(text, "started", f"{clock_time(proc.create_time)} (up {format_duration(up)})")
    cpu = "?" if proc.cpu_percent is None else f"{proc.cpu_percent:.1f}%"
    _line(text, "cpu/mem", f"{cpu} · {_mem(proc.rss)}")
    if proc.unit:
        _line(text, "unit", safe_text(proc.unit))
    _line(text, "exe", safe_text(proc.exe or "?"))
    _line(text, "cwd", safe_text(proc.cwd or "?"))
    text.append("command\n", LABEL)
    text.append(safe_text(join_cmdline(proc.cmdline) or "?") + "\n")
    manager = snap.manager(sock)
    if manager is not None:
        _managed_by(text, snap, manager)
    text.append(f"\nholders ({len(sock.holders)})\n", LABEL)
    for pid in sock.holders:
        holder = snap.process(pid)
        name = safe_text(holder.name) if holder else "?"
        user = safe_text(holder.username or "?") if holder else "?"
        m = snap.manager_at(pid, sock.lport)
        # The reloader or master apart from the children that serve.
        role = f"  {m.role(pid)}" if m is not None and m.kind not in ("orphan", "unknown") \
            else ""
        text.append(f"  PID {pid} {name} ({user}){role}\n")
    others = [s for s in model.sockets_of(proc.pid) if s.key != sock.key]
    if others:
        text.append(f"\nother sockets of PID {proc.pid} ({len(others)})\n", LABEL)
        for s in others[:12]:
            text.append(f"  {_sock_label(s)}\n")
        if len(others) > 12:
            text.append(f"  … {len(others) - 12} more\n", MUTED)
    return text


_KINDS = {"reloader": "reloader", "prefork": "prefork master", "script": "package script",
          "supervisord": "supervisord", "pm2": "pm2", "loop": "shell restart loop",
          "docker": "container", "systemd": "systemd unit",
          "orphan": "orphan: its starter is gone", "unknown": "unknown"}


_MANAGER_COMMAND = 240  # characters of the manager's command line shown; `why` has it all


def _managed_by(text: Text, snap: Snapshot, m: Manager) -> None:
    """Who manages the row's holder: what restarts it, and what stops it for good."""
    text.append("\nmanaged by\n", LABEL)
    _line(text, "kind", _KINDS.get(m.kind, m.kind) + (f" ({safe_text(m.name)})"
                                                      if m.name else ""))
    if m.pid is not None:
        proc = snap.process(m.pid)
        command = m.command or (join_cmdline(proc.cmdline) if proc else "")
        if len(command) > _MANAGER_COMMAND:  # a shell's whole script: the holder comes first
            command = command[:_MANAGER_COMMAND] + "…"
        _line(text, "by", f"PID {m.pid} {safe_text(command)}")
    _line(text, "restarts", m.restarts)
    if m.stop:
        _line(text, "stop", safe_text(m.stop) + ("  (c copies it)" if m.kind not in
                                                    ("orphan", "unknown") else ""))
    if m.caution:
        text.append(f"{safe_text(m.caution)}\n", "bold")
    text.append("judged from\n", LABEL)
    for item in m.evidence:
        text.append(f"  · {safe_text(item)}\n", MUTED)


def _time_wait(text: Text, model: TableModel, row: Row, now: float) -> None:
    sock = row.sock
    how = ("exact, from the kernel's timer" if sock.time_left_exact
           else "estimated from when it was first seen")
    if row.folded:
        _, side, port = row.fold_of
        text.append(f"{row.count} TIME_WAIT sockets", "bold")
        text.append(f" on port {port} ({'local' if side == 'local' else 'remote'} side)\n\n")
        members = model.members(row)
        lefts = sorted(left for m in members if (left := m.time_left(now)) is not None)
        if lefts:
            exact = sock.time_left_exact
            _line(text, "first", time_left_cell(lefts[0], exact))
            _line(text, "last", f"{time_left_cell(lefts[-1], exact)} ({how})")
        text.append("\nThey belong to no process: nothing to stop. The port can be bound now "
                    "with SO_REUSEADDR, or without it once the last one is gone.\n")
        return
    text.append("TIME_WAIT", "bold")
    text.append(f" {_sock_label(sock)}\n\n")
    if sock.raddr:
        _line(text, "peer", format_endpoint(sock.raddr, sock.rport or 0))
    _line(text, "left", f"{time_left_cell(row.time_left(now), sock.time_left_exact)} ({how})")
    count, soonest, last = model.drain(sock.lport, now)
    if count:
        _line(text, "drain", f"port {sock.lport}: {count} socket(s), first in "
              f"{format_duration(soonest)}, last in {format_duration(last)}")
    text.append("\nA closed connection waiting out 2×MSL: it belongs to no process.\n")
