"""The sampler: one immutable Snapshot of the machine's sockets and their processes."""

from __future__ import annotations

import _socket as socket  # the constants only: see kernel
import functools
import os
import sys
import time
from collections.abc import Mapping
from itertools import compress, repeat
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..model import (
    HIDDEN_AS_ROOT,
    HIDDEN_AS_USER,
    INVISIBLE,
    LISTEN,
    NONE,
    SUDO_HINT,
    TIME_WAIT,
    TIME_WAIT_SECONDS,
    Family,
    Gaps,
    Manager,
    ProcessInfo,
    Proto,
    Snapshot,
    Socket,
    State,
    as_state,
    main_pid,
    make_processes,
    owner_unknown,
)
from . import kernel
from .holders import HolderIndex
from .managers import ManagerIndex
from .procinfo import ProcessCache, default_source, psutil_module, user_name

if TYPE_CHECKING:
    from .pidfds import PidfdRegistry
    from .psapi import Connection, ProcessSource, Psutil

NETLINK_TRIES = 3


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is None or geteuid() == 0


class OwnConnection(NamedTuple):
    """A connection listed by its process, with that process's pid (as net_connections'
    tuples carry)."""

    family: int
    type: int
    laddr: Any
    raddr: Any
    status: str
    pid: int | None


