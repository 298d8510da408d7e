"""The command line's exit codes and commands, and `list`'s plain arguments read without
argparse (the parsers, in .parsers, are built only for anything else)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Final

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_MATCH, EXIT_RETAKEN = 0, 1, 2, 3, 4
# From sysexits.h: the socket tables cannot be read, an internal error, another system
# error, the output cannot be written.
EXIT_UNAVAILABLE, EXIT_INTERNAL, EXIT_OSERR, EXIT_IO = 69, 70, 71, 74
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
COMMANDS: Final = ("list", "why", "kill", "free", "wait")

_LIST_FLAGS = ("--json", "--all")


def plain_list_args(argv: list[str]) -> SimpleNamespace | None:
    """`list`'s arguments when they are plain (filter words, --json, --all): what its
    parser makes of them, without making the parser, whose help formatter and messages
    load argparse, shutil, locale and gettext's catalogs. None for anything else (another
    option, a negated term, --help): the parser reads those."""
    if any(t.startswith("-") and t not in _LIST_FLAGS for t in argv):
        return None
    return SimpleNamespace(query=[t for t in argv if t not in _LIST_FLAGS],
                           all="--all" in argv, json="--json" in argv)


