"""Which processes hold which socket inodes, from /proc/*/fd, with a cache.

psutil reports one PID per socket; a forking server's workers and a reloader's children
hold the same socket, so we read every process's fd table as `ss -p` and `lsof` do.
Reading every fd of every process is the expensive part, so the index remembers each
process's socket inodes and rescans everything only when an unknown inode appears.
"""

# No `from __future__ import annotations`: a NamedTuple compiles each of its string
# annotations at import, which was ~2 ms of every command's start.

import _thread  # threads running: threading would be ~1 ms of every start to ask it
import errno
import fcntl
import os
import struct
from collections.abc import Iterable
from typing import NamedTuple

FdMap = dict[str, int]  # fd name -> socket inode

# The errors that mean "this process is gone" (or is a kernel thread with no fds).
_GONE = frozenset({errno.ENOENT, errno.ESRCH})


def fault_text(exc: BaseException) -> str:
    """An error of the system as one line: "Too many open files (EMFILE)"."""
    if isinstance(exc, OSError) and exc.errno:
        where = f": {exc.filename}" if exc.filename and exc.errno == errno.ENOENT else ""
        return f"{exc.strerror or exc}{where} ({errno.errorcode.get(exc.errno, exc.errno)})"
    return str(exc) or type(exc).__name__


class Fault(NamedTuple):
    """A process whose fds could not be read for a reason other than "gone" or
    "permission denied" (no descriptors left, no memory, I/O): read again next time."""

    errno: int
    text: str  # e.g. "Too many open files (EMFILE)"

    @classmethod
    def of(cls, exc: OSError) -> "Fault":
        return cls(exc.errno or 0, fault_text(exc))


Scan = FdMap | Fault | None  # None: permission denied


def _proc_pids(root: str) -> set[int]:
    """The PIDs under /proc; raises OSError when /proc cannot be listed."""
    return {int(n) for n in os.listdir(root) if n.isdigit()}


def _failed(exc: OSError) -> Scan:
    """What an error while reading a process's fds means."""
    if isinstance(exc, PermissionError):
        return None
    if exc.errno in _GONE:
        return {}  # exited, or a kernel thread: holds nothing we can see
    return Fault.of(exc)


