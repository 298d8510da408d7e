"""The formatting vocabulary of the CLI and the dashboard: durations, addresses, safe text,
and the cells both draw."""

from __future__ import annotations

import re
import time
import unicodedata

from .model import TIME_WAIT, Manager, Socket, Target, is_orphan

# Bidirectional overrides and isolates can reorder what a terminal shows (Trojan Source).
_BIDI = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _visible(ch: str) -> str:
    code = ord(ch)
    if ch in _BIDI:
        return f"\\u{code:04x}"
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
        return {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\x1b": "\\e"}.get(ch, f"\\x{code:02x}")
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not UTF-8 (decoded with surrogateescape): shown as that byte. A
        # stream with errors=surrogateescape would otherwise write it raw (0x9B is CSI).
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Cn", "Zl", "Zp") or \
            _JOINERS.match(ch):
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return ch


# What joins characters into one drawn shape (joiners, variation selectors, skin tones,
# flag letters): terminals disagree on how wide the result is, so a cell holding one
# could be drawn wider than it is and overwrite its neighbour. Shown as escapes.
_JOINERS = re.compile("[\u200d\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U0001f1e6-\U0001f1ff"
                      "\U000e0100-\U000e01ef]")


def safe_text(text: str) -> str:
    """The text with control, format, bidi, unassigned and undecodable characters, and
    the joiners whose width terminals disagree on, shown as escapes."""
    if text.isascii():
        if text.isprintable():
            return text
    elif text.isprintable() and not _JOINERS.search(text):
        return text
    return "".join(_visible(ch) for ch in text)


def text_width(text: str) -> int:
    """How many terminal cells the text takes once made safe: wide (East Asian) characters
    two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def format_duration(seconds: float | None) -> str:
    """A short human duration: 0.4s, 59s, 3m05s, 2h07m, 3d04h."""
    if seconds is None:
        return ""
    if seconds != seconds or seconds < 0:  # NaN or negative
        seconds = 0.0
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_age(seconds: float | None) -> str:
    """An uptime: to the second for ten minutes, then coarser ("12m", "2h07m").

    A coarse uptime does not change every second, so an idle dashboard need not repaint.
    """
    if seconds is not None and seconds >= 600:
        return format_duration(seconds).split("m")[0] + "m" if seconds < 3600 \
            else format_duration(seconds)
    return format_duration(seconds)


def format_endpoint(addr: str, port: int) -> str:
    """addr:port, with IPv6 addresses in brackets."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def join_cmdline(cmdline: tuple[str, ...] | list[str] | None) -> str:
    """A command line as one line of text, arguments with spaces quoted."""
    if not cmdline:
        return ""
    parts = []
    end = len(cmdline)
    while end > 1 and not cmdline[end - 1]:
        end -= 1
    if len(cmdline) - end < 2:
        end = len(cmdline)  # one empty argument is an argument; a run of them is the
        # padding a process that rewrote its title leaves (npm, pm2)
    for arg in cmdline[:end]:
        parts.append(repr(arg) if (not arg or any(c.isspace() for c in arg)) else arg)
    return " ".join(parts)


# The cells the CLI table and the dashboard both draw -------------------------------------


def signal_name(sig: int) -> str:
    """SIGTERM, SIGKILL, ..."""
    import signal  # its enums cost every command's start; only a signal's report needs them

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def state_cell(sock: Socket) -> str:
    """A socket's state as shown: TCP states by name, UDP as UNCONN or ESTAB (like ss)."""
    if sock.proto == "tcp":
        return sock.state
    return "ESTAB" if sock.raddr else "UNCONN"


def holders_cell(sock: Socket, sep: str = "") -> str:
    """The main holder's PID and how many more hold the socket: "3100+2"; "?" unknown."""
    if sock.pid is None:
        return "" if sock.state == TIME_WAIT or is_orphan(sock) else "?"
    more = len(sock.holders) - 1
    return f"{sock.pid}{sep}+{more}" if more > 0 else str(sock.pid)


def time_left_cell(left: float | None, exact: bool) -> str:
    """A TIME_WAIT socket's time left; "~" marks an estimate."""
    return "" if left is None else ("" if exact else "~") + format_duration(left)


def clock_time(ts: float) -> str:
    """A wall-clock time, as a start time is shown."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def describe_target(t: Target, now: float | None = None) -> tuple[str, str]:
    """A process to be signalled: its PID, name, user and start (with its uptime at the
    wall-clock `now`, if given), and its command line; all made safe."""
    up = f" (up {format_duration(now - t.create_time)})" if now is not None else ""
    head = (f"PID {t.pid}  {safe_text(t.name)}  user {safe_text(t.username or '?')}  "
            f"started {clock_time(t.create_time)}{up}")
    return head, safe_text(join_cmdline(t.cmdline) or "?")


def manager_cell(m: Manager | None, pid: bool = True) -> str:
    """Who manages a socket's holder, in a few words ("" for nobody), with its PID."""
    if m is None:
        return ""
    name = safe_text(m.name)
    # A service unit without ".service" (a socket unit keeps its suffix): the cell is
    # narrow; a holder merely started inside a unit is "in" it.
    unit = name.removesuffix(".service")
    text = {"reloader": f"reloader {name}", "prefork": f"master {name}",
            "script": name or "package script", "supervisord": f"supervisord {name}",
            "pm2": f"pm2 {name}" if name else "pm2", "loop": f"{name} loop",
            "docker": f"docker {name}" if name else "docker ?",
            "systemd": ("systemd " if m.stop else "in ") + unit if unit else "systemd ?",
            "orphan": "orphan", "unknown": "unknown"}.get(m.kind, m.kind)
    return text.strip() + (f" ({m.pid})" if pid and m.pid is not None else "")


def manager_title(m: Manager) -> str:
    """"supervisord (PID 7, program web)", "the reloader uvicorn --reload (PID 9)"."""
    pid = f"PID {m.pid}" if m.pid is not None else "no process now"
    name = safe_text(m.name)
    return {
        "reloader": f"the reloader {name} ({pid})",
        "prefork": f"the master {name} ({pid})",
        "script": f"the package script {name} ({pid})",
        "supervisord": f"supervisord ({pid}, program {name})",
        "pm2": f"pm2 ({pid}, app {name or '?'})",
        "loop": f"a {name} restart loop ({pid})",
        "docker": f"Docker (container {name or '?'})",
        "systemd": f"systemd ({pid}, unit {name or '?'})" if m.stop
        else f"a shell in unit {name or '?'}",
    }.get(m.kind, f"{m.kind} ({pid})")
