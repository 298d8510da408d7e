"""The Linux readers against real loopback sockets: sock_diag and /proc/net must agree."""

from __future__ import annotations

import _socket
import ipaddress
import os
import socket
import struct
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Spawner, make_time_wait, wait_for
from portside.model import Socket
from portside.system import holders, kernel
from portside.system.holders import FdScan, HolderIndex, scan_holders

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _mine(rows: list[Socket], port: int) -> list[Socket]:
    return sorted((r for r in rows if r.lport == port or r.rport == port), key=repr)


def test_both_readers_see_listeners_udp_and_time_wait(spawn: Spawner) -> None:
    tcp = spawn("--host", "127.0.0.1")
    tcp6 = spawn("--host", "::1")
    udp = spawn("--udp")
    tw_port = make_time_wait(3)
    mask = kernel.state_mask(all_states=False)
    diag = kernel.read_sock_diag(mask)
    proc = kernel.read_proc_net(mask)
    for held, family, proto, state, addr in (
        (tcp, "ipv4", "tcp", "LISTEN", "127.0.0.1"),
        (tcp6, "ipv6", "tcp", "LISTEN", "::1"),
        (udp, "ipv4", "udp", "NONE", "127.0.0.1"),
    ):
        d = _mine(diag, held.port)
        assert len(d) == 1, d
        assert (d[0].family, d[0].proto, d[0].state, d[0].laddr) == (family, proto, state, addr)
        assert d[0].inode > 0 and d[0].raddr is None and d[0].rport is None
        p = _mine(proc, held.port)
        assert [r._replace(ends=None) for r in p] == [r._replace(ends=None) for r in d]
    tws = [r for r in diag if r.lport == tw_port and r.state == "TIME_WAIT"]
    assert len(tws) == 3
    now = time.monotonic()
    for r in tws:
        assert r.inode == 0 and r.raddr == "127.0.0.1" and r.rport
        left = r.time_left(now)
        assert left is not None and 55.0 < left <= 60.0
    ptws = [r for r in proc if r.lport == tw_port and r.state == "TIME_WAIT"]
    assert sorted(r.rport or 0 for r in ptws) == sorted(r.rport or 0 for r in tws)
    for a, b in zip(sorted(tws, key=repr), sorted(ptws, key=repr), strict=True):
        assert a.ends is not None and b.ends is not None
        assert abs(a.ends - b.ends) < 0.1  # deadlines: ms against 1/100 s


def test_all_states_includes_established() -> None:
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        port = lsn.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as cli:
            srv, _ = lsn.accept()
            with srv:
                rows = kernel.read_sock_diag(kernel.state_mask(all_states=True))
                est = [r for r in rows if r.state == "ESTABLISHED" and port in (r.lport, r.rport)]
                assert len(est) == 2
                assert {(r.lport == port) for r in est} == {True, False}
                default = kernel.read_sock_diag(kernel.state_mask(all_states=False))
                assert not [r for r in default if r.state == "ESTABLISHED"]
                cport = cli.getsockname()[1]
                assert any(r.lport == cport and r.rport == port for r in est)


def test_holders_include_a_forked_child_and_follow_a_parent_closing(spawn: Spawner) -> None:
    both = spawn("--fork")
    handed = spawn("--fork", "--close-in-parent")
    rows = kernel.read_sock_diag(kernel.state_mask(False))
    inode = {r.lport: r.inode for r in rows if r.state == "LISTEN"}
    owners = scan_holders(inode.values())
    assert owners[inode[both.port]] == both.pids
    assert owners[inode[handed.port]] == [handed.child]
    index = HolderIndex()
    cached = index.update(inode.values())
    assert cached[inode[both.port]] == tuple(both.pids)
    # A socket the first scan found nobody holding (this machine may have one held by a
    # process we cannot read) is looked for once more, then settled.
    index.update(inode.values())
    scans = index.full_scans
    # Nothing new: the next update must not read every process again.
    index.update(inode.values())
    assert index.full_scans == scans