def scan_fds(root: str, pid: int, known: dict[str, int] | None = None) -> Scan:
    """fd name -> socket inode for a process; None when its fds may not be read, a Fault
    when they could not be read now.

    With `known` (the last answer), only new fd numbers are read: a holder with thousands
    of connections costs one listdir per sample. A reused fd number holding a new socket
    brings an inode nobody is known to hold, and that makes the index read everything.
    """
    try:
        # Names relative to the open directory: the kernel walks one component per fd,
        # not five (about 15% of a full scan).
        dir_fd = os.open(f"{root}/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        return _failed(exc)
    out: dict[str, int] = {}
    readlink = os.readlink
    try:
        names = os.listdir(dir_fd)
        if pid == os.getpid():  # our own fd table holds the directory's fd: not a socket
            names = [n for n in names if n != str(dir_fd)]
        # The fds not known to hold a socket are read (set operations in C: a holder of
        # 10k sockets costs its listdir, not a Python loop over its fds).
        listed = set(names) if known is not None else set()
        unread = names if known is None else listed.difference(known)
        for fd in unread:
            try:
                target = readlink(fd, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno in _GONE:
                    continue  # closed meanwhile
                return _failed(exc)
            if target.startswith("socket:["):
                out[fd] = int(target[8:-1])
        if known is not None:
            if not out and len(names) - len(unread) == len(known):
                return known  # every socket fd is still open, and no new one: no change
            still = known.keys() & listed
            out.update((fd, known[fd]) for fd in still)
    except OSError as exc:
        return _failed(exc)
    finally:
        os.close(dir_fd)
    return out


_PID = struct.Struct("=i")  # one queued pid: reads of this size from a pipe are atomic


def _take(queue: int) -> int | None:
    """The next pid from the shared queue, None once it is empty."""
    data = os.read(queue, _PID.size)
    return _PID.unpack(data)[0] if len(data) == _PID.size else None


def _encode(fds: Scan) -> str:
    if fds is None:
        return "-"
    if isinstance(fds, Fault):
        return f"!{fds.errno}"
    return " ".join(f"{fd}:{ino}" for fd, ino in fds.items())


def _decode(data: bytes) -> dict[int, Scan]:
    out: dict[int, Scan] = {}
    for line in data.decode().splitlines():
        pid, _, rest = line.partition(" ")
        if rest == "-":
            out[int(pid)] = None
        elif rest.startswith("!"):
            out[int(pid)] = Fault.of(OSError(int(rest[1:]), os.strerror(int(rest[1:]))))
        else:
            out[int(pid)] = {fd: int(ino) for fd, _, ino in
                             (f.partition(":") for f in rest.split(" ") if f)}
    return out


class FdScan:
    """A full fd scan that starts in forked children while the caller reads the sockets.

    Reading every process's fds is system-call bound. The pids wait in a pipe; children
    take them one at a time, and in `result()` the caller takes what is left, so the work
    balances itself: on a busy machine the children do it all while the caller parses
    sockets, on a quiet one the caller joins in. Only a single-threaded process forks
    (a fork copies one thread, and a lock another thread holds stays locked in the
    child); otherwise, or with workers=0, all of it happens in `result()`.
    """

    def __init__(self, root: str, pids: list[int], workers: int | None = None) -> None:
        self.root, self.pids = root, pids
        if workers is None:
            workers = min(3, (os.cpu_count() or 1) - 1)  # the caller is one more
            if _thread._count() > 0 or not hasattr(os, "fork"):
                workers = 0
        self._jobs: list[tuple[int, int]] = []  # (child pid, read end of its output)
        self._queue = -1
        if workers <= 0 or not pids:
            return
        try:
            self._start(root, pids, workers)
        except OSError:
            # No descriptors or processes to spare (EMFILE, EAGAIN): what was not handed
            # to a child is read in result(), where each process's fault is reported.
            pass

    def _start(self, root: str, pids: list[int], workers: int) -> None:
        self._queue, feed = os.pipe()
        try:
            # Only what fits in the empty pipe (so the write cannot block); the caller
            # reads whatever was not queued.
            room = fcntl.fcntl(feed, fcntl.F_GETPIPE_SZ) if hasattr(fcntl, "F_GETPIPE_SZ") \
                else 4096
            os.write(feed, b"".join(_PID.pack(p) for p in pids[:room // _PID.size]))
        finally:
            os.close(feed)  # closed before forking: the queue ends once it is empty
        for _ in range(workers):
            read_end, write_end = os.pipe()
            try:
                child = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                raise
            if child == 0:  # pragma: no cover - the child leaves through os._exit
                code = 1
                try:
                    os.close(read_end)
                    lines = []
                    while (pid := _take(self._queue)) is not None:
                        lines.append(f"{pid} {_encode(scan_fds(root, pid))}")
                    data = memoryview("\n".join(lines).encode())
                    while data:
                        data = data[os.write(write_end, data):]
                    code = 0
                finally:
                    os._exit(code)
            os.close(write_end)
            self._jobs.append((child, read_end))

    def result(self) -> dict[int, Scan]:
        """pid -> its socket fds (None: not readable, Fault: not now), for every pid given."""
        found: dict[int, Scan] = {}
        if self._queue >= 0:
            while (pid := _take(self._queue)) is not None:
                found[pid] = scan_fds(self.root, pid)
            os.close(self._queue)
            self._queue = -1
        for child, read_end in self._jobs:
            chunks = []
            with os.fdopen(read_end, "rb") as pipe:
                while chunk := pipe.read(1 << 16):
                    chunks.append(chunk)
            _, status = os.waitpid(child, 0)
            if status == 0:  # what a failed child took is read below
                found.update(_decode(b"".join(chunks)))
        self._jobs = []
        for pid in self.pids:
            if pid not in found:
                found[pid] = scan_fds(self.root, pid)
        return found


def scan_pid(root: str, pid: int) -> set[int] | None:
    """The socket inodes a process holds; None when its fds cannot be read."""
    fds = scan_fds(root, pid)
    return None if fds is None or isinstance(fds, Fault) else set(fds.values())


class HolderIndex:
    """Maps socket inodes to every PID holding them, updated incrementally per sample.

    Faults are never taken for "holds nothing": a process whose fds could not be read
    (no descriptors left, say) keeps what it was last seen holding and is read again at
    every update until it answers; a socket nobody was found holding is looked for once
    more at the next update (its holder may have exited mid-scan) before it counts as
    unresolved.
    """

    RETRIES = 2  # full scans that must miss a socket before it is unresolved

    def __init__(self, root: str = "/proc") -> None:
        self.root = root
        self._inodes: dict[int, set[int]] = {}  # pid -> socket inodes
        self._changed = True  # an inode set changed since the owners were made
        self._fds: dict[int, dict[str, int]] = {}  # pid -> fd name -> socket inode
        self._owners: dict[int, tuple[int, ...]] = {}  # inode -> pids, sorted
        self._denied: set[int] = set()  # pids whose fds we may not read
        self._faults: dict[int, Fault] = {}  # pids whose last read failed
        self._unresolved: dict[int, int] = {}  # inode -> full scans in a row that missed it
        self._prepared: FdScan | None = None
        self.list_fault: Fault | None = None  # /proc itself could not be listed
        self.full_scans = 0

    @property
    def denied(self) -> frozenset[int]:
        """PIDs whose open files could not be read (permission)."""
        return frozenset(self._denied)

    @property
    def faults(self) -> dict[int, Fault]:
        """PIDs whose open files could not be read at the last attempt, and why."""
        return dict(self._faults)

    @property
    def processes(self) -> int:
        """How many processes the index knows."""
        return len(self._inodes)

    def unresolved(self, inode: int) -> bool:
        """True when full scans in a row found nobody holding this socket (it is not just
        a holder that exited during one scan)."""
        return self._unresolved.get(inode, 0) >= self.RETRIES

    def prepare(self) -> None:
        """Before the sockets are read: start the first full scan in the background."""
        if not self._inodes and self._prepared is None:
            try:
                self._prepared = FdScan(self.root, sorted(_proc_pids(self.root)))
            except OSError:
                pass  # update() says why

    def holds(self, pid: int, inode: int) -> bool:
        """Re-read now: does this PID still hold the socket through the fd it was seen on?"""
        for fd, ino in self._fds.get(pid, {}).items():
            if ino == inode:
                try:
                    return os.readlink(f"{self.root}/{pid}/fd/{fd}") == f"socket:[{inode}]"
                except OSError:
                    return False
        return False

    def _scan(self, pid: int, incremental: bool = False) -> None:
        self._store(pid, scan_fds(self.root, pid, self._fds.get(pid) if incremental else None))

    def _store(self, pid: int, fds: Scan) -> None:
        if isinstance(fds, Fault):
            self._faults[pid] = fds  # what it was last seen holding stands until it answers
            self._inodes.setdefault(pid, set())
            return
        self._faults.pop(pid, None)
        if fds is not None and fds is self._fds.get(pid):
            self._denied.discard(pid)
            return  # scan_fds found the fds it was given: nothing changed
        before = self._inodes.get(pid)
        if fds is None:
            self._denied.add(pid)
            self._inodes[pid] = set()
            self._fds.pop(pid, None)
        else:
            self._denied.discard(pid)
            self._inodes[pid] = set(fds.values())
            self._fds[pid] = fds
        if before != self._inodes[pid]:
            self._changed = True

    def _forget(self, pid: int) -> None:
        if self._inodes.pop(pid, None):
            self._changed = True
        self._fds.pop(pid, None)
        self._denied.discard(pid)
        self._faults.pop(pid, None)

    def _rebuild_owners(self) -> None:
        """inode -> holder PIDs, made again only when a process's sockets changed (at
        100k sockets, making it took ~150 ms a sample)."""
        if not self._changed:
            return
        self._changed = False
        owners: dict[int, tuple[int, ...]] = {}
        get = owners.get
        for pid, inodes in self._inodes.items():
            # One tuple per process, shared by each socket only it holds (most of them):
            # at 100k sockets, a list per socket was 13 MB.
            alone = (pid,)
            for ino in inodes:
                have = get(ino)
                owners[ino] = alone if have is None else tuple(sorted((*have, pid)))
        self._owners = owners

    def update(self, wanted: Iterable[int]) -> dict[int, tuple[int, ...]]:
        """Bring the index up to date for these inodes; return inode -> holder PIDs."""
        wanted_set = {i for i in wanted if i}
        try:
            now = _proc_pids(self.root)
        except OSError as exc:
            # Not "every process exited": keep what is known, and say why it is old.
            self.list_fault = Fault.of(exc)
            return self._owners
        self.list_fault = None
        known = set(self._inodes)
        for pid in known - now:
            self._forget(pid)
        if known:
            # New processes are read (a fork inherits sockets; a new server opens one), and
            # holders are re-read so that a parent that closed its copy stops being listed.
            holders = {p for p, inodes in self._inodes.items()
                       if not inodes.isdisjoint(wanted_set)}
            for pid in now - known:
                self._scan(pid)
            failed = set(self._faults) & known
            for pid in (holders & known & now) - failed:
                self._scan(pid, incremental=True)
            for pid in failed & now:
                self._scan(pid)  # read in full: what it holds now is not known
            self._rebuild_owners()
        settled = {i for i, n in self._unresolved.items() if n >= self.RETRIES}
        unknown = wanted_set.difference(self._owners, settled)
        if unknown or not known:
            # An old process opened a socket we have not seen: read everything, as ss does.
            self.full_scans += 1
            prepared = self._prepared.result() if self._prepared else {}
            self._prepared = None
            for pid in now:
                if pid in prepared:
                    self._store(pid, prepared[pid])
                else:
                    self._scan(pid)  # started since: read now
            self._rebuild_owners()
            # A scan that could not read some process proves nothing about what it holds.
            step = 0 if self._faults else 1
            self._unresolved = {i: self._unresolved.get(i, 0) + step
                                for i in wanted_set.difference(self._owners)}
        else:
            self._unresolved = {i: n for i, n in self._unresolved.items() if i in wanted_set}
        return self._owners


def scan_holders(inodes: Iterable[int], root: str = "/proc") -> dict[int, list[int]]:
    """An uncached scan: inode -> holder PIDs, for the moment before signalling."""
    wanted = {i for i in inodes if i}
    owners: dict[int, list[int]] = {}
    if not wanted:
        return owners
    try:
        pids = sorted(_proc_pids(root))
    except OSError:
        return owners
    for pid in pids:
        found = scan_pid(root, pid)
        if found:
            for ino in found & wanted:
                owners.setdefault(ino, []).append(pid)
    return owners
