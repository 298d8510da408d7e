"""The bind probe: really try bind() on a port, as a server would, and close at once."""

from __future__ import annotations

import errno
import socket

from .. import report
from ..model import BindResult, Diagnosis, Snapshot

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


def fin_timeout(proc_root: str = "/proc") -> float | None:
    """net.ipv4.tcp_fin_timeout: how long an orphaned FIN_WAIT2 connection may live."""
    try:
        with open(f"{proc_root}/sys/net/ipv4/tcp_fin_timeout", encoding="ascii") as fh:
            return float(fh.read().strip())
    except (OSError, ValueError):
        return None


def diagnose(port: int, snap: Snapshot) -> Diagnosis:
    """The diagnosis of a port: the snapshot's sockets (all states) plus real binds now,
    and the containers Docker says publish it."""
    from .services import Services

    claims, error = Services().claims(port)
    return report.diagnose(port, snap, probe(port), fin_timeout(), claims, error)


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

