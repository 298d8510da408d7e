"""Process details (psutil, or /proc directly on Linux), cached by (pid, create_time)
and pruned every sample."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ..model import ProcessInfo
from .holders import fault_text

if TYPE_CHECKING:
    from .psapi import ProcessReader, ProcessSource, Psutil

T = TypeVar("T")


def user_name(uid: int | None, _cache: dict[int, str] = {}) -> str | None:  # noqa: B006
    """The login name for a uid, or the number as text when it has none."""
    if uid is None:
        return None
    name = _cache.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            name = str(uid)
        _cache[uid] = name
    return name


def current_user() -> str:
    """Who we run as."""
    return user_name(os.geteuid()) or str(os.geteuid())


def psutil_module() -> Psutil:
    """psutil, imported when first asked for (~15 ms: off the listing's path on Linux)."""
    import psutil
    return psutil


def default_source() -> ProcessSource:
    """/proc read directly on Linux (psutil's import is most of a one-shot command's
    time), psutil elsewhere."""
    if sys.platform.startswith("linux"):
        from . import procps
        return procps
    return psutil_module()


def read_or_none(fn: Callable[[], T], errors: tuple[type[BaseException], ...]) -> T | None:
    """fn(), or None when it raises one of `errors` (the process is gone or will not
    tell)."""
    try:
        return fn()
    except errors:
        return None


class ProcessCache:
    """Keeps a Process per (pid, create_time); static details are read once.

    A process that cannot be read for a reason other than "gone" or "denied" (no
    descriptors left, /proc/stat unreadable) is a fault, kept in `faults` for the sample:
    it is shown as last read, if it was, and never silently dropped as exited.
    """

    def __init__(self, ps: ProcessSource | None = None) -> None:
        # psutil, procps, or a psutil-shaped fake in tests
        self.ps = ps = ps if ps is not None else default_source()
        self._gone = (ps.NoSuchProcess, ps.AccessDenied)
        self._errors = (ps.NoSuchProcess, ps.AccessDenied, ps.ZombieProcess, OSError)
        self._procs: dict[int, tuple[ProcessReader, ProcessInfo]] = {}
        self.faults: dict[int, str] = {}  # pid -> why it could not be read, this sample

    def collect(self, pids: Iterable[int], ancestors: bool = False) -> dict[int, ProcessInfo]:
        """Details for these PIDs (and their parent chains); vanished ones are left out."""
        out: dict[int, ProcessInfo] = {}
        self.faults = {}
        pending = set(pids)
        dynamic = True  # status, memory and CPU: for the holders, not for their parents
        for _ in range(64):  # parent chains are short; the bound guards against cycles
            for pid in pending:
                info = self._one(pid, dynamic)
                if info is not None:
                    out[pid] = info
            if not ancestors:
                break
            pending = {i.ppid for i in out.values() if i.ppid and i.ppid not in out} - pending
            dynamic = False
            if not pending:
                break
        # Prune: only what this sample needed stays cached.
        for pid in set(self._procs) - set(out):
            del self._procs[pid]
        return out

    def _one(self, pid: int, dynamic: bool = True) -> ProcessInfo | None:
        try:
            return self._read(pid, dynamic)
        except self._gone:
            self._procs.pop(pid, None)
            return None
        except (OSError, RuntimeError) as exc:  # psutil's "line not found" is RuntimeError
            self.faults[pid] = fault_text(exc)
            cached = self._procs.get(pid)
            return cached[1] if cached is not None else None

    def _read(self, pid: int, dynamic: bool) -> ProcessInfo:
        proc = self.ps.Process(pid)
        ctime = proc.create_time()
        cached = self._procs.get(pid)
        if cached is not None and cached[1].create_time == ctime:
            proc, base = cached
            if not dynamic:
                return base
            with_dynamic = self._dynamic(proc, base)
            self._procs[pid] = (proc, with_dynamic)
            return with_dynamic
        with proc.oneshot():
            try:
                name = proc.name()
            except self.ps.AccessDenied:
                name = "?"
            def read(fn: Callable[[], T]) -> T | None:
                return read_or_none(fn, self._errors)

            base = ProcessInfo(
                pid=pid,
                ppid=read(proc.ppid),
                name=name,
                create_time=ctime,
                username=read(proc.username),
                exe=read(proc.exe) or None,
                cmdline=_tuple(read(proc.cmdline)),
                cwd=read(proc.cwd),
                unit=cgroup_unit(pid),
            )
            read(lambda: proc.cpu_percent(None))  # primes the next reading
        info = self._dynamic(proc, base)
        self._procs[pid] = (proc, info)
        return info

    def _dynamic(self, proc: ProcessReader, base: ProcessInfo) -> ProcessInfo:
        try:
            with proc.oneshot():
                status = proc.status()
                rss = proc.memory_info().rss
                cpu = proc.cpu_percent(None)
        except self._errors:
            return base
        return base._replace(status=status, rss=rss, cpu_percent=cpu)


def split_stat(data: bytes) -> tuple[bytes, list[bytes]]:
    """/proc/PID/stat as (name, the fields after it: state, ppid, pgrp, ...)."""
    # The name is in parentheses and may hold anything, ")" too: cut at the last one.
    end = data.rfind(b")")
    return data[data.find(b"(") + 1:end], data[end + 2:].split()


def stat_fields(pid: int, root: str = "/proc") -> list[bytes] | None:
    """The fields of /proc/PID/stat after the name: state, ppid, pgrp, session, tty_nr,
    ... (None when the process is gone)."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return split_stat(data)[1]


def cgroup_unit(pid: int, root: str = "/proc") -> str | None:
    """The systemd unit or container a process runs in, read from its cgroup (Linux)."""
    try:
        with open(f"{root}/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        path = line.split(":", 2)[-1]
        parts = [p for p in path.split("/") if p]
        for part in reversed(parts):
            if part.startswith("docker-") or (len(part) == 64 and parts[0] == "docker"):
                return "docker " + part.removeprefix("docker-").removesuffix(".scope")[:12]
            if part.endswith((".service", ".scope")) and not part.startswith("session-"):
                return part
    return None


def _tuple(value: Iterable[object] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v) for v in value)