def test_forked_fd_scan_agrees_with_reading_in_process(spawn: Spawner,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    held = spawn("--fork")
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen(1)
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        inline = FdScan("/proc", pids, workers=0).result()
        forked = FdScan("/proc", pids, workers=2)
        assert len(forked._jobs) == 2  # two children really ran
        result = forked.result()
        ino = os.fstat(mine.fileno()).st_ino
        assert ino in result[os.getpid()].values()  # type: ignore[union-attr]
        for pid in held.pids:
            assert result[pid] == inline[pid] and result[pid]
        # Processes may come and go between the two scans; the ones that stay agree.
        same = [p for p in pids if result.get(p) == inline.get(p)]
        assert len(same) >= len(pids) - 5
        # More pids than the queue's pipe holds: the caller reads the rest.
        many = pids + list(range(10**7, 10**7 + 40000))
        assert FdScan("/proc", many, workers=2).result()[held.pid] == inline[held.pid]
        # The index's first full scan, started before the sockets are read.
        index = HolderIndex()
        index.prepare()
        assert index._prepared is not None
        assert index.update([ino])[ino] == (os.getpid(),) and index.full_scans == 1
        assert index._prepared is None
        # A child that fails is made up for: its processes are read in the parent.
        monkeypatch.setattr(holders, "_encode", lambda fds: 1 / 0)
        broken = FdScan("/proc", pids, workers=2)
        assert len(broken._jobs) == 2
        again = broken.result()
        assert ino in again[os.getpid()].values()
        assert all(again[p] == inline[p] for p in held.pids)


def test_an_fd_scan_forks_only_in_a_single_threaded_process() -> None:
    # A fork copies one thread: a lock another thread holds would stay locked in the child.
    code = ("import os, threading; from portside.system.holders import FdScan\n"
            "def jobs():\n"
            "    scan = FdScan('/proc', [os.getpid()]); n = len(scan._jobs); scan.result()\n"
            "    return n\n"
            "alone = jobs(); ev = threading.Event(); t = threading.Thread(target=ev.wait)\n"
            "t.start(); threaded = jobs(); ev.set(); t.join()\n"
            "print(alone, threaded, jobs())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    workers = min(3, (os.cpu_count() or 1) - 1)
    assert res.stdout.split() == [str(workers), "0", str(workers)]


def test_holder_index_rescans_when_a_new_socket_appears(spawn: Spawner) -> None:
    # Only our own sockets are asked about: another process on the machine opening one
    # meanwhile must not make a full scan that this test does not expect.
    def inodes(*ports: int) -> dict[int, int]:
        rows = kernel.read_sock_diag(kernel.state_mask(False))
        return {r.lport: r.inode for r in rows if r.lport in ports and r.state == "LISTEN"}

    index = HolderIndex()
    first = spawn()
    index.update(inodes(first.port).values())
    scans = index.full_scans
    second = spawn()
    by_port = inodes(first.port, second.port)
    owners = index.update(by_port.values())
    assert owners[by_port[second.port]] == (second.pid,)
    assert owners[by_port[first.port]] == (first.pid,)
    # The new socket came with a new process: reading that process was enough.
    assert index.full_scans == scans
    # An existing process opening a socket needs the full scan.
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen(1)
        port = mine.getsockname()[1]
        ino = inodes(port)[port]
        assert index.update([*by_port.values(), ino])[ino] == (os.getpid(),)
        assert index.full_scans == scans + 1


def test_holder_index_forgets_a_holder_that_exits(spawn: Spawner) -> None:
    held = spawn("--fork")
    index = HolderIndex()
    rows = kernel.read_sock_diag(kernel.state_mask(False))
    ino = next(r.inode for r in rows if r.lport == held.port and r.state == "LISTEN")
    assert index.update([ino])[ino] == tuple(held.pids)
    held.proc.kill()
    held.proc.wait(10)
    # The parent is reaped; only the child holds the socket now.
    assert wait_for(lambda: index.update([ino]).get(ino) == (held.child,))


def test_proc_net_reader_reports_missing_tables(tmp_path: object) -> None:
    with pytest.raises(kernel.KernelUnavailable):
        kernel.read_proc_net(kernel.state_mask(False), root=str(tmp_path))


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(min_size=4, max_size=4),
    # IPv6 with runs of zero groups (what the spelling compresses), and the IPv4-mapped
    # and IPv4-compatible forms that inet_ntop writes with a dotted tail.
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x7F00, 0xABC]), min_size=8, max_size=8)
    .map(lambda groups: struct.pack("!8H", *groups)),
    st.binary(min_size=4, max_size=4).map(lambda v4: bytes(10) + b"\xff\xff" + v4),
    st.binary(min_size=4, max_size=4).map(lambda v4: bytes(12) + v4),
    st.binary(min_size=16, max_size=16)))
