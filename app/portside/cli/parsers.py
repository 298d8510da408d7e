"""The command line's grammar: argument types and one parser per command."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import Final, NoReturn

from .. import __version__
from ..query import SYNTAX_HELP
from .args import EXIT_USAGE

SIGNALS: Final = {"TERM": signal.SIGTERM, "INT": signal.SIGINT, "HUP": signal.SIGHUP,
                  "KILL": signal.SIGKILL}


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


def _grace(p: argparse.ArgumentParser, what: str) -> None:
    from ..actions import GRACE  # not on `list`'s way

    p.add_argument("--grace", type=duration_arg, default=GRACE, metavar="S",
                   help=f"seconds to wait for {what} (default {GRACE:g})")


def _settle(p: argparse.ArgumentParser, which: str = "") -> None:
    from ..actions import SETTLE

    p.add_argument("--settle", type=duration_arg, default=SETTLE, metavar="S",
                   help=f"{which}a freed port must stay free S seconds to count as freed "
                   f"(default {SETTLE:g}; 0: the first moment it is free)")


def _confirmed(p: argparse.ArgumentParser, force: str, dry_run: str) -> None:
    """--force, --yes and --dry-run: the options of a command that signals."""
    p.add_argument("--force", action="store_true", help=force)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p.add_argument("--dry-run", action="store_true", help=dry_run)


def dashboard_parser() -> argparse.ArgumentParser:
    """`portside [QUERY...]`: the dashboard."""
    p = _Parser(
        prog="portside",
        description="A live dashboard of the network ports on this machine. "
        "Commands: list, why, kill, free, wait (portside COMMAND --help).",
        epilog="filter syntax:\n" + SYNTAX_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", nargs="*", metavar="QUERY", help="initial filter, e.g. :3000")
    p.add_argument("--interval", type=interval_arg, default=2.0, metavar="S",
                   help="refresh interval in seconds, 0.5-3600 (default 2)")
    p.add_argument("--watch", type=port_arg, action="append", default=[], metavar=":PORT",
                   help="notify when this port is freed or taken (repeatable)")
    _grace(p, "a port to be free after SIGTERM before SIGKILL is offered")
    _settle(p)
    p.add_argument("--version", action="version", version=f"portside {__version__}")
    return p


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of one one-shot command."""
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
                    "the given PIDs: signal, wait up to --grace for the port to be free and "
                    "--settle for it to stay free, SIGKILL the rest only with --force. Exit 0 "
                    "freed, 1 still held or refused, 2 usage, 3 nothing matched, 4 freed but "
                    "taken again (something restarts it).")
        p.add_argument("targets", nargs="+", type=target_arg, metavar="TARGET",
                       help=":PORT or PID")
        p.add_argument("--signal", type=signal_arg, default=signal.SIGTERM,
                       metavar="TERM|INT|HUP|KILL", help="the first signal (default TERM)")
        _grace(p, "the port to be free")
        _settle(p)
        _confirmed(p, "SIGKILL what is left after the grace period (never a holder whose "
                   "systemd unit or container restarts it after SIGKILL)",
                   "show the targets, send nothing")
        p.add_argument("--holder-only", action="store_true",
                       help="signal a docker-proxy or a container's init itself (refused "
                       "without it: `portside free` stops the container instead)")
    elif command == "free":
        p = _Parser(prog=prog, description="Free a port for good: stop what holds it and "
                    "what brings it back (supervisord over XML-RPC, pm2 stop, docker stop "
                    "through the Engine API, systemctl stop, or SIGTERM to "
                    "the reloader, npm or shell loop first, then to the holders still holding), "
                    "then check it stays free for --settle seconds. Exit 0 freed, 1 still held "
                    "or refused, 2 usage, 3 nothing listens, 4 taken again.")
        p.add_argument("ports", nargs="+", type=port_arg, metavar=":PORT")
        _grace(p, "the port to be free")
        _settle(p)
        _confirmed(p, "SIGKILL what was signalled and is left after the grace period",
                   "show the plan, do nothing")
    else:
        p = _Parser(prog=prog, description="Wait until PORT is free (no listener, for "
                    "--settle seconds in a row) or listened on. Exit 0 when it is, 1 on "
                    "timeout, 4 on timeout after it was freed and taken again.")
        p.add_argument("port", type=port_arg, metavar=":PORT")
        mode = p.add_mutually_exclusive_group(required=True)
        mode.add_argument("--free", action="store_true", help="until nothing listens")
        mode.add_argument("--listening", action="store_true", help="until something listens")
        p.add_argument("--timeout", type=duration_arg, default=None, metavar="S",
                       help="give up after S seconds (default: never)")
        _settle(p, "--free: ")
    p.add_argument("--version", action="version", version=f"portside {__version__}")
    return p


def parse_args(parser: argparse.ArgumentParser, argv: list[str], query: bool) -> argparse.Namespace:
    """Parse; where a query is taken, `-term` (a negated filter term) is not an option."""
    if not query:
        return parser.parse_args(argv)
    # Words after an option come back as extras too (argparse fills QUERY once): they are
    # filter terms, as in `list :3000 --json proc:node`.
    args, extra = parser.parse_known_args(argv)
    for token in extra:
        if token.startswith("--"):
            parser.error(f"unrecognized arguments: {token}")
    args.query = [*args.query, *extra]
    return args
