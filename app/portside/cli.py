"""The command line: `portside` (the dashboard) and the one-shot list / why / kill / wait.

The one-shot commands never import Textual: they must start fast and work over ssh pipes.
Exit codes: 0 success, 1 the condition does not hold (still held, timeout, refused,
cannot bind), 2 bad arguments or refused without a terminal, 3 nothing matched.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NoReturn, TextIO

from . import __version__, model
from .fmt import format_duration, format_endpoint, join_cmdline, safe_text
from .model import LISTEN, TIME_WAIT, Snapshot, Socket
from .query import SYNTAX_HELP, QueryError, parse
from .report import diagnosis_lines

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_MATCH, EXIT_INTERNAL = 0, 1, 2, 3, 70
COMMANDS = ("list", "why", "kill", "wait")
SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "HUP": signal.SIGHUP,
           "KILL": signal.SIGKILL}


class UsageError(Exception):
    """Bad arguments found after parsing; exit 2."""


# Argument types -------------------------------------------------------------------------


def port_arg(text: str) -> int:
    """A port, as 3000 or :3000."""
    body = text[1:] if text.startswith(":") else text
    if not body.isdigit() or not body.isascii():
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected a number 1-65535")
    port = int(body)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: must be 1-65535")
    return port


def duration_arg(text: str) -> float:
    """A duration in seconds: finite and not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: must be a finite number of seconds >= 0")
    return value


def interval_arg(text: str) -> float:
    """The dashboard's refresh interval: 0.5 to 3600 seconds."""
    value = duration_arg(text)
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"invalid interval {text!r}: must be 0.5 to 3600 s")
    return value


def signal_arg(text: str) -> int:
    """TERM, INT, HUP or KILL (with or without SIG, any case)."""
    name = text.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise argparse.ArgumentTypeError(
            f"invalid signal {text!r}: choose from {', '.join(SIGNALS)}")
    return SIGNALS[name]


def target_arg(text: str) -> tuple[str, int]:
    """A kill target: :PORT or a PID."""
    if text.startswith(":"):
        return ("port", port_arg(text))
    if not text.isdigit() or not text.isascii():
        raise argparse.ArgumentTypeError(f"invalid target {text!r}: expected :PORT or a PID")
    pid = int(text)
    if pid <= 0 or pid > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"invalid target {text!r}: not a valid PID")
    return ("pid", pid)


# Parsers ---------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with our message format."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _dashboard_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="portside",
        description="A live dashboard of the network ports on this machine. "
        "Commands: list, why, kill, wait (portside COMMAND --help).",
        epilog="filter syntax:\n" + SYNTAX_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="*", metavar="QUERY", help="initial filter, e.g. :3000")
    p.add_argument("--interval", type=interval_arg, default=2.0, metavar="S",
                   help="refresh interval in seconds, 0.5-3600 (default 2)")
    p.add_argument("--watch", type=port_arg, action="append", default=[], metavar=":PORT",
                   help="notify when this port is freed or taken (repeatable)")
    p.add_argument("--version", action="version", version=f"portside {__version__}")
    return p


