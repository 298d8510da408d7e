"""The EADDRINUSE diagnosis: sockets plus bind() results, a verdict, and the report text.

Pure: the bind attempts themselves are made by portside.system.probe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .daemons import manager_refusal
from .fmt import format_duration, format_endpoint, join_cmdline, manager_title, safe_text
from .model import (
    LISTEN,
    TIME_WAIT,
    BindResult,
    Diagnosis,
    Gaps,
    Manager,
    Orphan,
    PortClaim,
    Snapshot,
    Socket,
    holder_pids,
    is_orphan,
    owner_unknown,
)


def sample_notes(socks: Iterable[Socket] | None, gaps: Gaps) -> list[str]:
    """The notes that go with a list of sockets (None: every socket of the sample): what
    the sample could not see, with the sockets of unknown owner counted among these only."""
    unknown = gaps.unknown_owner
    if unknown and socks is not None:
        unknown = sum(1 for s in socks if owner_unknown(s, gaps))
    own = [f"{unknown} socket(s) with owner unknown: {gaps.unknown_reason}"] if unknown else []
    return [*own, *gaps.notes]


def diagnosis_lines(d: Diagnosis) -> list[str]:
    """The report of `portside why PORT`, line by line (process text made safe)."""
    names = {p.pid: p.name for p in d.holders}
    lines = [f"Port {d.port}", ""]
    if d.listeners:
        lines.append("Listening:")
        for s in d.listeners:
            fam = "IPv6" if s.family == "ipv6" else "IPv4"
            who = ", ".join(
                f"PID {p} ({safe_text(names[p])})" if p in names else f"PID {p}" for p in s.holders
            ) or "unknown holder"
            lines.append(f"  {format_endpoint(s.laddr, s.lport)} ({fam})  {who}")
        for p in d.holders:
            lines.append(f"    PID {p.pid}: {safe_text(join_cmdline(p.cmdline) or p.name)}")
    else:
        lines.append("Listening: nothing")
    tw = "none"
    if d.time_wait:
        approx = "" if d.time_wait_exact else "~"
        tw = (f"{d.time_wait}, the last expires in {approx}"
              f"{format_duration(d.time_wait_last or 0.0)}")
    lines.append(f"TIME_WAIT: {tw}")
    if d.others:
        lines.append("Other connections on it: " + ", ".join(f"{n} {s}" for s, n in d.others))
    if d.udp:
        lines.append(f"UDP sockets bound to it: {len(d.udp)}")
    lines += ["", "bind() now:"]
    for b in d.binds:
        label = f"{format_endpoint(b.address, d.port)}{' SO_REUSEADDR' if b.reuseaddr else ''}"
        state = "ok" if b.ok else f"{b.error}" + (f" ({b.detail})" if b.detail else "")
        lines.append(f"  {label:<28} {state}")
    lines += ["", *d.verdict]
    return lines


def orphans_of(socks: list[Socket], snap: Snapshot) -> tuple[Orphan, ...]:
    """The connections among socks that no process holds, each with the local process
    holding its other end (if the peer is on this machine)."""
    found = [s for s in socks if is_orphan(s)]
    if not found:
        return ()
    ends: dict[tuple[str | None, int | None, str | None, int | None], Socket] = {
        (s.laddr, s.lport, s.raddr, s.rport): s for s in snap.sockets if s.holders}
    out = []
    for s in found:
        peer = ends.get((s.raddr, s.rport, s.laddr, s.lport))
        out.append(Orphan(s, snap.process(peer.pid) if peer else None,
                          peer.state if peer else None, snap.time_left(s)))
    return tuple(out)


def diagnose(port: int, snap: Snapshot, binds: list[BindResult],
             fin_timeout: float | None = None, claims: Iterable[PortClaim] = (),
             claims_error: str = "") -> Diagnosis:
    """Combine the sockets of a snapshot (taken with all states) with bind() results."""
    on_port = [s for s in snap.sockets if s.lport == port]
    listeners = tuple(s for s in on_port if s.proto == "tcp" and s.state == LISTEN)
    udp = tuple(s for s in on_port if s.proto == "udp")
    tw = [s for s in on_port if s.proto == "tcp" and s.state == TIME_WAIT]
    others = Counter(
        s.state for s in on_port if s.proto == "tcp" and s.state not in (LISTEN, TIME_WAIT)
    )
    holders = tuple(
        p for p in (snap.process(pid) for pid in holder_pids(listeners)) if p is not None
    )
    unknown = sum(1 for s in listeners if not s.holders)
    lefts = [left for s in tw if (left := snap.time_left(s)) is not None]
    last = max(lefts) if lefts else None
    usable = [b for b in binds if b.error != "unavailable"]
    can_bind = all(b.ok for b in usable if not b.reuseaddr)
    can_reuse = all(b.ok for b in usable if b.reuseaddr)
    diag = Diagnosis(
        port=port, listeners=listeners, udp=udp, holders=holders, unknown_holders=unknown,
        time_wait=len(tw), time_wait_last=last,
        time_wait_exact=all(s.time_left_exact for s in tw),
        others=tuple(sorted(others.items())), binds=tuple(binds), can_bind=can_bind,
        can_bind_reuse=can_reuse, verdict=(), is_root=snap.gaps.is_root,
        orphans=orphans_of(on_port, snap), fin_timeout=fin_timeout,
        managers=snap.managers_on(port, (p.pid for p in holders)),
        claims=tuple(claims), claims_error=claims_error,
    )
    return diag._replace(verdict=tuple(_verdict(diag)))


def _claims(d: Diagnosis) -> list[str]:
    """Containers Docker says publish the port while no docker-proxy or dockerd holds it:
    after a proxy died, `docker ps` still shows the mapping that another process (or
    nothing) now has."""
    docker = any(p.name in ("docker-proxy", "dockerd") for p in d.holders)
    tcp = [c for c in d.claims if c.proto == "tcp"]
    if not tcp or docker or (d.listeners and not d.holders):
        return []
    names = ", ".join(sorted({f"{safe_text(c.container)} ({c.address})" for c in tcp}))
    first = safe_text(tcp[0].container)
    if d.holders:
        who = ", ".join(f"{p.pid} ({safe_text(p.name)})" for p in d.holders)
        return [f"Docker says container {names} publishes port {d.port}, but PID {who} holds "
                f"it, not Docker: the container's port mapping is broken (its docker-proxy "
                f"is gone). Free the port, then `docker restart {first}`."]
    return [f"Docker says container {names} publishes port {d.port}, but nothing listens on "
            f"it: the container's port mapping is broken (its docker-proxy is gone); "
            f"`docker restart {first}` makes it again."]


def _verdict(d: Diagnosis) -> list[str]:
    port = d.port
    lines: list[str] = _claims(d)
    if d.claims_error and not d.holders and d.listeners:
        lines.append(f"Docker could not be asked which container publishes {port}: "
                     f"{safe_text(d.claims_error)}; try `docker ps --filter publish={port}`.")
    if any(b.error == "EACCES" for b in d.binds):
        lines.append(
            f"Ports below 1024 need root or CAP_NET_BIND_SERVICE: binding {port} is denied "
            "to this user whatever else holds it."
        )
    if d.listeners:
        addrs = sorted({f"{s.laddr} ({'IPv6' if s.family == 'ipv6' else 'IPv4'})"
                        for s in d.listeners})
        if d.holders:
            who = ", ".join(f"{p.pid} ({safe_text(p.name)})" for p in d.holders)
            lines.append(f"Port {port} is in use: listening on {', '.join(addrs)}, held by "
                         f"PID {who}.")
            lines += _remedy(d)
        if d.unknown_holders:
            hint = ("run `sudo portside why {0}` to see who" if not d.is_root
                    else "its process's open files cannot be read even as root")
            lines.append(f"{d.unknown_holders} listener(s) on {', '.join(addrs)} belong to a "
                         f"process portside cannot see: {hint.format(port)}.")
        free = sorted({b.address for b in d.binds if b.ok and not b.reuseaddr})
        if free:
            lines.append(f"Binding only {', '.join(free)} works now (address overlap: the "
                         "wildcard conflicts with every specific address).")
        return lines
    blocked = not d.can_bind
    explained = bool(lines)
    if d.time_wait and blocked:
        wait = format_duration(d.time_wait_last or 0.0)
        approx = "" if d.time_wait_exact else "about "
        lines.append(f"Nothing listens on {port}, but {d.time_wait} TIME_WAIT socket(s) from "
                     f"earlier connections linger; the last expires in {approx}{wait}.")
        if d.can_bind_reuse:
            lines.append(f"Remedy: wait {approx}{wait}, or set SO_REUSEADDR on the socket "
                         "before bind() (most servers do; then the port is usable now).")
        else:
            lines.append(f"Remedy: wait {approx}{wait}. The old connections came from a socket "
                         "without SO_REUSEADDR, so only waiting helps this time; set it in "
                         "your server to avoid this next time.")
        explained = True
    reuse = " SO_REUSEADDR lets a new listener bind meanwhile." if d.can_bind_reuse else ""
    orphaned: Counter[str] = Counter(o.sock.state for o in d.orphans)
    held = [(s, n - orphaned.get(s, 0)) for s, n in d.others if n > orphaned.get(s, 0)]
    if held and blocked:
        states = ", ".join(f"{n} {s}" for s, n in held)
        lines.append(f"Connections still use {port} as their local port ({states}); they go "
                     f"when the processes holding them close them.{reuse}")
        explained = True
    if d.orphans and blocked:
        lines += _orphans(d, reuse)
        explained = True
    if blocked and not explained:
        errors = sorted({b.error or "" for b in d.binds if not b.ok and not b.reuseaddr})
        more = "; run with sudo to see more." if not d.is_root else "."
        lines.append(f"bind() on {port} fails ({', '.join(errors)}) but no socket on it is "
                     f"visible{more}")
    if not blocked:
        lines.insert(0, f"Port {port} is free: bind() works on every address tried.")
    if d.udp:
        lines.append(f"{len(d.udp)} UDP socket(s) are bound to {port}; they do not block TCP.")
    return lines


def _orphans(d: Diagnosis, reuse: str) -> list[str]:
    """Why connections that no process holds still block the port, and when they go."""
    states = Counter(o.sock.state for o in d.orphans)
    what = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    lines = [f"Connections on {d.port} belong to no process ({what}): the process that had "
             "them closed them or exited, and the kernel finishes them."]
    peers = Counter((o.peer.pid, o.peer.name, o.peer_state) for o in d.orphans if o.peer)
    remote = sorted({format_endpoint(o.sock.raddr or "", o.sock.rport or 0)
                     for o in d.orphans if o.peer is None})
    who = [f"PID {pid} ({safe_text(name)}) holds {n} of the other ends, in {state}"
           for (pid, name, state), n in sorted(peers.items())]
    if remote:
        who.append("the other end at " + ", ".join(remote[:3])
                   + (f" and {len(remote) - 3} more" if len(remote) > 3 else "")
                   + " has not closed")
    lefts = [o.time_left for o in d.orphans
             if o.sock.state == "FIN_WAIT2" and o.time_left is not None]
    if lefts:
        limit = f"in {format_duration(max(lefts))} at the latest (the kernel's FIN_WAIT2 timer)"
    elif d.fin_timeout is not None:
        limit = (f"within {format_duration(d.fin_timeout)} "
                 "(net.ipv4.tcp_fin_timeout)")
    else:
        limit = "when net.ipv4.tcp_fin_timeout runs out"
    lines.append(f"They go when the other end closes its side ({'; '.join(who)}), or by "
                 f"themselves {limit}.{reuse}")
    return lines


_SPEED = {"always": "restarts it at once when it exits", "on file change":
          "starts it again on the next file change", "never": "does not restart it",
          "on failure": "restarts it after a crash or SIGKILL, not after SIGTERM",
          "unknown": "may restart it (how is not known)"}
_SPEED_SELF = {"reloader": "starts a new server on the next file change",
               "prefork": "starts a new worker when one dies"}


def manager_sentence(pid: int, m: Manager, holders: Iterable[int] = ()) -> str:
    """What manages a holder, in one sentence (holders: every holder of its socket)."""
    if m.kind == "orphan":
        return (f"PID {pid} is an orphan: {'; '.join(m.evidence[:-1])}. Nothing restarts "
                "it.")
    if m.kind == "unknown":
        return f"Who manages PID {pid} is not known: {m.evidence[0]}."
    if m.kind == "systemd" and not m.stop:
        return (f"PID {pid} is in systemd unit {safe_text(m.name)} but the unit does not run "
                f"it ({m.evidence[-1]}).")
    who = manager_title(m)
    speed = _SPEED[m.restarts]
    if m.pid != pid:
        return f"PID {pid} runs under {who}, which {speed}."
    others = sorted(set(holders) - {pid})
    if m.kind == "pm2":
        return (f"PID {pid} is the pm2 daemon: in cluster mode it holds the port for the "
                f"app {safe_text(m.name) or '(see pm2 list)'}, whose workers serve it.")
    serve = (f" with {'its child' if len(others) == 1 else 'its children'} PID "
             f"{', '.join(map(str, others))}, which {'serves' if len(others) == 1 else 'serve'}"
             " it" if others else "")
    then = _SPEED_SELF.get(m.kind, speed) if m.restarts != "unknown" else \
        "whether it starts a new one when one dies is not known"
    return f"PID {pid} is {who}: it holds the port{serve}, and {then}."


def _remedy(d: Diagnosis) -> list[str]:
    """What to do about the holders of a port, manager by manager: the action that frees
    it for good."""
    port, lines = d.port, []
    mains = {s.pid for s in d.listeners if s.pid is not None}
    managed = [(p, d.managers[p.pid]) for p in d.holders
               if p.pid in mains and p.pid in d.managers]
    plain = [p for p in d.holders if p.pid in mains and p.pid not in d.managers]
    seen: set[tuple[str, int | None, str]] = set()
    for proc, m in managed:
        refusal = manager_refusal(proc.pid, proc.name, proc.cmdline)
        if refusal is not None:
            lines.append(f"Do not signal it: {refusal}.")
        key = (m.kind, m.pid, m.stop)
        if key in seen:
            continue
        seen.add(key)
        lines.append(manager_sentence(proc.pid, m, [h.pid for h in d.holders]))
        if m.caution and refusal is None:
            lines.append(f"{safe_text(m.caution)}.")
        if m.kind == "unknown":
            lines.append(f"Remedy: stop it with `portside kill :{port}`; if it comes back, "
                         f"run `sudo portside why {port}` to see what restarts it.")
        elif m.pid is not None and m.pid in {h.pid for h in d.holders} and \
                m.kind in ("reloader", "prefork"):
            # What restarts the server holds the port itself: stopping every holder is
            # stopping it too.
            lines.append(f"Remedy (frees it for good): `portside kill :{port}` (SIGTERM to "
                         f"every holder, PID {m.pid} among them), or `{safe_text(m.stop)}`.")
        elif not m.stop:
            lines.append(f"Remedy: stop it with `portside kill :{port}`.")
        else:
            free = "" if m.via == "none" else f", or `portside free :{port}`"
            lines.append(f"Remedy (frees it for good): `{safe_text(m.stop)}`{free}.")
    if plain and not managed:
        lines.append(f"Remedy: stop it with `portside kill :{port}` (SIGTERM; add --force "
                     "for SIGKILL if it does not exit), or use another port.")
    elif plain:
        lines.append(f"PID {', '.join(str(p.pid) for p in plain)} "
                     f"{'has' if len(plain) == 1 else 'have'} no manager: `portside kill "
                     f":{port}` stops {'it' if len(plain) == 1 else 'them'}.")
    return lines
