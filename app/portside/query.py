"""The filter language: parse a query, match sockets against it, sort them."""

# No `from __future__ import annotations`: a NamedTuple compiles each of its string
# annotations at import, which was ~2 ms of every command's start.

import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, cast

from .fmt import join_cmdline
from .model import ALL_STATES, Snapshot, Socket

# ipaddress is imported where it is used: most listings need none of it, and it was
# ~1 ms of every command's start.

MAX_QUERY_LENGTH = 256

KEYS = ("port", "lport", "rport", "pid", "user", "proc", "state", "proto", "addr")

STATE_ALIASES = {
    "tw": "TIME_WAIT",
    "timewait": "TIME_WAIT",
    "estab": "ESTABLISHED",
    "listening": "LISTEN",
    "unconn": "NONE",
    "syn_recv": "SYN_RECV",
    "new_syn_recv": "SYN_RECV",
}
PROTOS = ("tcp", "udp", "tcp4", "tcp6", "udp4", "udp6")

SYNTAX_HELP = """\
free text      matches process name, command line, address or user (case-insensitive)
:3000          port 3000, local or remote (same as port:3000)
port:3000-3010 a range; port:3000,8080 a list; lport: / rport: local or remote only
pid:1234       a holding process      user:NAME / user:me   the socket's user
proc:node      process name contains  addr:127.0.0.1 / addr:10.0.0.0/8
state:listen   listen, time_wait (tw), established, close_wait, ... (a list with ,)
proto:tcp      tcp, udp, tcp4, tcp6, udp4, udp6
-term, !term   negation; terms are AND-ed, but the same kind twice means either:
               ":3000 :8080" shows both ports; quote text with spaces: "my app\""""


class QueryError(ValueError):
    """A query that cannot be parsed; names the bad term."""

    def __init__(self, message: str, term: str | None = None) -> None:
        super().__init__(message)
        self.term = term


class Term(NamedTuple):
    """One AND-ed condition."""

    kind: str  # "text" or one of KEYS
    negated: bool
    text: str  # the term as typed
    values: tuple[object, ...]


class Query(NamedTuple):
    """A parsed query; the empty query matches everything.

    Terms are AND-ed, except that positive terms of the same kind are alternatives:
    `:3000 :8080` shows both ports, `state:listen state:tw` both states.
    """

    terms: tuple[Term, ...] = ()
    source: str = ""
    groups: tuple[tuple[Term, ...], ...] = ()

    def matches(self, sock: Socket, snap: Snapshot | None = None) -> bool:
        """True when every group of terms holds for this socket."""
        return all(group_matches(group, sock, snap) for group in self.groups)

    def filter(self, snap: Snapshot) -> list[Socket]:
        """The snapshot's sockets that match."""
        if not self.terms:
            return list(snap.sockets)
        return [s for s in snap.sockets if self.matches(s, snap)]


def split(text: str) -> list[str]:
    """Split typed text into terms as a shell does (quotes group, backslash escapes);
    an unclosed quote or a trailing backslash is an error naming where it starts."""
    quote, start, escaped = "", 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                escaped = True
        elif ch in "'\"":
            quote, start = ch, i
        elif ch == "\\":
            escaped, start = True, i
    if quote:
        raise QueryError(f"{text[start:]!r}: unclosed quote", text[start:])
    if escaped:
        raise QueryError(f"{text[start:]!r}: nothing after the backslash", text[start:])
    return shlex.split(text)


def as_typed(argv: Sequence[str]) -> str:
    """The text that, typed in the dashboard's filter, means what these argv words mean:
    the words joined, as a shell hands them over."""
    return " ".join(argv)


def parse(query: str | Sequence[str], me: str | None = None) -> Query:
    """Parse a query as typed, or the words of a command line (joined with spaces: the
    CLI and the dashboard read the same text the same way); raise QueryError if invalid.

    So on the command line, text with spaces is quoted for the filter as well as for the
    shell: `portside list '"my app"'`; and `portside list '"my app'` fails as typing
    `"my app` in the dashboard does.
    """
    source = query if isinstance(query, str) else as_typed(query)
    if len(source) > MAX_QUERY_LENGTH:
        raise QueryError(f"query too long ({len(source)} > {MAX_QUERY_LENGTH} characters)")
    terms = tuple(_parse_term(t, me) for t in split(source) if t)
    return Query(terms, source, _group(terms))


