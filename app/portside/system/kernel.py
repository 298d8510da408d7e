"""Linux socket tables straight from the kernel: sock_diag netlink, /proc/net as fallback.

Both readers return model Sockets with the inode, the owner uid and, for TIME_WAIT, the
exact time left on the kernel's timer; holders are attached later by the sampler.
"""

from __future__ import annotations

# The C module under `socket`: the Python one builds enums of every constant on import
# (~3 ms of each command's start) for a netlink socket that needs none of them.
import _socket as socket
import errno
import os
import struct
import sys
import time

from ..model import Family, Proto, Socket, State

# Kernel TCP state numbers (include/net/tcp_states.h) -> psutil's names.
TCP_STATE_NAMES: dict[int, State] = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN_RECV",  # TCP_NEW_SYN_RECV: a request socket, shown as SYN_RECV
}
STATE_NUMBERS = {"LISTEN": 10, "TIME_WAIT": 6}
FIN_WAIT2 = 5
ALL_TCP_STATES = 0xFFF & ~1  # bits 1..11 (0 is unused); NEW_SYN_RECV left out, as ss does


class KernelUnavailable(OSError):
    """This reader cannot work here (not Linux, or the interface is closed to us), or
    failed this time (errno says which: see TRANSIENT)."""

    def __str__(self) -> str:
        return str(self.strerror if self.strerror is not None else super().__str__())


# Errors that may pass: retried rather than taken to mean "no sock_diag here".
TRANSIENT = frozenset({errno.EINTR, errno.EAGAIN, errno.ENOBUFS, errno.ENOMEM, errno.EMFILE,
                       errno.ENFILE, errno.EBUSY})


def _unavailable(exc: OSError, what: str) -> KernelUnavailable:
    code = exc.errno or 0
    name = errno.errorcode.get(code)
    text = f"{what}: {exc.strerror or exc}" + (f" ({name})" if name else "")
    return KernelUnavailable(code, text)


_ADDR_CACHE: dict[bytes, str] = {}


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


# glibc's inet_ntop spells IPv6 as RFC 5952 does, as ipaddress does; another C library's
# may not (musl's shortens a single zero group), so there ipaddress spells all of IPv6.
_NTOP6 = _glibc()


def _addr(raw: bytes) -> str:
    # Addresses are spelled as ipaddress spells them, as our JSON promises. inet_ntop
    # spells them the same (RFC 5952) but for IPv6 addresses with an IPv4 tail, where it
    # writes dotted quads ("::ffff:127.0.0.1") and ipaddress on 3.11 does not
    # ("::ffff:7f00:1"); those go through ipaddress, which is slow to load and to call.
    # Every distinct address is converted once.
    text = _ADDR_CACHE.get(raw)
    if text is None:
        text = socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
        if len(raw) == 16 and ("." in text or not _NTOP6):
            import ipaddress

            text = str(ipaddress.ip_address(raw))
        if len(_ADDR_CACHE) > 65536:
            _ADDR_CACHE.clear()
        _ADDR_CACHE[raw] = text
    return text


# sock_diag -----------------------------------------------------------------------------

NETLINK_SOCK_DIAG = 4
TCPDIAG_GETSOCK = 18  # the original inet_diag request: TCP of both families in one walk
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
# inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (zeros).
_REQ = struct.Struct("=BBBxI48x")
# inet_diag_req (TCPDIAG_GETSOCK): family, src_len, dst_len, ext, sockid, states, dbs.
_REQ_V1 = struct.Struct("=B3x48xI4x")
# inet_diag_msg: family, state, timer, retrans; sockid: sport, dport (big endian),
# src[16], dst[16], if, cookie[2]; then expires, rqueue, wqueue, uid, inode.
# Header and message are unpacked in one go; if, cookie and the queues are skipped.
_FULL = struct.Struct("=IH10xBB2xHH16s16s4x8xI8xII")


INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_S_GE = 2
INET_DIAG_BC_S_LE = 3
_BC_OP = struct.Struct("=BBH")  # inet_diag_bc_op: code, yes, no (jumps, in bytes)
_RTATTR = struct.Struct("=HH")


