"""`portside wait :PORT --free | --listening`."""

from __future__ import annotations

import argparse
import math
import time
from typing import TextIO

from .args import EXIT_FAIL, EXIT_OK


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Poll until the port is free (or listened on), or the timeout passes."""
    from ..system import control
    from ..system.sampler import Sampler

    sampler = Sampler()

    def holds() -> bool:
        free = control.port_holders(args.port, sampler).free
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
