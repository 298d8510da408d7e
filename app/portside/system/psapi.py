"""The part of psutil portside uses, as typed protocols: the seam tests put fakes in."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Address(Protocol):
    """psutil's (ip, port) pair."""

    @property
    def ip(self) -> str: ...

    @property
    def port(self) -> int: ...


class ProcessConnection(Protocol):
    """One of Process.net_connections()'s pconn tuples (no pid: it is the process's)."""

    @property
    def family(self) -> int: ...

    @property
    def type(self) -> int: ...

    # () when there is no address: psutil's own typing of these fields is that loose.
    @property
    def laddr(self) -> Any: ...

    @property
    def raddr(self) -> Any: ...

    @property
    def status(self) -> str: ...


class Connection(ProcessConnection, Protocol):
    """One of psutil.net_connections()'s sconn tuples."""

    @property
    def pid(self) -> int | None: ...


class MemoryInfo(Protocol):
    """Process.memory_info()'s tuple (only rss is read)."""

    @property
    def rss(self) -> int: ...


class ProcessReader(Protocol):
    """What the sampler reads of a process: psutil.Process, or procps.Process (Linux)."""

    @property
    def pid(self) -> int: ...

    def oneshot(self) -> AbstractContextManager[Any]: ...

    def create_time(self) -> float: ...

    def name(self) -> str: ...

    def ppid(self) -> int: ...

    def username(self) -> str: ...

    def exe(self) -> str: ...

    def cmdline(self) -> list[str]: ...

    def cwd(self) -> str: ...

    def status(self) -> str: ...

    def memory_info(self) -> MemoryInfo: ...

    def cpu_percent(self, interval: float | None = None) -> float: ...


class Process(ProcessReader, Protocol):
    """psutil.Process, as far as portside calls it."""

    def parents(self) -> Sequence[Process]: ...

    def send_signal(self, sig: int) -> None: ...

    def net_connections(self, kind: str = "inet") -> Sequence[ProcessConnection]: ...


class ListedProcess(Process, Protocol):
    """A process from process_iter(attrs): the attributes asked for are in .info."""

    info: dict[str, Any]


class ProcessSource(Protocol):
    """Where the sampler reads processes from: the psutil module, or procps (Linux)."""

    # Read-only: the module's exception classes are subclasses of these.
    @property
    def NoSuchProcess(self) -> type[Exception]: ...

    @property
    def AccessDenied(self) -> type[Exception]: ...

    @property
    def ZombieProcess(self) -> type[Exception]: ...

    def Process(self, pid: int) -> ProcessReader: ...


class Psutil(ProcessSource, Protocol):
    """The psutil module: what portside.system reads the machine with elsewhere."""

    def Process(self, pid: int) -> Process: ...

    def net_connections(self, kind: str = "inet") -> Iterable[Connection]: ...

    def process_iter(self, attrs: list[str]) -> Iterator[ListedProcess]: ...