def sport_filter(port: int) -> bytes:
    """The request attribute that makes the kernel dump only sockets with this local port
    (as `ss sport = :P`): bytecode for "sport >= P and sport <= P".

    Each test jumps `yes` bytes on, to the next test or to the end (accept), or `no`
    bytes, to 4 past the end (reject); the port rides in the `no` field of the op after it.
    """
    ops = (_BC_OP.pack(INET_DIAG_BC_S_GE, 8, 20) + _BC_OP.pack(0, 0, port)
           + _BC_OP.pack(INET_DIAG_BC_S_LE, 8, 12) + _BC_OP.pack(0, 0, port))
    return _RTATTR.pack(_RTATTR.size + len(ops), INET_DIAG_REQ_BYTECODE) + ops


def _request(sock: socket.socket, family: int, proto: int, states: int, seq: int,
             attrs: bytes = b"") -> None:
    if proto == TCP_BOTH:
        req, mtype = _REQ_V1.pack(socket.AF_UNSPEC, states) + attrs, TCPDIAG_GETSOCK
    else:
        req, mtype = _REQ.pack(family, proto, 0, states) + attrs, SOCK_DIAG_BY_FAMILY
    hdr = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), mtype, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(hdr + req)


# The kernel keeps IPv4 and IPv6 TCP sockets in one table, and a dump per family walks all
# of it (~1.1 ms for an empty one here: half an idle sample's cost). The original request
# (TCPDIAG_GETSOCK, family AF_UNSPEC) walks it once for both; a kernel that refuses it gets
# the two dumps by family, from then on.
TCP_BOTH = -1
_one_tcp_walk = [True]


def _receive(sock: socket.socket, seq: int) -> list[tuple[bytes, float]]:
    """Datagrams up to the one that seems to end the dump, each with the monotonic time
    it came (its timers count from then); the parse checks the end properly.

    Received first and parsed after: the kernel walks its socket tables as we read, and
    a slow reader lets sockets that close meanwhile shift the walk past live ones.
    """
    chunks: list[tuple[bytes, float]] = []
    clock = time.monotonic
    while True:
        # The kernel fills dump datagrams up to ~32 KB: a bigger buffer is only slower.
        data = sock.recv(1 << 16)
        if not data:
            raise KernelUnavailable(errno.EIO, "sock_diag: empty reply")
        chunks.append((data, clock()))
        if len(data) >= 20:
            # NLMSG_DONE (20 bytes, our sequence number) closes the last datagram; an
            # error comes alone.
            length, mtype, _, mseq, _ = _NLMSGHDR.unpack_from(data, len(data) - 20)
            if length == 20 and mtype == NLMSG_DONE and mseq == seq:
                return chunks
            if _NLMSGHDR.unpack_from(data)[1] == NLMSG_ERROR:
                return chunks


class ParseCache:
    """The sockets of the last dump by their raw messages, so that a dashboard's next
    sample parses only the sockets that changed: an unchanged message, byte for byte,
    is the same socket (the kernel's cookie in it is never reused). A TIME_WAIT socket
    is keyed without its timer and carries its deadline, so an unchanged one is the same
    object too; its timer is still read every sample, as a segment re-arms it.

    One per sampler: `begin()` before a dump, `end()` once it was read whole; each dump
    keeps only its own sockets. `keys` has each socket's key, in the dump's order (None
    for one that is not kept), so that the sampler can file its own copy of a socket
    (with holders) in place of the kernel's: one copy each stays in memory, not two."""

    def __init__(self) -> None:
        self.last: dict[bytes, Socket] = {}
        self.now: dict[bytes, Socket] = {}
        self.keys: list[bytes | None] = []

    def begin(self) -> None:
        self.now, self.keys = {}, []

    def end(self) -> None:
        self.last, self.now = self.now, {}

    def replace(self, key: bytes | None, sock: Socket) -> None:
        """The next dump gives `sock` for this key (the same socket, more filled in)."""
        if key is not None:
            self.last[key] = sock


_HEAD = struct.Struct("=IH")  # a message's length and type
# A socket message's length, type, state and timer (expires, in ms).
_HEAD_TIMER = struct.Struct("=IH11xB50xI")
_BODY, _TIMER, _TAIL = 16, 68, 88  # offsets in a socket message (see _FULL)
# A deadline read again within this many seconds of the one known is the same: it is
# computed from a timer in ms and the moment its datagram came (a dump of 100k sockets
# takes ~40 ms). A TIME_WAIT timer re-armed by a late segment moves by seconds.
_SLACK = 0.25


