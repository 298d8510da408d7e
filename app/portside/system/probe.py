"""The EADDRINUSE diagnosis: who holds a port, what lingers on it, and can we bind it now."""

from __future__ import annotations

import dataclasses
import errno
import socket
from collections import Counter

from ..fmt import format_duration
from ..model import LISTEN, TIME_WAIT, BindResult, Diagnosis, Snapshot
from .sampler import holder_pids

PROBE_ADDRESSES = ("0.0.0.0", "::", "127.0.0.1")


def try_bind(address: str, port: int, reuseaddr: bool) -> BindResult:
    """Try to bind a TCP socket to address:port, as a server would."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return BindResult(address, reuseaddr, False, "unavailable", str(exc.strerror or exc))
    try:
        if reuseaddr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # A dual-stack "::" socket, as most servers open it (Node, Go, Java).
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        sock.bind((address, port))
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "error")
        if exc.errno == errno.EADDRNOTAVAIL or exc.errno == errno.EAFNOSUPPORT:
            code = "unavailable"
        return BindResult(address, reuseaddr, False, code, exc.strerror or str(exc))
    finally:
        sock.close()
    return BindResult(address, reuseaddr, True)


def probe(port: int, addresses: tuple[str, ...] = PROBE_ADDRESSES) -> list[BindResult]:
    """bind() each address with and without SO_REUSEADDR."""
    return [try_bind(a, port, reuse) for a in addresses for reuse in (False, True)]


def diagnose(port: int, snap: Snapshot, binds: list[BindResult] | None = None) -> Diagnosis:
    """Combine the sockets of a snapshot (taken with all states) with real bind attempts."""
    if binds is None:
        binds = probe(port)
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
    unknown = sum(1 for s in listeners if not s.pids)
    lefts = [s.time_left for s in tw if s.time_left is not None]
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
    )
    return dataclasses.replace(diag, verdict=tuple(_verdict(diag)))


def _verdict(d: Diagnosis) -> list[str]:
    port = d.port
    lines: list[str] = []
    if any(b.error == "EACCES" for b in d.binds):
        lines.append(
            f"Ports below 1024 need root or CAP_NET_BIND_SERVICE: binding {port} is denied "
            "to this user whatever else holds it."
        )
    if d.listeners:
        addrs = sorted({f"{s.laddr} ({'IPv6' if s.family == 'ipv6' else 'IPv4'})"
                        for s in d.listeners})
        if d.holders:
            who = ", ".join(f"{p.pid} ({p.name})" for p in d.holders)
            lines.append(f"Port {port} is in use: listening on {', '.join(addrs)}, held by "
                         f"PID {who}.")
            lines.append(f"Remedy: stop it with `portside kill :{port}` (SIGTERM; add --force "
                         "for SIGKILL if it does not exit), or use another port.")
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
    if d.others and blocked:
        states = ", ".join(f"{n} {s}" for s, n in d.others)
        reuse = " SO_REUSEADDR lets a new listener bind meanwhile." if d.can_bind_reuse else ""
        lines.append(f"Connections still use {port} as their local port ({states}); they go "
                     f"when the processes holding them close them.{reuse}")
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


def is_ipv6_available() -> bool:
    """True when this host can open IPv6 sockets on loopback."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True