def _command_parser(command: str) -> argparse.ArgumentParser:
    prog = f"portside {command}"
    if command == "list":
        p = _Parser(prog=prog, description="List listening, UDP and TIME_WAIT sockets "
                    "with their processes.", epilog="filter syntax:\n" + SYNTAX_HELP,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("query", nargs="*", metavar="QUERY", help="filter, e.g. :3000 proc:node")
        p.add_argument("--all", action="store_true", help="every TCP state, not only "
                       "LISTEN and TIME_WAIT")
        p.add_argument("--json", action="store_true", help="one JSON array on stdout")
    elif command == "why":
        p = _Parser(prog=prog, description="Why does bind() on PORT fail (EADDRINUSE)? "
                    "Exit 0 when it can be bound now without SO_REUSEADDR, 1 otherwise.")
        p.add_argument("port", type=port_arg, metavar="PORT")
        p.add_argument("--json", action="store_true", help="the diagnosis as JSON")
    elif command == "kill":
        p = _Parser(prog=prog, description="Stop the processes holding a port (:PORT) or "
                    "the given PIDs: signal, wait up to --grace for the port to be free, "
                    "SIGKILL the rest only with --force. Exit 0 freed, 1 still held or "
                    "refused, 2 usage, 3 nothing matched.")
        p.add_argument("targets", nargs="+", type=target_arg, metavar="TARGET",
                       help=":PORT or PID")
        p.add_argument("--signal", type=signal_arg, default=signal.SIGTERM,
                       metavar="TERM|INT|HUP|KILL", help="the first signal (default TERM)")
        p.add_argument("--grace", type=duration_arg, default=5.0, metavar="S",
                       help="seconds to wait for the port to be free (default 5)")
        p.add_argument("--force", action="store_true", help="SIGKILL what is left after "
                       "the grace period")
        p.add_argument("--yes", "-y", action="store_true", help="do not ask")
        p.add_argument("--dry-run", action="store_true", help="show the targets, send nothing")
    else:
        p = _Parser(prog=prog, description="Wait until PORT is free (no listener) or "
                    "listened on. Exit 0 when it is, 1 on timeout.")
        p.add_argument("port", type=port_arg, metavar=":PORT")
        mode = p.add_mutually_exclusive_group(required=True)
        mode.add_argument("--free", action="store_true", help="until nothing listens")
        mode.add_argument("--listening", action="store_true", help="until something listens")
        p.add_argument("--timeout", type=duration_arg, default=None, metavar="S",
                       help="give up after S seconds (default: never)")
    p.add_argument("--version", action="version", version=f"portside {__version__}")
    return p


def _parse(parser: argparse.ArgumentParser, argv: list[str], query: bool) -> argparse.Namespace:
    """Parse; where a query is taken, `-term` (a negated filter term) is not an option."""
    if not query:
        return parser.parse_args(argv)
    args, extra = parser.parse_known_args(argv)
    for token in extra:
        if token.startswith("--") or not token.startswith("-"):
            parser.error(f"unrecognized arguments: {token}")
    args.query = [*args.query, *extra]
    return args


# list -----------------------------------------------------------------------------------


def socket_json(sock: Socket, snap: Snapshot) -> dict[str, Any]:
    """One socket as the documented JSON object."""
    proc = snap.process(sock.pid)
    return {
        "proto": sock.proto,
        "family": sock.family,
        "local_address": sock.laddr,
        "local_port": sock.lport,
        "remote_address": sock.raddr,
        "remote_port": sock.rport,
        "state": sock.state,
        "pid": sock.pid,
        "holders": list(sock.pids),
        "process": proc.name if proc else None,
        "user": sock.user,
        "cmdline": list(proc.cmdline) if proc and proc.cmdline is not None else None,
        "time_left": round(sock.time_left, 3) if sock.time_left is not None else None,
        "time_left_exact": sock.time_left_exact,
    }


# A TIME_WAIT socket's JSON: every field is ours (addresses as ipaddress prints them,
# numbers, fixed words), so the bulk of a busy machine's sockets skips the json module.
# "%.3f" prints the number round(x, 3) is.
_TW_JSON = ('{"proto":"%s","family":"%s","local_address":"%s","local_port":%d,'
            '"remote_address":"%s","remote_port":%d,"state":"TIME_WAIT","pid":null,'
            '"holders":[],"process":null,"user":null,"cmdline":null,"time_left":%.3f,'
            '"time_left_exact":%s}')


def json_lines(socks: list[Socket], snap: Snapshot) -> str:
    """The `list --json` document: one object per line."""
    fmt, dumps, TW = _TW_JSON, json.dumps, TIME_WAIT
    lines = [
        fmt % (s[0], s[1], s[2], s[3], s[4], s[5], s[12], "true" if s[13] else "false")
        if s[6] == TW and s[4] is not None and s[12] is not None
        else dumps(socket_json(s, snap))
        for s in socks]
    if not lines:
        return "[]\n"
    # Brackets on the first and last lines: no copies of a document of megabytes.
    lines[0] = "[" + lines[0]
    lines[-1] += "]\n"
    return ",\n".join(lines)


_STATE_ORDER = {LISTEN: 0, "NONE": 1, TIME_WAIT: 3}


def _sorted(socks: list[Socket]) -> list[Socket]:
    order = _STATE_ORDER.get
    # Tuple indexes, not properties: this sorts every socket of a busy machine.
    return sorted(socks, key=lambda s: (s[3], order(s[6], 2), s[0], s[1], s[2], s[5] or 0,
                                        s[4] or ""))


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _time_cell(sock: Socket, snap: Snapshot) -> str:
    if sock.time_left is not None:
        return ("" if sock.time_left_exact else "~") + format_duration(sock.time_left) + " left"
    proc = snap.process(sock.pid)
    if proc is not None:
        return "up " + format_duration(snap.taken_at - proc.create_time)
    return ""


def _list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # One listing allocates a tuple per socket and makes no cycles: without the cyclic
    # collector walking them again and again, 50k sockets list about 8% faster.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _list_sockets(args, out, err)
    finally:
        if collecting:
            gc.enable()


def _list_sockets(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .system.procinfo import current_user
    from .system.sampler import Sampler

    query = parse(args.query, me=current_user())
    snap = Sampler(all_states=args.all).sample()
    socks = query.filter(snap)
    if args.json:
        # One object per line, in port order (a cheap sort), out in one write: at 50k
        # sockets json.dump(indent=...) alone would take seconds.
        socks.sort(key=itemgetter(3))
        text = json_lines(socks, snap)
        out.flush()
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(text.encode("utf-8"))
            buffer.flush()
        else:
            out.write(text)
    elif socks:
        rows = [["PROTO", "LOCAL", "REMOTE", "STATE", "PID", "PROCESS", "USER", "TIME"]]
        for s in _sorted(socks):
            proc = snap.process(s.pid)
            pid = "" if s.pid is None else str(s.pid)
            if len(s.pids) > 1:
                pid += f" +{len(s.pids) - 1}"
            unknown = s.state != TIME_WAIT and not s.pids
            rows.append([
                s.proto_label, format_endpoint(s.laddr, s.lport),
                format_endpoint(s.raddr, s.rport or 0) if s.raddr else "*",
                s.state if s.proto == "tcp" else "UNCONN" if not s.raddr else "ESTAB",
                "?" if unknown else pid,
                "?" if unknown else safe_text(proc.name) if proc else "",
                safe_text(s.user or ""), _time_cell(s, snap),
            ])
        _table(rows, out)
    else:
        err.write("no sockets match\n" if query.terms else "no sockets\n")
    for note in snap.gaps.notes:
        err.write(f"note: {note}\n")
    return EXIT_OK


# why ------------------------------------------------------------------------------------


def _why(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .system.probe import diagnose
    from .system.sampler import Sampler

    snap = Sampler(all_states=True).sample()
    d = diagnose(args.port, snap)
    if args.json:
        json.dump({
            "port": d.port,
            "can_bind": d.can_bind,
            "can_bind_with_reuseaddr": d.can_bind_reuse,
            "listeners": [socket_json(s, snap) for s in d.listeners],
            "udp": [socket_json(s, snap) for s in d.udp],
            "holders": [{"pid": p.pid, "process": p.name, "user": p.username,
                         "cmdline": list(p.cmdline) if p.cmdline is not None else None}
                        for p in d.holders],
            "unknown_holders": d.unknown_holders,
            "time_wait": d.time_wait,
            "time_wait_last_expiry": d.time_wait_last,
            "time_wait_exact": d.time_wait_exact,
            "other_states": dict(d.others),
            "binds": [{"address": b.address, "reuseaddr": b.reuseaddr, "ok": b.ok,
                       "error": b.error} for b in d.binds],
            "verdict": list(d.verdict),
        }, out, indent=1)
        out.write("\n")
        return EXIT_OK if d.can_bind else EXIT_FAIL
    out.write("\n".join(diagnosis_lines(d)) + "\n")
    for note in snap.gaps.notes:
        err.write(f"note: {note}\n")
    return EXIT_OK if d.can_bind else EXIT_FAIL


# kill -----------------------------------------------------------------------------------


def _describe_target(t: Any, snap: Snapshot, ports: list[int], out: TextIO) -> None:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.create_time))
    up = format_duration(time.time() - t.create_time)
    on = f"  port {', '.join(str(p) for p in ports)}" if ports else ""
    out.write(f"  PID {t.pid}  {safe_text(t.name)}  user {safe_text(t.username or '?')}  "
              f"started {started} (up {up}){on}\n")
    if t.cmdline:
        out.write(f"      {safe_text(join_cmdline(t.cmdline))}\n")


def _confirm(question: str, stdin: TextIO, out: TextIO) -> bool:
    out.write(f"{question} [y/N] ")
    out.flush()
    try:
        answer = stdin.readline()
    except (EOFError, KeyboardInterrupt):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _kill(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from .system import control
    from .system.pidfds import REGISTRY
    from .system.sampler import Sampler

    sampler = Sampler(pidfds=REGISTRY)  # a pidfd for every holder, while it is listed
    snap = sampler.sample()
    ports = sorted({v for k, v in args.targets if k == "port"})
    pids = sorted({v for k, v in args.targets if k == "pid"})
    plans = [control.plan_port(p, snap) for p in ports]
    targets: dict[int, model.Target] = {}
    ports_of: dict[int, list[int]] = {}
    refused: dict[int, str] = {}
    matched = False
    for plan in plans:
        if plan.empty:
            err.write(f"port {plan.port}: nothing listens on it\n")
            continue
        matched = True
        for t in plan.targets:
            targets[t.pid] = t
            ports_of.setdefault(t.pid, []).append(plan.port)
        for pid, why in plan.refused:
            refused[pid] = why
        if plan.unknown:
            hint = "run with sudo to see and stop it" if not snap.gaps.is_root else (
                "its process's files cannot be read")
            err.write(f"port {plan.port}: {plan.unknown} listening socket(s) held by a process "
                      f"portside cannot see: {hint}\n")
    for pid in pids:
        target = control.target_of(pid)
        if target is None:
            err.write(f"PID {pid}: no such process\n")
            continue
        matched = True
        refusal = control.refusal(pid)
        if refusal is not None:
            refused[pid] = refusal
        else:
            targets.setdefault(pid, target)
    if not matched:
        err.write("nothing matched\n")
        return EXIT_NO_MATCH
    for _pid, why in sorted(refused.items()):
        err.write(f"refused: {why}\n")
    if not targets:
        err.write("no process to signal\n")
        return EXIT_FAIL
    sig_name = control.signal_name(args.signal)
    out.write(f"{'Would send' if args.dry_run else 'Will send'} {sig_name} to "
              f"{len(targets)} process(es):\n")
    for t in targets.values():
        _describe_target(t, snap, ports_of.get(t.pid, []), out)
    if args.dry_run:
        out.write("dry run: nothing sent\n")
        return EXIT_OK
    if not args.yes:
        if not stdin.isatty():
            err.write("refusing to signal without confirmation: no terminal to ask on "
                      "(add --yes)\n")
            return EXIT_USAGE
        if not _confirm(f"Send {sig_name}?", stdin, out):
            out.write("cancelled: nothing sent\n")
            return EXIT_FAIL
    return _execute(args, sampler, list(targets.values()), ports, pids, out, err)


def _execute(args: argparse.Namespace, sampler: Any, targets: list[Any], ports: list[int],
             pids: list[int], out: TextIO, err: TextIO) -> int:
    from .system import control

    tick = _ticker(err, ports, pids)
    awaited = [t for t in targets if t.pid in pids]
    res = control.stop(targets, args.signal, args.grace, args.force, ports, awaited,
                       sampler, tick)
    if tick is not None:
        err.write("\r\x1b[K")
    for r in res.results:
        out.write(f"  PID {r.target.pid}: {r.message}\n")
    if res.killed:
        out.write(f"still there after {args.grace:g}s: sending SIGKILL\n")
    for r in res.killed:
        out.write(f"  PID {r.target.pid}: {r.message}\n")
    for port in ports:
        free, holders, _unknown = res.ports.get(port, (True, [], 0))
        if free:
            out.write(f"port {port}: freed\n")
        else:
            who = ", ".join(str(p) for p in holders) or "a process portside cannot see"
            out.write(f"port {port}: still held by PID {who}\n")
    for t in awaited:
        out.write(f"PID {t.pid}: {'still running' if t in res.alive else 'exited'}\n")
    denied = [r.target.pid for r in res.results if r.outcome == model.DENIED]
    if denied:
        err.write(f"permission denied for PID {', '.join(map(str, denied))}: "
                  "they belong to another user; try: sudo portside kill ...\n")
    # --force helps only where a process we signalled still holds on: never after a
    # refusal, a permission error or a reused PID (nothing was sent to those).
    signalled = {r.target.pid for r in res.results if r.outcome == model.SENT}
    holding = {p for state in res.ports.values() for p in state[1]} | \
        {t.pid for t in res.alive}
    if not res.ok and not args.force and args.signal != signal.SIGKILL and signalled & holding:
        err.write("add --force to send SIGKILL to what is left\n")
    return EXIT_OK if res.ok else EXIT_FAIL


def _ticker(err: TextIO, ports: list[int], pids: list[int]) -> Callable[[float], None] | None:
    if not err.isatty():
        return None
    what = ", ".join([f"port {p}" for p in ports] + [f"PID {p}" for p in pids])

    def tick(left: float) -> None:
        err.write(f"\r\x1b[Kwaiting for {what}: {left:4.1f}s left")
        err.flush()

    return tick


# wait -----------------------------------------------------------------------------------


def _wait(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .system import control
    from .system.sampler import Sampler

    sampler = Sampler()

    def holds() -> bool:
        free = control.port_state(args.port, sampler)[0]
        return free if args.free else not free

    timeout = math.inf if args.timeout is None else args.timeout
    deadline = time.monotonic() + timeout
    while not holds():
        left = deadline - time.monotonic()
        if left <= 0:
            err.write(f"timed out: port {args.port} is still "
                      f"{'in use' if args.free else 'not listened on'}\n")
            return EXIT_FAIL
        time.sleep(min(0.2, left))
    out.write(f"port {args.port} is {'free' if args.free else 'listened on'}\n")
    return EXIT_OK


# entry point ------------------------------------------------------------------------------


def run(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """Parse and run one command; returns the exit code."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        command = argv[0]
        args = _parse(_command_parser(command), argv[1:], command == "list")
        try:
            if command == "list":
                return _list(args, out, err)
            if command == "why":
                return _why(args, out, err)
            if command == "kill":
                return _kill(args, out, err, stdin)
            return _wait(args, out, err)
        except QueryError as exc:
            err.write(f"portside {command}: invalid filter: {exc}\n")
            return EXIT_USAGE
    args = _parse(_dashboard_parser(), argv, True)
    try:
        from .system.procinfo import current_user

        parse(args.query, me=current_user())
    except QueryError as exc:
        err.write(f"portside: invalid filter: {exc}\n")
        return EXIT_USAGE
    return _dashboard(args, err)


def _dashboard(args: argparse.Namespace, err: TextIO) -> int:
    # Textual is imported only here: the one-shot commands stay light.
    from .system.backend import LiveBackend
    from .ui.app import PortsideApp

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        err.write("portside: the dashboard needs a terminal; for scripts use "
                  "`portside list` (see portside --help)\n")
        return EXIT_USAGE
    app = PortsideApp(LiveBackend(), query=list(args.query), interval=args.interval,
                      watch=args.watch)
    app.run()
    if app.crash is not None:
        err.write(f"portside: the dashboard stopped on an error: {safe_text(app.crash)}\n"
                  "(PORTSIDE_DEBUG=1 shows the traceback; please report it)\n")
        return EXIT_INTERNAL
    return app.return_code or EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: never lets a traceback reach the user."""
    try:
        return run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr, sys.stdin)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except OSError as exc:
        sys.stderr.write(f"portside: {exc.strerror or exc}"
                         f"{': ' + str(exc.filename) if exc.filename else ''}\n")
        return EXIT_FAIL
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    except Exception as exc:  # the last line of defence: a message, never a traceback
        sys.stderr.write(f"portside: internal error: {type(exc).__name__}: {exc}\n"
                         "please report this with the command you ran\n")
        return EXIT_INTERNAL


def entry() -> NoReturn:
    """The console script and `python -m portside`: main(), then exit."""
    code = main()
    if sys.argv[1:2] == ["list"]:
        # Nothing is left to clean up (output written, children waited for), and freeing
        # a big sample object by object at interpreter exit takes ~10 ms per 15k sockets.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