def test_addresses_are_spelled_as_ipaddress_spells_them(raw: bytes) -> None:
    kernel._ADDR_CACHE.clear()
    assert kernel._addr(raw) == str(ipaddress.ip_address(raw))


def test_ipv6_is_spelled_by_ipaddress_where_inet_ntop_is_not_glibcs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert kernel._NTOP6  # glibc here: the test above went through its inet_ntop
    real = _socket.inet_ntop  # what kernel.py calls: the C module under `socket`

    def musl(family: int, raw: bytes) -> str:  # shortens a single zero group, as musl's does
        text = real(family, raw)
        return text.replace(":0:", "::", 1) if family == socket.AF_INET6 else text

    monkeypatch.setattr(_socket, "inet_ntop", musl)
    monkeypatch.setattr(kernel, "_NTOP6", False)
    monkeypatch.setattr(kernel, "_ADDR_CACHE", {})
    assert kernel._addr(struct.pack("!8H", 1, 0, 1, 1, 1, 1, 1, 1)) == "1:0:1:1:1:1:1:1"
    assert kernel._addr(bytes([127, 0, 0, 1])) == "127.0.0.1"


def test_the_end_of_a_dump_is_found_alone_or_after_sockets() -> None:
    import struct

    def sock_msg(port: int) -> bytes:
        src = bytes([127, 0, 0, 1]) + bytes(12)
        return kernel._FULL.pack(kernel._FULL.size, kernel.SOCK_DIAG_BY_FAMILY,
                                 socket.AF_INET, 10, socket.htons(port), 0, src, bytes(16),
                                 0, 0, 1234)

    done = struct.pack("=IHHIIi", 20, kernel.NLMSG_DONE, 2, 1, 0, 0)
    out: list[Socket] = []
    assert kernel._parse_chunk(sock_msg(8080), "tcp", out) is False
    assert kernel._parse_chunk(done, "tcp", out) is True  # the end in its own datagram
    assert kernel._parse_chunk(sock_msg(8081) + sock_msg(8082) + done, "tcp", out) is True
    assert [(s.lport, s.state, s.inode) for s in out] == [
        (8080, "LISTEN", 1234), (8081, "LISTEN", 1234), (8082, "LISTEN", 1234)]
    ack = struct.pack("=IHHIIi", 36, kernel.NLMSG_ERROR, 0, 1, 0, 0) + bytes(16)
    assert kernel._parse_chunk(ack + sock_msg(1) + done, "tcp", out) is True  # err 0: an ack
    error = struct.pack("=IHHIIi", 36, kernel.NLMSG_ERROR, 0, 1, 0, -1) + bytes(16)
    with pytest.raises(kernel.KernelUnavailable, match="not permitted"):
        kernel._parse_chunk(error, "tcp", out)

    class Datagrams:
        def __init__(self, *data: bytes) -> None:
            self.data = list(data)

        def recv(self, size: int) -> bytes:
            return self.data.pop(0)

    # A socket whose last 20 bytes read like the end of dump 7 (timer 20, queues 3 and 7,
    # flags 2 in the queue's high half): received as the end, then found not to be.
    lookalike = kernel._FULL.pack(kernel._FULL.size, kernel.SOCK_DIAG_BY_FAMILY,
                                  socket.AF_INET, 1, socket.htons(9000), socket.htons(5),
                                  bytes(16), bytes(16), 20, 0, 0)[:-20] + struct.pack(
                                      "=IHHIIi", 20, kernel.NLMSG_DONE, 2, 7, 0, 0)
    feed = Datagrams(sock_msg(1), lookalike, sock_msg(2) + done.replace(
        struct.pack("=I", 1), struct.pack("=I", 7), 1))
    got: list[Socket] = []
    kernel._read_dump(feed, 7, "tcp", got)  # type: ignore[arg-type]
    assert [s.lport for s in got] == [1, 9000, 2] and not feed.data