def _parse_cached(data: bytes, proto: str, out: list[Socket], cache: ParseCache,
                  base: float = 0.0) -> bool:
    """_parse_chunk, taking each unchanged socket from the last dump."""
    keys = cache.keys
    if not cache.last:  # the first dump: nothing to take, so the fastest parse, then keys
        start = len(out)
        done = _parse_chunk(data, proto, out, base)
        _remember(data, proto, out, start, cache)
        return done
    # Taken out of the last dump as found: its keys are freed as the new ones are made.
    # The hot loop of a dashboard at 50k sockets: one unpack per message, locals only.
    head, get, now = _HEAD_TIMER.unpack_from, cache.last.pop, cache.now
    append, add = out.append, keys.append
    tw = -1 if proto == "udp" else STATE_NUMBERS["TIME_WAIT"]
    slack, low = _SLACK, -_SLACK
    offset, end = 0, len(data) - _FULL.size
    while offset <= end:
        length, mtype, state, ms = head(data, offset)
        if length < 16 or (mtype != SOCK_DIAG_BY_FAMILY and mtype != TCPDIAG_GETSOCK):
            break  # the end of the dump or an error: read below, as _parse_chunk does
        if state == tw:
            # Most sockets of a busy machine: kept whole unless its timer was re-armed.
            key = data[offset + _BODY:offset + _TIMER]
            sock = get(key, None)
            if sock is None or not low < base + ms / 1000.0 - sock[12] < slack:
                sock = _parse_one(data, offset, length, proto, base)
        else:
            key = data[offset + _BODY:offset + _TAIL]
            sock = get(key, None)
            if sock is None:
                sock = _parse_one(data, offset, length, proto, base)
        now[key] = sock
        append(sock)
        add(key)
        offset += (length + 3) & ~3
    done = offset < len(data) and _parse_chunk(data[offset:], proto, out, base)
    keys.extend([None] * (len(out) - len(keys)))  # sockets after a control message
    return done


def _parse_one(data: bytes, offset: int, length: int, proto: str, base: float) -> Socket:
    """The socket of the message at `offset` (a new one, or one that changed)."""
    one: list[Socket] = []
    _parse_chunk(data[offset:offset + max((length + 3) & ~3, _FULL.size)], proto, one, base)
    return one[0]


def _remember(data: bytes, proto: str, out: list[Socket], start: int,
              cache: ParseCache) -> None:
    """File the sockets _parse_chunk appended to `out` from `start` under their keys."""
    head, now, keys = _HEAD.unpack_from, cache.now, cache.keys
    tw = -1 if proto == "udp" else STATE_NUMBERS["TIME_WAIT"]
    offset, end, i = 0, len(data) - _FULL.size, start
    while offset <= end and i < len(out):
        length, mtype = head(data, offset)
        if length < 16 or (mtype != SOCK_DIAG_BY_FAMILY and mtype != TCPDIAG_GETSOCK):
            break
        timed = data[offset + _BODY + 1] == tw
        key = data[offset + _BODY:offset + (_TIMER if timed else _TAIL)]
        now[key] = out[i]
        keys.append(key)
        offset += (length + 3) & ~3
        i += 1
    keys.extend([None] * (len(out) - len(keys)))


def _read_dump(sock: socket.socket, seq: int, proto: str, out: list[Socket],
               cache: ParseCache | None = None) -> None:
    while not any(_parse_chunk(c, proto, out, at) if cache is None else
                  _parse_cached(c, proto, out, cache, at) for c, at in _receive(sock, seq)):
        pass  # a tail that only looked like the end: receive on


def _control(data: bytes, offset: int, mtype: int) -> bool:
    """A message that is not a socket: True for the dump's end; raises for an error."""
    if mtype == NLMSG_DONE:
        return True
    if mtype == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", data, offset + 16)
        if err:
            raise _unavailable(OSError(-err, os.strerror(-err)), "sock_diag")
    return False


