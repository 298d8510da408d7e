"""`portside wait :PORT --free | --listening`."""

from __future__ import annotations

import argparse
import math
import time
from typing import TextIO

from ..actions import newcomers
from .args import EXIT_FAIL, EXIT_OK, EXIT_RETAKEN


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Poll until the port is free (for --settle seconds in a row) or listened on, or the
    timeout passes."""
    from ..system import control
    from ..system.sampler import Sampler

    sampler = Sampler(managers=True)  # who restarts a newcomer, if it comes back
    settle = args.settle if args.free else 0.0
    free_since: float | None = None  # when it was last seen becoming free
    retaken = ""  # who took it again after it was free, the last time that happened

    def holds() -> bool:
        nonlocal free_since, retaken
        held = control.port_holders(args.port, sampler)
        now = time.monotonic()
        if not args.free:
            return not held.free
        if not held.free:
            if free_since is not None:
                retaken = newcomers(held)
            free_since = None
            return False
        if free_since is None:
            free_since = now
        return now - free_since >= settle

    timeout = math.inf if args.timeout is None else args.timeout
    deadline = time.monotonic() + timeout
    while not holds():
        left = deadline - time.monotonic()
        if left <= 0:
            if retaken:
                err.write(f"timed out: port {args.port} was freed, then taken again by "
                          f"{retaken}: something restarts it\n")
                return EXIT_RETAKEN
            err.write(f"timed out: port {args.port} is still "
                      f"{'in use' if args.free else 'not listened on'}\n")
            return EXIT_FAIL
        time.sleep(min(0.1, left))
    stayed = f" (for {settle:g}s in a row)" if settle > 0 else ""
    out.write(f"port {args.port} is {'free' + stayed if args.free else 'listened on'}\n")
    return EXIT_OK