def test_a_port_check_asks_the_kernel_for_that_port_only(spawn: Spawner) -> None:
    from portside.backend import PortHolders
    from portside.system.sampler import Sampler

    held = spawn("--fork")
    udp = spawn("--udp")
    other = spawn()
    tw = make_time_wait(3)
    mine = kernel.read_sock_diag(kernel.LISTEN_MASK, sport=held.port)
    assert mine and {s.lport for s in mine} == {held.port}  # filtered by the kernel
    assert {s.lport for s in kernel.read_sock_diag(kernel.LISTEN_MASK, sport=udp.port)
            if s.proto == "udp"} == {udp.port}
    assert kernel.read_sock_diag(kernel.state_mask(True), sport=tw)  # TIME_WAIT too
    for reader in ("sock_diag", "procfs"):
        sampler = Sampler(reader=reader)
        full = sampler.sample()
        one = sampler.sample_port(held.port)
        assert {s.lport for s in one.sockets} == {held.port}
        assert PortHolders.of(held.port, one).pids == PortHolders.of(held.port, full).pids \
            == tuple(held.pids)
        assert PortHolders.of(other.port, sampler.sample_port(other.port)).pids == (other.pid,)
        assert sampler.sample_port(tw).sockets == ()  # TIME_WAIT does not hold a port
        # The sampler is left as it was: the next sample is a whole one again.
        assert {s.lport for s in sampler.sample().sockets} >= {held.port, other.port, tw}


def test_one_tcp_walk_for_both_families_or_two_when_refused(
        spawn: Spawner, monkeypatch: pytest.MonkeyPatch) -> None:
    # TCPDIAG_GETSOCK with AF_UNSPEC walks the TCP table once for IPv4 and IPv6: the same
    # sockets as a dump per family, in half the kernel's time.
    v4, v6 = spawn("--host", "127.0.0.1"), spawn("--host", "::1")
    tw = make_time_wait(3)
    ports = {v4.port, v6.port, tw}
    mask = kernel.state_mask(all_states=True)

    def mine(rows: list[Socket]) -> list[tuple[object, ...]]:
        # Not the TIME_WAIT timers: they run on between two dumps.
        return sorted((s.proto, s.family, s.laddr, s.lport, s.raddr, s.rport, s.state,
                       s.inode) for s in rows if s.lport in ports or s.rport in ports)

    assert kernel._one_tcp_walk == [True]
    sent: list[int] = []
    real = kernel._request

    def spy(sock: socket.socket, family: int, proto: int, *rest: object) -> None:
        sent.append(proto)
        real(sock, family, proto, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel, "_request", spy)
    once = kernel.read_sock_diag(mask)
    assert sent == [kernel.TCP_BOTH, socket.IPPROTO_UDP, socket.IPPROTO_UDP]
    one_port = kernel.read_sock_diag(kernel.LISTEN_MASK, sport=v6.port)
    assert {(s.family, s.lport) for s in one_port if s.proto == "tcp"} == {("ipv6", v6.port)}
    # A kernel without the old request (here: a type it does not know) says EINVAL.
    monkeypatch.setattr(kernel, "TCPDIAG_GETSOCK", 99)
    monkeypatch.setattr(kernel, "_one_tcp_walk", [True])
    sent.clear()
    twice = kernel.read_sock_diag(mask)
    assert kernel._one_tcp_walk == [False]
    assert sent == [kernel.TCP_BOTH, socket.IPPROTO_TCP, socket.IPPROTO_TCP,
                    socket.IPPROTO_UDP, socket.IPPROTO_UDP]
    assert mine(once) == mine(twice) and len(mine(once)) == 2 + 3  # 2 listeners, 3 TW
    assert len([s for s in twice if s.lport == v4.port]) == 1  # nothing of the refusal kept


def _fields(rows: list[Socket], ports: set[int]) -> list[str]:
    """Everything but the timers (they run on between two dumps), for these ports."""
    return sorted(repr((s.proto, s.family, s.laddr, s.lport, s.raddr, s.rport, s.state,
                        s.inode, s.uid, s.time_left_exact)) for s in rows
                  if s.lport in ports or s.rport in ports)


