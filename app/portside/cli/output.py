"""What the one-shot commands print: the JSON schema and the text table, in one place."""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from ..fmt import (
    describe_target,
    format_duration,
    format_endpoint,
    holders_cell,
    manager_cell,
    safe_text,
    state_cell,
    text_width,
    time_left_cell,
)
from ..model import TIME_WAIT, Diagnosis, Manager, Snapshot, Socket, Target, is_orphan

# JSON -----------------------------------------------------------------------------------


def socket_json(sock: Socket, snap: Snapshot) -> dict[str, Any]:
    """One socket as the documented JSON object."""
    proc = snap.process(sock.pid)
    left = snap.time_left(sock)
    return {
        "proto": sock.proto,
        "family": sock.family,
        "local_address": sock.laddr,
        "local_port": sock.lport,
        "remote_address": sock.raddr,
        "remote_port": sock.rport,
        "state": sock.state,
        "pid": sock.pid,
        "holders": list(sock.holders),
        "process": proc.name if proc else None,
        "user": sock.user,
        "cmdline": list(proc.cmdline) if proc and proc.cmdline is not None else None,
        "time_left": None if left is None else round(left, 3),
        "time_left_exact": sock.time_left_exact,
        "managed_by": manager_json(snap.manager(sock)),
    }


def manager_json(m: Manager | None) -> dict[str, Any] | None:
    """Who manages a holder, as the documented `managed_by` object (null: nobody)."""
    if m is None:
        return None
    return {"kind": m.kind, "name": m.name, "pid": m.pid, "command": m.command or None,
            "restarts": m.restarts, "stop": m.stop or None, "evidence": list(m.evidence),
            "caution": m.caution}


# A TIME_WAIT socket's JSON, the same object socket_json() makes: every field is ours
# (addresses as ipaddress prints them, numbers, fixed words), so the bulk of a busy
# machine's sockets skips the json module. "%.3f" prints the number round(x, 3) is.
# Measured in `make bench` (list --json at 50k sockets); test_cli checks the two agree.
_TW_JSON = ('{"proto":"%s","family":"%s","local_address":"%s","local_port":%d,'
            '"remote_address":"%s","remote_port":%d,"state":"TIME_WAIT","pid":null,'
            '"holders":[],"process":null,"user":null,"cmdline":null,"time_left":%.3f,'
            '"time_left_exact":%s,"managed_by":null}')


# Any other socket: the addresses, ports, state and timer are ours as above; what comes
# from its processes (names, users, command lines: hostile text) goes through the json
# module once per holder set, not once per socket (10k listeners of one server: 87 ->
# 30 ms). test_cli checks both paths against socket_json(), with hostile names.
_SOCK_JSON = ('{"proto":"%s","family":"%s","local_address":"%s","local_port":%d,'
              '"remote_address":%s,"remote_port":%s,"state":"%s",%s,"time_left":%s,'
              '"time_left_exact":%s,%s}')
_WHO = ("pid", "holders", "process", "user", "cmdline")


def json_lines(socks: list[Socket], snap: Snapshot) -> str:
    """The `list --json` document: one object per line."""
    fmt, sfmt, dumps, TW = _TW_JSON, _SOCK_JSON, json.dumps, TIME_WAIT
    known: dict[tuple[object, ...], tuple[str, str]] = {}
    lines = []
    mono = snap.monotonic
    for s in socks:
        ends = s.ends
        if s.state == TW and s.raddr is not None and ends is not None:
            # The bulk of a busy machine: snap.time_left() inlined.
            lines.append(fmt % (s.proto, s.family, s.laddr, s.lport, s.raddr, s.rport,
                                ends - mono if ends > mono else 0.0,
                                "true" if s.time_left_exact else "false"))
            continue
        manager = snap.manager(s)
        key = (s.pid, s.holders, s.user, manager)
        parts = known.get(key)
        if parts is None:
            whole = socket_json(s, snap)
            parts = known[key] = (
                dumps({k: whole[k] for k in _WHO}, separators=(",", ":"))[1:-1],
                dumps({"managed_by": whole["managed_by"]}, separators=(",", ":"))[1:-1])
        lines.append(sfmt % (
            s.proto, s.family, s.laddr, s.lport,
            "null" if s.raddr is None else f'"{s.raddr}"',
            "null" if s.rport is None else s.rport, s.state, parts[0],
            "null" if (left := snap.time_left(s)) is None else f"{left:.3f}",
            "true" if s.time_left_exact else "false", parts[1]))
    if not lines:
        return "[]\n"
    # Brackets on the first and last lines: no copies of a document of megabytes.
    lines[0] = "[" + lines[0]
    lines[-1] += "]\n"
    return ",\n".join(lines)


