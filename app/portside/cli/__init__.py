"""The command line: `portside` (the dashboard) and the one-shot list / why / kill / free /
wait.

The one-shot commands never import Textual: they must start fast and work over ssh pipes.
Exit codes: 0 success, 1 the condition does not hold (still held, timeout, refused,
cannot bind), 2 bad arguments or refused without a terminal, 3 nothing matched, 4 freed
but taken again (something restarts it), 69 the socket tables cannot be read, 70 an
internal error, 71 another system error, 74 the output cannot be written, 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TextIO

from ..query import QueryError, parse
from .args import (
    COMMANDS,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_OSERR,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    plain_list_args,
)
from .output import json_lines, socket_json

if TYPE_CHECKING:
    from argparse import Namespace

__all__ = ["entry", "json_lines", "main", "run", "socket_json"]


def run(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """Parse and run one command; returns the exit code."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        command = argv[0]
        try:
            return _command(command, argv[1:], out, err, stdin)
        except QueryError as exc:
            err.write(f"portside {command}: invalid filter: {exc}\n")
            return EXIT_USAGE
    from .parsers import dashboard_parser, parse_args

    args = parse_args(dashboard_parser(), argv, True)
    try:
        from ..system.procinfo import current_user

        parse(args.query, me=current_user())
    except QueryError as exc:
        err.write(f"portside: invalid filter: {exc}\n")
        return EXIT_USAGE
    from . import dashboard
    return dashboard.run(args, err)


def _command(command: str, argv: list[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """One one-shot command. Each command's module is imported when it runs, and plain
    `list` arguments are read without a parser: `list` starts without the rest."""
    if command == "list":
        from . import listing

        plain = plain_list_args(argv)
        return listing.run(plain if plain is not None else _parsed(command, argv), out, err)
    args = _parsed(command, argv)
    if command == "why":
        from . import why
        return why.run(args, out, err)
    if command == "kill":
        from . import kill
        return kill.run(args, out, err, stdin)
    if command == "free":
        from . import free
        return free.run(args, out, err, stdin)
    from . import wait
    return wait.run(args, out, err)


def _parsed(command: str, argv: list[str]) -> Namespace:
    from .parsers import command_parser, parse_args

    return parse_args(command_parser(command), argv, command == "list")


# Errors of writing to a stream (as opposed to reading the machine).
_OUTPUT_ERRNOS = frozenset({errno.EBADF, errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _say(text: str) -> None:
    """A message on stderr, if there is a stderr to write to."""
    try:
        if sys.stderr is not None:
            sys.stderr.write(text)
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _prepare_streams() -> bool:
    """Make the standard streams safe to use; False when there is no stdout to write to.

    Whatever the locale or PYTHONIOENCODING, text that cannot be encoded is written as
    escapes, never an error. A closed stdin reads as empty: no terminal to ask on.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass
    if sys.stdin is None:
        sys.stdin = io.StringIO()
    return sys.stdout is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: never lets a traceback reach the user."""
    if not _prepare_streams():
        _say("portside: standard output is closed: nothing was done (run it with stdout "
             "open, e.g. `> FILE`)\n")
        return EXIT_IO
    try:
        return run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr, sys.stdin)
    except KeyboardInterrupt:
        _say("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except OSError as exc:
        return _os_error(exc)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    except Exception as exc:  # the last line of defence: a message, never a traceback
        _say(f"portside: internal error: {type(exc).__name__}: {exc}\n"
             "please report this with the command you ran\n")
        return EXIT_INTERNAL


def _os_error(exc: OSError) -> int:
    """The message and exit code for an error of the system, never a traceback."""
    from ..system.kernel import KernelUnavailable

    where = f": {exc.filename}" if exc.filename else ""
    if isinstance(exc, KernelUnavailable):
        _say(f"portside: cannot read this machine's sockets: {exc}\n")
        return EXIT_UNAVAILABLE
    if exc.errno in _OUTPUT_ERRNOS:
        _say(f"portside: cannot write the output: {exc.strerror or exc}{where}\n")
        return EXIT_IO
    _say(f"portside: {exc.strerror or exc}{where}\n")
    return EXIT_OSERR


def fast_exit(code: int) -> NoReturn:
    """Exit without freeing the sample object by object.

    Nothing is left to clean up after `list` (output written, children waited for), and
    freeing a big sample at interpreter exit takes ~10 ms per 15k sockets (`make bench`).
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            if code == EXIT_OK:  # the output did not all get out
                code = EXIT_IO
    os._exit(code)


def entry() -> NoReturn:
    """The console script and `python -m portside`: main(), then exit."""
    code = main()
    if sys.argv[1:2] == ["list"]:
        fast_exit(code)
    sys.exit(code)