def test_a_cached_dump_parses_only_what_changed(
        spawn: Spawner) -> None:
    v4, v6, udp = spawn("--host", "127.0.0.1"), spawn("--host", "::1"), spawn("--udp")
    tw = make_time_wait(2)
    mask = kernel.ALL_TCP_STATES
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        port = lsn.getsockname()[1]
        cli = socket.create_connection(("127.0.0.1", port))
        srv, _ = lsn.accept()
        ports = {v4.port, v6.port, udp.port, tw, port}
        cache = kernel.ParseCache()
        first = kernel.read_sock_diag(mask, cache=cache)
        assert _fields(first, ports) == _fields(kernel.read_sock_diag(mask), ports)
        assert len([s for s in first if s.lport == port or s.rport == port]) == 3
        again = kernel.read_sock_diag(mask, cache=cache)
        assert _fields(again, ports) == _fields(first, ports)
        # What did not change is the very same socket: nothing of it was parsed again.
        before = {(s.proto, s.lport, s.rport, s.inode): s for s in first}
        same = [s for s in again if (s.lport in ports or s.rport in ports)
                and s.state != "TIME_WAIT"]
        assert len(same) == 6 and all(before[(s.proto, s.lport, s.rport, s.inode)] is s
                                      for s in same)
        # The same connections in new states (their kernel cookies unchanged): the server
        # end closes first and goes to FIN_WAIT2, the client's end to CLOSE_WAIT, then
        # TIME_WAIT once the client closes too.
        srv.close()
        # Both ends settled: the server's FIN acknowledged (FIN_WAIT1 -> FIN_WAIT2).
        wait_for(lambda: {(s.rport == port, s.state) for s in kernel.read_sock_diag(mask)
                          if s.rport == port or (s.lport == port and s.rport)}
                 == {(True, "CLOSE_WAIT"), (False, "FIN_WAIT2")})
        closing = kernel.read_sock_diag(mask, cache=cache)
        assert _fields(closing, ports) == _fields(kernel.read_sock_diag(mask), ports)
        assert {s.state for s in closing if s.lport == port and s.rport} == {"FIN_WAIT2"}
        assert cli.recv(1) == b""
        cli.close()
    ended = kernel.read_sock_diag(mask, cache=cache)
    assert _fields(ended, ports) == _fields(kernel.read_sock_diag(mask), ports)
    assert {s.state for s in ended if s.lport == port} == {"TIME_WAIT"}
    # A TIME_WAIT socket runs down to a deadline: the same socket from dump to dump
    # while its timer runs, and the deadline an uncached dump reads.
    timers = {s.rport: s for s in first if s.lport == tw}
    assert len(timers) == 2
    wait_for(lambda: all((s.time_left(time.monotonic()) or 0) < 59.0 for s in timers.values()))
    later = {s.rport: s for s in kernel.read_sock_diag(mask, cache=cache) if s.lport == tw}
    uncached = {s.rport: s.ends for s in kernel.read_sock_diag(mask) if s.lport == tw}
    assert later.keys() == timers.keys() == uncached.keys()
    for p, s in later.items():
        assert s is timers[p] and s.ends is not None
        assert abs(s.ends - (uncached[p] or 0)) < kernel._SLACK