def write_document(text: str, out: TextIO) -> None:
    """Write a large document in one write, as bytes where the stream allows."""
    out.flush()
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        buffer.write(text.encode("utf-8"))
        buffer.flush()
    else:
        out.write(text)


def diagnosis_json(d: Diagnosis, snap: Snapshot) -> dict[str, Any]:
    """`why --json`."""
    return {
        "port": d.port,
        "can_bind": d.can_bind,
        "can_bind_with_reuseaddr": d.can_bind_reuse,
        "listeners": [socket_json(s, snap) for s in d.listeners],
        "udp": [socket_json(s, snap) for s in d.udp],
        "holders": [{"pid": p.pid, "process": p.name, "user": p.username,
                     "cmdline": list(p.cmdline) if p.cmdline is not None else None}
                    for p in d.holders],
        "unknown_holders": d.unknown_holders,
        "time_wait": d.time_wait,
        "time_wait_last_expiry": d.time_wait_last,
        "time_wait_exact": d.time_wait_exact,
        "other_states": dict(d.others),
        "binds": [{"address": b.address, "reuseaddr": b.reuseaddr, "ok": b.ok,
                   "error": b.error} for b in d.binds],
        "orphans": [{"state": o.sock.state, "remote_address": o.sock.raddr,
                     "remote_port": o.sock.rport, "time_left": o.time_left,
                     "peer_pid": o.peer.pid if o.peer else None,
                     "peer_process": o.peer.name if o.peer else None,
                     "peer_state": o.peer_state} for o in d.orphans],
        "fin_timeout": d.fin_timeout,
        # Containers Docker says publish the port (whoever holds it), and why Docker could
        # not be asked.
        "docker_claims": [{"container": c.container, "address": c.address, "proto": c.proto}
                          for c in d.claims],
        "docker_error": d.claims_error or None,
        "verdict": list(d.verdict),
    }


# Text -----------------------------------------------------------------------------------

LIST_HEADER = ["PROTO", "LOCAL", "REMOTE", "STATE", "PID", "PROCESS", "USER", "TIME"]
MANAGER_HEADER = "MANAGER"


def list_row(s: Socket, snap: Snapshot, managers: bool = False,
             known: dict[tuple[object, ...], tuple[str, ...]] | None = None) -> list[str]:
    """One socket as a row of `portside list`, in the dashboard's vocabulary (with the
    manager column when any row has a manager). `known`: the cells that come from the
    socket's processes, by holder set, kept across the rows of one listing (thousands of
    sockets share a server)."""
    manager = snap.manager(s) if managers else None
    key = (s.pid, s.holders, s.user, s.state == TIME_WAIT or is_orphan(s), manager)
    who = known.get(key) if known is not None else None
    if who is None:
        proc = snap.process(s.pid)
        unknown = not s.holders and not key[3]
        who = (holders_cell(s, " "), "?" if unknown else safe_text(proc.name) if proc else "",
               safe_text(s.user or ""), manager_cell(manager) if managers else "",
               "up " + format_duration(snap.taken_at - proc.create_time) if proc else "")
        if known is not None:
            known[key] = who
    left = snap.time_left(s)
    if left is not None:
        when = time_left_cell(left, s.time_left_exact) + " left"
    else:
        when = who[4]
    row = [s.proto_label, format_endpoint(s.laddr, s.lport),
           format_endpoint(s.raddr, s.rport or 0) if s.raddr else "*", state_cell(s),
           who[0], who[1], who[2], when]
    if managers:
        row.append(who[3])
    return row


def write_table(rows: list[list[str]], out: TextIO) -> None:
    """Columns padded to their widest cell, two spaces apart (widths in terminal cells:
    a name in CJK characters takes two per character)."""
    cols = list(zip(*rows, strict=True))
    # Only a column with text from the machine in it (names, users) can hold non-ASCII.
    wide = [not "".join(col).isascii() for col in cols]
    widths = [max(map(text_width if w else len, col)) for col, w in zip(cols, wide, strict=True)]
    if not any(wide):  # every cell one terminal cell per character: one format per row
        fmt = "  ".join(f"%-{n}s" for n in widths)
        out.write("".join((fmt % tuple(r)).rstrip() + "\n" for r in rows))
        return
    for r in rows:
        out.write("  ".join(c + " " * (n - text_width(c)) if w else c.ljust(n)
                            for c, n, w in zip(r, widths, wide, strict=True)).rstrip() + "\n")


def write_target(t: Target, ports: list[int], out: TextIO, role: str = "") -> None:
    """A process `kill` or `free` is about to signal, as the dashboard's dialog describes
    it (role: what it is beside the others, "reloader", "serves"...)."""
    head, command = describe_target(t, time.time())
    on = f"  port {', '.join(str(p) for p in ports)}" if ports else ""
    out.write(f"  {head}{on}{f'  ({role})' if role else ''}\n")
    if t.cmdline:
        out.write(f"      {command}\n")