def _group(terms: tuple[Term, ...]) -> tuple[tuple[Term, ...], ...]:
    alternatives: dict[str, list[Term]] = {}
    groups: list[tuple[Term, ...]] = []
    for t in terms:
        if t.negated or t.kind == "text":
            groups.append((t,))
        else:
            alternatives.setdefault(t.kind, []).append(t)
    groups.extend(tuple(g) for g in alternatives.values())
    return tuple(groups)


def _parse_term(token: str, me: str | None) -> Term:
    negated = False
    body = token
    if body[:1] in ("-", "!") and len(body) > 1:
        negated, body = True, body[1:]
    elif body in ("-", "!"):
        raise QueryError(f"{token!r}: negation of nothing", token)
    if body.startswith(":") and body[1:2] != ":":  # "::1" is text: an IPv6 address
        if not body[1:]:
            raise QueryError(f"{token!r}: a port is missing after ':' (e.g. :3000)", token)
        return Term("port", negated, token, _parse_ports(body[1:], token))
    key, sep, value = body.partition(":")
    low = key.lower()
    if not sep or not key.isalpha():
        return Term("text", negated, token, (body.lower(),))
    if low not in KEYS:
        raise QueryError(f"{token!r}: unknown filter {key!r} (known: {', '.join(KEYS)})", token)
    if not value:
        raise QueryError(f"{token!r}: {low}: needs a value", token)
    values: tuple[object, ...]
    if low in ("port", "lport", "rport"):
        values = _parse_ports(value, token)
    elif low == "pid":
        values = tuple(_parse_int(v, token, "PID", 1, 2**31 - 1) for v in value.split(","))
    elif low == "user":
        if value == "me":
            if me is None:
                raise QueryError(f"{token!r}: the current user is unknown", token)
            value = me
        values = (value,)
    elif low == "proc":
        values = (value.lower(),)
    elif low == "state":
        values = tuple(_parse_state(v, token) for v in value.split(","))
    elif low == "proto":
        values = tuple(_parse_proto(v, token) for v in value.split(","))
    else:
        values = _parse_addr(value, token)
    return Term(low, negated, token, values)


def _parse_int(text: str, token: str, what: str, low: int, high: int) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise QueryError(f"{token!r}: {what} {text!r} is not a number", token)
    value = int(text)
    if not low <= value <= high:
        raise QueryError(f"{token!r}: {what} {value} is out of range {low}-{high}", token)
    return value


def _parse_ports(spec: str, token: str) -> tuple[object, ...]:
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        lo = _parse_int(first, token, "port", 1, 65535)
        hi = _parse_int(last, token, "port", 1, 65535) if dash else lo
        if hi < lo:
            raise QueryError(f"{token!r}: empty port range {lo}-{hi}", token)
        ranges.append((lo, hi))
    return tuple(ranges)


def _parse_state(text: str, token: str) -> str:
    norm = text.strip().lower().replace("-", "_")
    state = STATE_ALIASES.get(norm, norm.upper())
    if state not in ALL_STATES:
        names = ", ".join(s.lower() for s in ALL_STATES)
        raise QueryError(f"{token!r}: unknown state {text!r} (known: {names}, tw)", token)
    return state


def _parse_proto(text: str, token: str) -> str:
    norm = text.strip().lower()
    if norm not in PROTOS:
        raise QueryError(f"{token!r}: unknown protocol {text!r} (known: {', '.join(PROTOS)})")
    return norm


def _parse_addr(text: str, token: str) -> tuple[int, int, int]:
    """A network as (IP version, network address, netmask), as integers: what a socket's
    address (its _addr_key) is matched against."""
    import ipaddress

    try:
        net = ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        raise QueryError(f"{token!r}: {text!r} is not an IP address or network", token) from None
    return net.version, int(net.network_address), int(net.netmask)


def _in_ranges(port: int | None, ranges: Iterable[object]) -> bool:
    if port is None:
        return False
    return any(lo <= port <= hi for lo, hi in cast(Iterable[tuple[int, int]], ranges))


def _addr_in(addr: str | None, net: tuple[object, ...]) -> bool:
    # The address as the sort reads it, parsed once per distinct address, not per row.
    version, value = _addr_key(addr)
    return version == net[0] and value & cast(int, net[2]) == net[1]