def read_sock_diag(tcp_states: int, udp: bool = True, sport: int | None = None,
                   cache: ParseCache | None = None) -> list[Socket]:
    """Dump TCP sockets in the given state bitmask (and every UDP socket) via netlink;
    with `sport`, only those on that local port (the kernel filters: nothing else is
    sent, however many sockets the machine has). With `cache` (the same one every
    sample), only sockets that changed since its last dump are parsed."""
    try:
        nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except AttributeError:
        raise KernelUnavailable(errno.EAFNOSUPPORT, "sock_diag: no netlink here") from None
    except OSError as exc:
        raise _unavailable(exc, "sock_diag") from None
    out: list[Socket] = []
    if cache is not None:
        cache.begin()
    try:
        nl.bind((0, 0))
        seq = 1
        queries = [(socket.IPPROTO_TCP, tcp_states)]
        if udp:
            queries.append((socket.IPPROTO_UDP, 0xFFF))
        attrs = sport_filter(sport) if sport is not None else b""
        for proto, states in queries:
            pname = "tcp" if proto == socket.IPPROTO_TCP else "udp"
            if pname == "tcp" and _one_tcp_walk[0]:
                start = len(out)
                seq += 1
                _request(nl, socket.AF_UNSPEC, TCP_BOTH, states, seq, attrs)
                try:
                    _read_dump(nl, seq, pname, out, cache)
                    continue
                except KernelUnavailable as exc:
                    if exc.errno in TRANSIENT:
                        raise
                    _one_tcp_walk[0] = False
                    del out[start:]  # nothing of a refused dump is kept
                    if cache is not None:
                        del cache.keys[start:]
            for family in (socket.AF_INET, socket.AF_INET6):
                seq += 1
                _request(nl, family, proto, states, seq, attrs)
                _read_dump(nl, seq, pname, out, cache)
    except OSError as exc:
        if isinstance(exc, KernelUnavailable):
            raise
        raise _unavailable(exc, "sock_diag") from None
    finally:
        nl.close()
    if cache is not None:
        cache.end()
    return out


def _addr_of(raw: bytes, v4: bool) -> str:
    """Slow path of the address caches below."""
    text = _addr(raw[:4] if v4 else raw)
    cache = _ADDR4 if v4 else _ADDR6
    if len(cache) > 65536:
        cache.clear()
    cache[raw] = text
    return text


_ADDR4: dict[bytes, str] = {}  # keyed by the whole 16-byte field: no slicing per socket
_ADDR6: dict[bytes, str] = {}
# Ports arrive in network byte order: unpacked as native shorts they need a byte swap.
_LITTLE = sys.byteorder == "little"


def _parse_chunk(data: bytes, proto: str, out: list[Socket], base: float = 0.0) -> bool:
    """Append the datagram's sockets to `out`; True once the dump's end is in it. `base`:
    the monotonic time the datagram came, which its timers count from."""
    # The hot loop at 50k sockets: one unpack per message, locals only, cached addresses,
    # tuples built directly (a NamedTuple's constructor costs twice as much).
    unpack = _FULL.unpack_from
    new = tuple.__new__
    append = out.append
    states = TCP_STATE_NAMES
    little = _LITTLE
    a4, a6 = _ADDR4.get, _ADDR6.get
    is_udp = proto == "udp"
    tw = -1 if is_udp else STATE_NUMBERS["TIME_WAIT"]
    fw2 = -1 if is_udp else FIN_WAIT2
    v4 = socket.AF_INET
    offset = 0
    end = len(data) - _FULL.size
    while offset <= end:
        (length, mtype, fam, st, sp, dp, src, dst,
         expires, uid, inode) = unpack(data, offset)
        if length < 16:
            break
        if mtype != SOCK_DIAG_BY_FAMILY and mtype != TCPDIAG_GETSOCK:
            if _control(data, offset, mtype):
                return True
            offset += (length + 3) & ~3
            continue
        offset += (length + 3) & ~3
        if fam == v4:
            family, unspecified = "ipv4", "0.0.0.0"
            la = a4(src) or _addr_of(src, True)
            ra = a4(dst) or _addr_of(dst, True)
        else:
            family, unspecified = "ipv6", "::"
            la = a6(src) or _addr_of(src, False)
            ra = a6(dst) or _addr_of(dst, False)
        if little:
            sp = ((sp & 0xFF) << 8) | (sp >> 8)
            dp = ((dp & 0xFF) << 8) | (dp >> 8)
        rport = dp
        if st == tw:  # most sockets of a busy machine: the shortest way through
            append(new(Socket, (proto, family, la, sp, ra, rport, "TIME_WAIT",
                                0, None, (), None, None, base + expires / 1000.0, True)))
            continue
        state = "NONE" if is_udp else states.get(st, "CLOSE")
        if rport == 0 and ra == unspecified:
            append(new(Socket, (proto, family, la, sp, None, None, state,
                                inode, uid, (), None, None, None, False)))
        elif st == fw2 and not inode:
            # An orphaned FIN_WAIT2 (its process closed it) lives on a timer, like TIME_WAIT.
            append(new(Socket, (proto, family, la, sp, ra, rport, state,
                                0, None, (), None, None, base + expires / 1000.0, True)))
        else:
            append(new(Socket, (proto, family, la, sp, ra, rport, state,
                                inode, uid, (), None, None, None, False)))
    # Messages shorter than a socket's (the end of the dump, an error) close a datagram.
    while offset + 16 <= len(data):
        length, mtype, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if _control(data, offset, mtype):
            return True
        if length < 16:
            break
        offset += (length + 3) & ~3
    return False


