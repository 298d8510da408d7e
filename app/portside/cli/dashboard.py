"""`portside [QUERY]`: the dashboard (the only command that imports Textual)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..fmt import safe_text
from .args import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE


def run(args: argparse.Namespace, err: TextIO) -> int:
    """Run the dashboard in this terminal; exit 70 with one line if it stops on an error."""
    from ..system.backend import LiveBackend
    from ..system.kernel import check_available
    from ..ui import quiet
    from ..ui.app import PortsideApp

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        err.write("portside: the dashboard needs a terminal; for scripts use "
                  "`portside list` (see portside --help)\n")
        return EXIT_USAGE
    check_available()  # else exit 69 with the reason, before the screen is taken over
    quiet.install()  # the terminal's input thread wakes less while nobody types
    app = PortsideApp(LiveBackend(), query=list(args.query), interval=args.interval,
                      watch=args.watch, grace=args.grace, settle=args.settle,
                      handle_signals=True)
    app.run()
    if app.crash is not None:
        err.write(f"portside: the dashboard stopped on an error: {safe_text(app.crash)}\n"
                  "(PORTSIDE_DEBUG=1 shows the traceback; please report it)\n")
        return EXIT_INTERNAL
    return app.return_code or EXIT_OK