def group_matches(group: tuple[Term, ...], sock: Socket, snap: Snapshot | None) -> bool:
    """True when one group of a query holds: its one term (negated or not), or any of
    its alternatives."""
    if len(group) == 1:
        t = group[0]
        return _match_term(t, sock, snap) != t.negated
    return any(_match_term(t, sock, snap) for t in group)


def _match_term(term: Term, sock: Socket, snap: Snapshot | None) -> bool:
    kind, values = term.kind, term.values
    if kind == "port":
        return _in_ranges(sock.lport, values) or _in_ranges(sock.rport, values)
    if kind == "lport":
        return _in_ranges(sock.lport, values)
    if kind == "rport":
        return _in_ranges(sock.rport, values)
    if kind == "state":
        return sock.state in values
    if kind == "proto":
        return sock.proto in values or sock.proto_label in values
    if kind == "pid":
        return any(p in values for p in sock.holders)
    if kind == "user":
        return sock.user is not None and sock.user == values[0]
    if kind == "addr":
        return _addr_in(sock.laddr, values) or _addr_in(sock.raddr, values)
    if kind == "proc":
        proc = snap.process(sock.pid) if snap is not None else None
        return proc is not None and str(values[0]) in proc.name.lower()
    # Free text.
    needle = str(values[0])
    # Addresses are written in lower case (inet_ntop); "host:port" is made only when asked.
    if needle in sock.laddr or (sock.raddr is not None and needle in sock.raddr) or (
            sock.user is not None and needle in sock.user.lower()) or (
            ":" in needle and needle in f"{sock.laddr}:{sock.lport}"):
        return True
    return snap is not None and sock.pid is not None and needle in process_text(snap, sock.pid)


_TEXTS: dict[int, tuple[Snapshot, dict[int, str]]] = {}


def process_text(snap: Snapshot, pid: int) -> str:
    """A process's name and command line, lower-cased, for free text: made once per
    process and snapshot (a filter is tried on every socket, on every key typed, and
    thousands of sockets share a process)."""
    entry = _TEXTS.get(id(snap))
    if entry is None or entry[0] is not snap:
        # One snapshot's texts only: keeping an older one would keep its 100k sockets
        # alive too (a worker on another snapshot makes its few hundred texts again).
        _TEXTS.clear()
        entry = _TEXTS[id(snap)] = (snap, {})
    texts = entry[1]
    text = texts.get(pid)
    if text is None:
        proc = snap.process(pid)
        text = texts[pid] = f"{proc.name}\n{join_cmdline(proc.cmdline)}".lower() \
            if proc is not None else ""
    return text


# Sorting -------------------------------------------------------------------------------

SORT_COLUMNS = ("proto", "address", "port", "state", "pid", "process", "user", "time")


_ADDR_KEYS: dict[str, tuple[int, int]] = {}


def _addr_key(addr: str | None) -> tuple[int, int]:
    """(version, integer) for address order; cached, as a table has few distinct addresses."""
    if not addr:
        return (0, 0)
    key = _ADDR_KEYS.get(addr)
    if key is None:
        import ipaddress

        try:
            ip = ipaddress.ip_address(addr)
            key = (ip.version, int(ip))
        except ValueError:
            key = (9, 0)
        if len(_ADDR_KEYS) > 100_000:
            _ADDR_KEYS.clear()
        _ADDR_KEYS[addr] = key
    return key


def sort_key(column: str, snap: Snapshot) -> Callable[[Socket], tuple[object, ...]]:
    """A key function for sorting sockets by a column; ties broken by port and address."""
    if column not in SORT_COLUMNS:
        raise ValueError(f"unknown sort column {column!r}")

    def name(s: Socket) -> str:
        p = snap.process(s.pid)
        return p.name.lower() if p else "\uffff"

    def age(s: Socket) -> float:
        left = snap.time_left(s)
        if left is not None:
            return left
        p = snap.process(s.pid)
        return (snap.taken_at - p.create_time) if p else -1.0

    primary: dict[str, Callable[[Socket], object]] = {
        "proto": lambda s: s.proto_label,
        "address": lambda s: _addr_key(s.laddr),
        "port": lambda s: s.lport,
        "state": lambda s: s.state,
        "pid": lambda s: s.pid if s.pid is not None else 1 << 40,
        "process": name,
        "user": lambda s: s.user or "\uffff",
        "time": age,
    }
    first = primary[column]
    return lambda s: (first(s), s.lport, _addr_key(s.laddr), s.rport or 0, s.state)
