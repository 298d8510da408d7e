"""The command line: `portside` (the dashboard) and the one-shot list / why / kill / wait.

The one-shot commands never import Textual: they must start fast and work over ssh pipes.
Exit codes: 0 success, 1 the condition does not hold (still held, timeout, refused,
cannot bind), 2 bad arguments or refused without a terminal, 3 nothing matched, 70 an
internal error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from ..query import QueryError, parse
from .args import COMMANDS, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, command_parser, dashboard_parser
from .args import parse as parse_args
from .output import json_lines, socket_json

__all__ = ["entry", "json_lines", "main", "run", "socket_json"]


def run(argv: Sequence[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """Parse and run one command; returns the exit code."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        command = argv[0]
        args = parse_args(command_parser(command), argv[1:], command == "list")
        # Each command's module is imported when it runs: `list` starts without the rest.
        try:
            if command == "list":
                from . import listing
                return listing.run(args, out, err)
            if command == "why":
                from . import why
                return why.run(args, out, err)
            if command == "kill":
                from . import kill
                return kill.run(args, out, err, stdin)
            from . import wait
            return wait.run(args, out, err)
        except QueryError as exc:
            err.write(f"portside {command}: invalid filter: {exc}\n")
            return EXIT_USAGE
    args = parse_args(dashboard_parser(), argv, True)
    try:
        from ..system.procinfo import current_user

        parse(args.query, me=current_user())
    except QueryError as exc:
        err.write(f"portside: invalid filter: {exc}\n")
        return EXIT_USAGE
    from . import dashboard
    return dashboard.run(args, err)


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
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    except Exception as exc:  # the last line of defence: a message, never a traceback
        sys.stderr.write(f"portside: internal error: {type(exc).__name__}: {exc}\n"
                         "please report this with the command you ran\n")
        return EXIT_INTERNAL


def fast_exit(code: int) -> NoReturn:
    """Exit without freeing the sample object by object.

    Nothing is left to clean up after `list` (output written, children waited for), and
    freeing a big sample at interpreter exit takes ~10 ms per 15k sockets (`make bench`).
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def entry() -> NoReturn:
    """The console script and `python -m portside`: main(), then exit."""
    code = main()
    if sys.argv[1:2] == ["list"]:
        fast_exit(code)
    sys.exit(code)