def _stray_ack(src_port: int, dst_port: int) -> None:
    """An out-of-window ACK from 127.0.0.1:src_port to 127.0.0.1:dst_port, sent raw: a
    TIME_WAIT socket that gets it re-arms its timer to the whole 60 s (Linux's
    tcp_timewait_state_process), as a peer's late segment does."""
    ip = socket.inet_aton("127.0.0.1")
    head = struct.pack("!HHIIBBHHH", src_port, dst_port, 12345, 67890, 5 << 4, 0x10,
                       1024, 0, 0)
    data = ip + ip + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(head)) + head
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    head = head[:16] + struct.pack("!H", ~total & 0xFFFF) + head[18:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
        raw.sendto(head, ("127.0.0.1", 0))


def _re_armed_timer_is_read() -> None:
    """Run in a network namespace of its own (below): a TIME_WAIT socket, its timer
    re-armed by a stray ACK, read through a parse cache."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Else the reply to our ACK (a reset, as nothing holds the port the ACK came from)
    # would end the TIME_WAIT socket (RFC 1337): this namespace's setting only.
    with open("/proc/sys/net/ipv4/tcp_rfc1337", "w") as fh:
        fh.write("1")
    port = make_time_wait(1)
    mask = kernel.state_mask(all_states=False)
    cache = kernel.ParseCache()

    def mine(rows: list[Socket]) -> Socket:
        (found,) = [s for s in rows if s.lport == port and s.state == "TIME_WAIT"]
        return found

    first = mine(kernel.read_sock_diag(mask, cache=cache))
    ends = first.ends
    assert first.rport is not None and ends is not None
    wait_for(lambda: (first.time_left(time.monotonic()) or 60) < 58.5)
    assert mine(kernel.read_sock_diag(mask, cache=cache)) is first  # runs down unchanged
    _stray_ack(first.rport, port)
    # The same message but for its timer: a new deadline, as an uncached dump reads it.
    again = wait_for(lambda: (s := mine(kernel.read_sock_diag(mask, cache=cache))).ends
                     and s.ends > ends + 1.0 and s)
    fresh = mine(kernel.read_sock_diag(mask))
    assert fresh.ends is not None and abs(again.ends - fresh.ends) < kernel._SLACK
    print("re-armed", round(again.ends - ends, 2))


@pytest.mark.skipif(os.geteuid() != 0, reason="a raw socket needs root (CI has it)")
def test_a_cached_dump_reads_a_re_armed_time_wait_timer() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    res = subprocess.run(
        ["unshare", "--net", sys.executable, "-c",
         "import test_kernel; test_kernel._re_armed_timer_is_read()"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [here, os.environ.get("PYTHONPATH", "")])})
    assert res.returncode == 0 and "re-armed" in res.stdout, res.stderr


def test_a_cached_parse_reads_a_changed_message_and_the_end_of_the_dump() -> None:
    import struct

    def sock_msg(port: int, state: int = 10, expires: int = 0, inode: int = 1234) -> bytes:
        src = bytes([127, 0, 0, 1]) + bytes(12)
        return kernel._FULL.pack(kernel._FULL.size, kernel.SOCK_DIAG_BY_FAMILY,
                                 socket.AF_INET, state, socket.htons(port), 0, src,
                                 bytes(16), expires, 0, inode)

    done = struct.pack("=IHHIIi", 20, kernel.NLMSG_DONE, 2, 1, 0, 0)
    cache = kernel.ParseCache()
    cache.begin()
    out: list[Socket] = []
    assert kernel._parse_cached(sock_msg(1) + sock_msg(2, 6, 9000) + done, "tcp", out,
                                cache) is True
    cache.end()
    cache.begin()
    again: list[Socket] = []
    assert kernel._parse_cached(sock_msg(1) + sock_msg(2, 6, 8000) + sock_msg(1, inode=99)
                                + done, "tcp", again, cache) is True
    cache.end()
    assert again[0] is out[0]
    # A timer re-armed (8 s left at base 0: it was 9) is a new deadline.
    assert [(s.lport, s.state, s.inode, s.ends) for s in again] == [
        (1, "LISTEN", 1234, None), (2, "TIME_WAIT", 0, 8.0), (1, "LISTEN", 99, None)]
    # Only this dump's sockets are kept for the next.
    assert len(cache.last) == 3
    cache.begin()
    run_down: list[Socket] = []
    kernel._parse_cached(sock_msg(2, 6, 7000) + done, "tcp", run_down, cache, base=1.1)
    cache.end()
    assert run_down[0] is again[1]  # the same deadline, a second later: the same socket
    error = struct.pack("=IHHIIi", 36, kernel.NLMSG_ERROR, 0, 1, 0, -1) + bytes(16)
    cache.begin()
    with pytest.raises(kernel.KernelUnavailable, match="not permitted"):
        kernel._parse_cached(sock_msg(1) + error, "tcp", [], cache)
    assert not kernel._parse_cached(sock_msg(1), "tcp", [], cache)  # no end yet


def test_an_incremental_fd_scan_reads_only_what_changed(tmp_path: object) -> None:
    me = os.getpid()
    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        ino = os.fstat(lsn.fileno()).st_ino
        known = holders.scan_fds("/proc", me)
        assert isinstance(known, dict) and known[str(lsn.fileno())] == ino
        # Nothing changed: the same answer, not a copy (the index then skips this process).
        assert holders.scan_fds("/proc", me, known) is known
        with open(os.path.join(str(tmp_path), "f"), "w") as f:
            assert holders.scan_fds("/proc", me, known) is known  # a file is not a socket
            other = holders.scan_fds("/proc", me, known)
            fd = f.fileno()
        # The file's fd number reused for a copy of the socket: read, though it was seen
        # before (as a file).
        copy = os.dup(lsn.fileno())
        try:
            assert copy == fd
            assert isinstance(other, dict)
            found = holders.scan_fds("/proc", me, other)
            assert isinstance(found, dict) and found[str(copy)] == ino
            assert found[str(lsn.fileno())] == ino
        finally:
            os.close(copy)
        gone = holders.scan_fds("/proc", me, found)
        assert isinstance(gone, dict) and str(copy) not in gone
        assert gone[str(lsn.fileno())] == ino
