"""psutil's Process, as far as the sampler reads it, straight from /proc (Linux).

The one-shot commands are mostly interpreter start and imports: psutil's import alone
is ~15 ms of a 65 ms `portside list` at 50 sockets, and this module is well under one.
The values are psutil's, read the way psutil 7 reads them (tests compare the two on
every process of the machine); psutil stays for other systems and for signalling.
"""

# No `from __future__ import annotations`: a NamedTuple compiles each of its string
# annotations at import, which was ~2 ms of every command's start.

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from .procinfo import split_stat, user_name

# The same exception names as psutil's, so ProcessCache catches either module's.


class Error(Exception):
    """A process could not be read."""

    def __init__(self, pid: int | None = None, msg: str = "") -> None:
        super().__init__(msg or f"process {pid}")
        self.pid = pid


class NoSuchProcess(Error):
    """The process is gone."""


class ZombieProcess(NoSuchProcess):
    """The process has exited and not been reaped."""


class AccessDenied(Error):
    """The process will not tell us."""


# psutil's names for the state letters of /proc/PID/stat.
_STATUS = {
    "R": "running", "S": "sleeping", "D": "disk-sleep", "T": "stopped", "t": "tracing-stop",
    "Z": "zombie", "X": "dead", "x": "dead", "K": "wake-kill", "W": "waking", "I": "idle",
    "P": "parked",
}
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_boot: list[float] = []


def boot_time(root: str = "/proc") -> float:
    """When the machine booted, from /proc/stat's btime (as psutil reads it)."""
    if not _boot:
        with open(f"{root}/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime"):
                    _boot.append(float(line.split()[1]))
                    break
            else:
                raise RuntimeError(f"line 'btime' not found in {root}/stat")
    return _boot[0]


class MemoryInfo(NamedTuple):
    """memory_info()'s tuple, as far as it is read."""

    rss: int


class Process:
    """One process, by PID: the calls ProcessCache makes of a psutil.Process."""

    def __init__(self, pid: int, root: str = "/proc") -> None:
        self.pid = pid
        self._dir = f"{root}/{pid}"
        self._root = root
        self._once: dict[str, object] | None = None  # reads kept inside oneshot()
        self._cpu: tuple[float, float] | None = None  # (monotonic, CPU seconds), last read
        # Read now: NoSuchProcess here, as psutil.Process(pid) raises it.
        self._ctime = float(self._stat()[20]) / _TICKS  # seconds after boot

    @contextmanager
    def oneshot(self) -> Iterator[None]:
        """Read each /proc file at most once inside the block."""
        if self._once is not None:
            yield
            return
        self._once = {}
        try:
            yield
        finally:
            self._once = None

    def _read(self, name: str) -> bytes:
        once = self._once
        if once is not None and name in once:
            return once[name]  # type: ignore[return-value]
        try:
            with open(f"{self._dir}/{name}", "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, ProcessLookupError):
            raise NoSuchProcess(self.pid) from None
        except PermissionError:
            raise AccessDenied(self.pid) from None
        if once is not None:
            once[name] = data
        return data

    def _stat(self) -> list[bytes]:
        """The name, then the fields after it."""
        name, fields = split_stat(self._read("stat"))
        return [name, *fields]

    def _link(self, name: str) -> str:
        try:
            path = os.readlink(f"{self._dir}/{name}")
        except (FileNotFoundError, ProcessLookupError):
            self._if_zombie()
            if name == "exe" and os.path.lexists(self._dir):
                return ""  # a kernel thread: no program, as psutil says
            raise NoSuchProcess(self.pid) from None
        except PermissionError:
            raise AccessDenied(self.pid) from None
        # psutil drops a trailing NUL and " (deleted)" when no such file exists any more.
        path = path.split("\x00")[0]
        if path.endswith(" (deleted)") and not os.path.exists(path):
            path = path[:-10]
        return path

    def _if_zombie(self) -> None:
        try:
            zombie = self._stat()[1] == b"Z"
        except NoSuchProcess:
            zombie = False
        if zombie:
            raise ZombieProcess(self.pid)

    def create_time(self) -> float:
        """Seconds since the epoch: start ticks after boot, plus the boot time."""
        return self._ctime + boot_time(self._root)

    def name(self) -> str:
        """The kernel's name for it, or the program's when the kernel cut it to 15."""
        name = os.fsdecode(self._stat()[0])
        if len(name) >= 15:
            try:
                cmdline = self.cmdline()
            except (AccessDenied, ZombieProcess):
                cmdline = []
            if cmdline:
                extended = os.path.basename(cmdline[0])
                if extended.startswith(name):
                    name = extended
        return name

    def ppid(self) -> int:
        """The parent's PID."""
        return int(self._stat()[2])

    def username(self) -> str:
        """The real user's login name, or the uid as text."""
        for line in self._read("status").splitlines():
            if line.startswith(b"Uid:"):
                return user_name(int(line.split()[1])) or ""
        raise NoSuchProcess(self.pid)

    def exe(self) -> str:
        """The program's path ("" for a kernel thread); when the link cannot be read, the
        command line's first word if that is a runnable file (psutil's guess)."""
        try:
            path = self._link("exe")
        except AccessDenied:
            guess = self._guess_exe()
            if guess:
                return guess
            raise
        if not path:
            try:
                path = self._guess_exe()
            except AccessDenied:
                pass
        return path

    def _guess_exe(self) -> str:
        args = self.cmdline()
        if args and os.path.isabs(args[0]) and os.path.isfile(args[0]) \
                and os.access(args[0], os.X_OK):
            return args[0]
        return ""

    def cmdline(self) -> list[str]:
        """The arguments, split as psutil splits them (NULs, or spaces after a retitle)."""
        data = os.fsdecode(self._read("cmdline"))
        if not data:
            self._if_zombie()
            return []
        sep = "\x00" if data.endswith("\x00") else " "
        if data.endswith(sep):
            data = data[:-1]
        args = data.split(sep)
        if sep == "\x00" and len(args) == 1 and " " in data:
            args = data.split(" ")
        return args

    def cwd(self) -> str:
        """The working directory."""
        return self._link("cwd")

    def status(self) -> str:
        """psutil's word for the state letter ("sleeping", "zombie", ...)."""
        letter = self._stat()[1].decode()
        return _STATUS.get(letter, "?")

    def memory_info(self) -> MemoryInfo:
        """The resident set, in bytes."""
        return MemoryInfo(int(self._read("statm").split()[1]) * _PAGE)

    def cpu_percent(self, interval: float | None = None) -> float:
        """Per cent of one core since the last call (0.0 the first time), as psutil's."""
        stat = self._stat()
        used = (int(stat[12]) + int(stat[13])) / _TICKS
        now = time.monotonic()
        last, self._cpu = self._cpu, (now, used)
        if last is None or now <= last[0]:
            return 0.0
        return round((used - last[1]) / (now - last[0]) * 100, 1)