# /proc/net -----------------------------------------------------------------------------

_HZ = 100  # /proc/net/tcp prints timers in USER_HZ-like ticks: 1/100 s


def _proc_addr(hexaddr: str, v6: bool) -> str:
    raw = bytes.fromhex(hexaddr)
    # The kernel prints each 32-bit word in host (little endian) order.
    fixed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return _addr(fixed if v6 else fixed[:4])


def read_proc_net(tcp_states: int, udp: bool = True, root: str = "/proc") -> list[Socket]:
    """Read /proc/net/{tcp,tcp6,udp,udp6}: slower than sock_diag but always there on Linux."""
    files: list[tuple[Proto, str, bool]] = [("tcp", "tcp", False), ("tcp", "tcp6", True)]
    if udp:
        files += [("udp", "udp", False), ("udp", "udp6", True)]
    out: list[Socket] = []
    found = False
    error: OSError | None = None
    now = time.monotonic()
    for proto, name, v6 in files:
        try:
            with open(f"{root}/net/{name}", encoding="ascii") as fh:
                lines = fh.readlines()[1:]
        except OSError as exc:
            error = error or exc
            continue
        found = True
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            st = int(f[3], 16)
            if proto == "tcp" and not tcp_states & (1 << st):
                continue
            laddr_hex, lport_hex = f[1].split(":")
            raddr_hex, rport_hex = f[2].split(":")
            la = _proc_addr(laddr_hex, v6)
            ra = _proc_addr(raddr_hex, v6)
            rport = int(rport_hex, 16)
            state: State = "NONE" if proto == "udp" else TCP_STATE_NAMES.get(st, "CLOSE")
            unspecified = "::" if v6 else "0.0.0.0"
            raddr: str | None = ra
            rp: int | None = rport
            if rport == 0 and ra == unspecified:
                raddr, rp = None, None
            family: Family = "ipv6" if v6 else "ipv4"
            lport = int(lport_hex, 16)
            inode = int(f[9])
            if state == "TIME_WAIT" or (st == FIN_WAIT2 and not inode):
                when = int(f[5].split(":")[1], 16)
                out.append(Socket(proto, family, la, lport, raddr, rp, state,
                                  ends=now + when / _HZ, time_left_exact=True))
            else:
                out.append(Socket(proto, family, la, lport, raddr, rp, state, inode,
                                  int(f[7])))
    if not found:
        if error is not None and error.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise _unavailable(error, f"{root}/net")
        raise KernelUnavailable(errno.ENOENT, f"no socket tables under {root}/net (is {root} "
                                "mounted?)")
    return out


def check_available(root: str = "/proc") -> None:
    """Raise KernelUnavailable, saying why, when neither reader can work here (checked
    cheaply: a netlink socket can be made, or /proc/net has a socket table)."""
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG).close()
        return
    except (OSError, AttributeError) as exc:
        netlink = _unavailable(exc, "sock_diag") if isinstance(exc, OSError) else exc
    if any(os.path.exists(f"{root}/net/{name}") for name in ("tcp", "tcp6", "udp", "udp6")):
        return
    raise KernelUnavailable(errno.ENOENT, f"{netlink}; and no socket tables under {root}/net "
                            f"(is {root} mounted?)")


LISTEN_MASK = 1 << STATE_NUMBERS["LISTEN"]


def state_mask(all_states: bool) -> int:
    """The TCP state bitmask for the default view (LISTEN + TIME_WAIT) or every state."""
    if all_states:
        return ALL_TCP_STATES
    return (1 << STATE_NUMBERS["LISTEN"]) | (1 << STATE_NUMBERS["TIME_WAIT"])