class Sampler:
    """Produces Snapshots; keeps caches between samples, so reuse one instance.

    On Linux it reads the kernel's socket tables (sock_diag, else /proc/net) and every
    holder from /proc/*/fd; elsewhere it uses psutil.net_connections.
    """

    def __init__(
        self,
        all_states: bool = False,
        reader: str | None = None,
        ps: ProcessSource | None = None,
        proc_root: str = "/proc",
        count_connections: bool = False,
        ancestors: bool = False,
        pidfds: PidfdRegistry | None = None,
        managers: bool = False,
        one_shot: bool = False,
    ) -> None:
        self.all_states = all_states
        # Sampled once (a command's listing): no parse cache, as filing every socket's
        # key for a next sample would only cost it (~1 µs a socket).
        self.one_shot = one_shot
        self.count_connections = count_connections  # fills Snapshot.connections
        # Judge who manages every holder (Snapshot.managers): needs the parent chains.
        self.managers = managers
        self.ancestors = ancestors or managers  # also collect the parent chain of every holder
        self.pidfds = pidfds  # capture a pidfd for every holder listed (Linux)
        if reader is None:
            reader = "sock_diag" if sys.platform.startswith("linux") else "psutil"
        self.reader = reader
        if ps is None:
            # The psutil reader lists sockets with psutil; the others need only processes.
            ps = default_source() if reader != "psutil" else psutil_module()
        self.ps = ps
        self._errors = (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess)
        self._holders = HolderIndex(proc_root)
        self._procs = ProcessCache(ps)
        self._managers = ManagerIndex(proc_root)
        self._first_seen: dict[tuple[object, ...], float] = {}  # for TIME_WAIT estimates
        self._notes: tuple[str, ...] = ()
        self._sport: int | None = None  # sample_port(): only this local port's listeners
        self._parsed = kernel.ParseCache()  # the last dump's sockets by their messages

    def sample(self) -> Snapshot:
        """Take one sample. Per-process errors never escape; OSError does if no reader works."""
        t0 = time.perf_counter()
        notes: list[str] = []
        counts: dict[int, int] = {}
        root = _is_root()
        gaps = Gaps(is_root=root, unknown_reason=HIDDEN_AS_ROOT if root else HIDDEN_AS_USER)
        managers: Mapping[int, Manager] = MappingProxyType({})
        by_port: Mapping[tuple[int, int], Manager] = MappingProxyType({})
        if self.reader in ("sock_diag", "procfs"):
            together: dict[int, set[int]] | None = {} if self.managers else None
            socks, procs, gaps = self._sample_linux(notes, counts, gaps, together)
            if together is not None:
                managers = MappingProxyType(self._managers.judge(together, procs, socks))
                by_port = MappingProxyType(dict(self._managers.port_managers))
                if self.pidfds is not None:
                    self._capture_managers(managers, procs)
        else:
            socks, procs = self._sample_psutil(notes, time.monotonic(), counts)
        gaps = gaps._replace(notes=tuple(notes))
        if gaps.inodes:  # owner_unknown(), inlined: this runs over every socket
            pending, tw = gaps.pending, TIME_WAIT
            unknown = sum(1 for s in socks if not s.holders and s.state != tw and s.inode
                          and s.inode not in pending)
        else:
            unknown = sum(1 for s in socks if owner_unknown(s, gaps))
        gaps = gaps._replace(unknown_owner=unknown)
        # Taken once the sample is whole: the sockets' timers were read before it, so the
        # time left as of the sample is never more than the kernel said.
        taken_at, mono = time.time(), time.monotonic()
        return Snapshot(
            taken_at=taken_at, monotonic=mono, sockets=tuple(socks),
            processes=make_processes(procs), gaps=gaps, source=self.reader,
            all_states=self.all_states, duration=time.perf_counter() - t0,
            connections=MappingProxyType(counts), managers=managers, port_managers=by_port,
        )


    def sample_port(self, port: int) -> Snapshot:
        """A sample of one local port's listening sockets (TCP LISTEN, UDP) and their
        holders: what "is it free now?" needs after a signal. On Linux the kernel is asked
        for that port only (a sock_diag filter, as `ss sport = :P`), not for a dump of
        every socket; the processes and managers are judged as in sample()."""
        if self.reader not in ("sock_diag", "procfs"):
            return self.sample()
        saved = (self.all_states, self.count_connections)
        self._sport, self.all_states, self.count_connections = port, False, False
        try:
            return self.sample()
        finally:
            self._sport = None
            self.all_states, self.count_connections = saved

    def _keep(self, socks: list[Socket], counts: dict[int, int],
              keys: list[bytes | None] | None = None
              ) -> tuple[list[Socket], list[bytes | None] | None]:
        """Count connections per local port, then drop the states not asked for (and
        their parse keys, when given: one per socket)."""
        if not self.count_connections:
            return socks, keys
        for s in socks:
            if s.proto == "tcp" and s.state != LISTEN and s.state != TIME_WAIT:
                counts[s.lport] = counts.get(s.lport, 0) + 1
        if self.all_states:
            return socks, keys
        kept = [s.proto == "udp" or s.state == LISTEN or s.state == TIME_WAIT for s in socks]
        return list(compress(socks, kept)), None if keys is None else list(compress(keys, kept))

    # Linux -----------------------------------------------------------------------------

    def _read_kernel(self, notes: list[str]
                     ) -> tuple[list[Socket], list[bytes | None] | None]:
        """The kernel's sockets, and their parse keys when the parse cache read them."""
        sport = self._sport
        mask = kernel.LISTEN_MASK if sport is not None else \
            kernel.state_mask(self.all_states or self.count_connections)
        failed: kernel.KernelUnavailable | None = None
        if self.reader == "sock_diag":
            for _ in range(NETLINK_TRIES):
                try:
                    # No cache for one port's sockets (not the whole dump) nor for a
                    # sampler that samples once.
                    if sport is not None or self.one_shot:
                        return kernel.read_sock_diag(mask, sport=sport), None
                    return kernel.read_sock_diag(mask, cache=self._parsed), self._parsed.keys
                except kernel.KernelUnavailable as exc:
                    failed = exc
                    if exc.errno not in kernel.TRANSIENT:
                        # Closed to us for good: stay on /proc/net, and say so every sample.
                        self.reader = "procfs"
                        self._notes = (f"sock_diag netlink is unavailable ({exc}): reading "
                                       "/proc/net instead",)
                        break
            else:
                notes.append(f"sock_diag failed {NETLINK_TRIES} times ({failed}): read "
                             "/proc/net for this sample; sock_diag is tried again next time")
        notes.extend(self._notes)
        try:
            socks = kernel.read_proc_net(mask, root=self._holders.root)
            return (socks if sport is None else [s for s in socks if s.lport == sport]), None
        except kernel.KernelUnavailable as exc:
            if failed is None:
                raise
            raise kernel.KernelUnavailable(exc.errno, f"{failed}; and {exc}") from None

    def _sample_linux(
        self, notes: list[str], counts: dict[int, int], gaps: Gaps,
        together: dict[int, set[int]] | None = None,
    ) -> tuple[list[Socket], dict[int, ProcessInfo], Gaps]:
        """The Linux sample; `together` (when given) gets, per holder, every PID holding
        a socket with it (for judging managers)."""
        index = self._holders
        first = not index.full_scans
        index.prepare()  # the first sample's fd scan runs while the kernel is read
        raw, keys = self._read_kernel(notes)
        if keys is not None and len(keys) != len(raw):
            keys = None  # not one per socket: nothing is filed back
        socks, keys = self._keep(raw, counts, keys)
        # TIME_WAIT sockets (most of them, on a busy machine) have no inode and no owner:
        # they pass through untouched.
        inodes = [s.inode for s in socks if s.inode]
        owners = index.update(inodes)
        get = owners.get
        # Each holder set once (most sockets share one), in C.
        sets = set(map(get, inodes, repeat(())))
        procs = self._procs.collect(set[int]().union(*sets), self.ancestors)
        ppids = {pid: info.ppid for pid, info in procs.items()}
        fd_faults, proc_faults = index.faults, self._procs.faults
        # With pidfds: each holder and one socket it holds (to check the fd it was seen on).
        held: dict[int, int] | None = {} if self.pidfds is not None else None
        pending: set[int] = set()
        unreadable = bool(fd_faults) or index.list_fault is not None
        me = os.geteuid() if hasattr(os, "geteuid") else None
        # The hot loop at 100k sockets: thousands of sockets share a set of holders, so
        # each set is judged once (holders alive, main holder, user), and each socket is
        # one tuple built directly.
        judged: dict[tuple[int, ...], tuple[tuple[int, ...], int | None, str | None]] = {}
        new = tuple.__new__
        replace = self._parsed.replace
        for i, s in enumerate(socks):
            inode = s.inode
            if not inode:
                continue
            found = get(inode, ())
            verdict = judged.get(found)
            if verdict is None:
                # A holder that vanished since the fd scan is dropped, not guessed at.
                pids = tuple(p for p in found if p in procs)
                owner = main_pid(pids, ppids)
                verdict = judged[found] = (
                    pids, owner, procs[owner].username if owner is not None else None)
                if held is not None:
                    for p in pids:
                        held.setdefault(p, s.inode)
                if together is not None:
                    for p in pids:
                        together.setdefault(p, set()).update(pids)
            pids, owner, user = verdict
            user = user or user_name(s.uid)
            # A socket the parse took from the last sample carries what was found then:
            # kept as it is when that still holds (the view then sees the same object).
            if s.holders != pids or s.pid != owner or s.user != user:
                socks[i] = new(Socket, (*s[:9], pids, owner, user, *s[12:]))
                if keys is not None:
                    replace(keys[i], socks[i])
            if pids:
                continue
            if any(p in proc_faults for p in found) or (not found and unreadable):
                continue  # unknown because of a fault: counted, and the note says which
            # Its holders exited mid-sample, or it was missed once: look again next time
            # before calling it unknown. Another user's socket, as an ordinary user, is
            # explained already.
            if (found or not (first or index.unresolved(s.inode))) and \
                    (gaps.is_root or s.uid == me):
                pending.add(s.inode)
        if held is not None:
            self._capture_pidfds(held, procs)
        reason = self._faults(notes, gaps)
        return socks, procs, gaps._replace(unreadable_pids=len(index.denied),
                                           unknown_reason=reason, pending=frozenset(pending),
                                           inodes=True)

    def _faults(self, notes: list[str], gaps: Gaps) -> str:
        """Notes for what could not be read this sample; why owners are unknown."""
        index, proc_faults = self._holders, self._procs.faults
        fd_faults = index.faults
        if index.list_fault is not None:
            notes.append(f"{index.root} could not be listed ({index.list_fault.text}): owners "
                         "are as last read; read again every sample")
        elif not index.processes:
            notes.append(f"no processes under {index.root} (is it mounted?): owners cannot "
                         "be shown")
        faults = sorted({f.text for f in fd_faults.values()} | set(proc_faults.values()))
        if faults:
            count = len(set(fd_faults) | set(proc_faults))
            notes.append(f"{count} process(es) could not be read ({'; '.join(faults)}): shown "
                         "as last read, read again every sample")
            return f"held by processes that could not be read ({'; '.join(faults)})"
        if gaps.is_root and not index.denied:
            return INVISIBLE
        return gaps.unknown_reason

    def _capture_pidfds(self, held: dict[int, int], procs: dict[int, ProcessInfo]) -> None:
        """A pidfd for every listed holder, opened the first time it is seen."""
        registry = self.pidfds
        assert registry is not None
        holds = self._holders.holds
        idents = set()
        for pid, inode in held.items():
            ident = (pid, procs[pid].create_time)
            idents.add(ident)
            registry.capture(ident, functools.partial(holds, pid, inode))
        registry.listed(idents)

    def _capture_managers(self, managers: Mapping[int, Manager],
                          procs: dict[int, ProcessInfo]) -> None:
        """A pidfd for every process that restarts a holder: `free` signals it first."""
        registry = self.pidfds
        assert registry is not None
        for pid in {m.pid for m in managers.values() if m.pid is not None}:
            info = procs.get(pid)
            if info is not None:
                registry.capture((pid, info.create_time),
                                 functools.partial(self._started_at, pid, info.create_time))

    def _started_at(self, pid: int, create_time: float) -> bool:
        """True when the process with this PID is the one that started at create_time."""
        try:
            return abs(self.ps.Process(pid).create_time() - create_time) <= 0.005
        except self._errors:
            return False

    # Portable --------------------------------------------------------------------------

    def _connections(self, notes: list[str]) -> list[Connection]:
        ps: Psutil = self.ps  # type: ignore[assignment]  # the psutil reader: psutil-shaped
        try:
            return list(ps.net_connections(kind="inet"))
        except ps.AccessDenied:
            # macOS without root: only our own processes' sockets can be listed.
            notes.append("the full socket list needs root here: showing your own processes "
                         f"only ({SUDO_HINT})")
        conns: list[Connection] = []
        me = os.getuid() if hasattr(os, "getuid") else None
        for proc in ps.process_iter(["pid", "uids"]):
            try:
                uids = proc.info.get("uids")
                if me is not None and uids is not None and uids[0] != me:
                    continue
                for c in proc.net_connections(kind="inet"):
                    # A process's own connections carry no pid: they are its.
                    conns.append(OwnConnection(c.family, c.type, c.laddr, c.raddr, c.status,
                                               proc.pid))
            except self._errors:
                continue
        return conns

    def _sample_psutil(
        self, notes: list[str], mono: float, counts: dict[int, int]
    ) -> tuple[list[Socket], dict[int, ProcessInfo]]:
        conns = self._connections(notes)
        wanted = []
        for c in conns:
            proto: Proto = "udp" if c.type == socket.SOCK_DGRAM else "tcp"
            state: State = NONE if proto == "udp" else as_state(str(c.status))
            if proto == "tcp" and state not in (LISTEN, TIME_WAIT):
                if self.count_connections and c.laddr:
                    counts[c.laddr[1]] = counts.get(c.laddr[1], 0) + 1
                if not self.all_states:
                    continue
            wanted.append((c, proto, state))
        procs = self._procs.collect((c.pid for c, _, _ in wanted if c.pid), self.ancestors)
        seen: dict[tuple[object, ...], float] = {}
        out: list[Socket] = []
        for c, proto, state in wanted:
            laddr, lport = (c.laddr[0], c.laddr[1]) if c.laddr else ("", 0)
            raddr, rport = (c.raddr[0], c.raddr[1]) if c.raddr else (None, None)
            family: Family = "ipv6" if c.family == socket.AF_INET6 else "ipv4"
            ends = None
            if state == TIME_WAIT:
                key = (proto, laddr, lport, raddr, rport)
                first = self._first_seen.get(key, mono)
                seen[key] = first
                ends = first + TIME_WAIT_SECONDS
            pid = c.pid if c.pid in procs else None
            info = procs.get(pid) if pid else None
            out.append(Socket(
                proto=proto, family=family, laddr=laddr, lport=lport, raddr=raddr,
                rport=rport, state=state, holders=(pid,) if pid else (), pid=pid,
                user=info.username if info else None, ends=ends,
                time_left_exact=False,
            ))
        self._first_seen = seen
        return out, procs

