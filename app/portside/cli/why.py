"""`portside why PORT`: why bind() fails, with the remedy."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from ..report import diagnosis_lines, sample_notes
from .args import EXIT_FAIL, EXIT_OK
from .output import diagnosis_json


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Diagnose the port; exit 0 when it can be bound now."""
    from ..system.probe import diagnose
    from ..system.sampler import Sampler

    snap = Sampler(all_states=True, managers=True, one_shot=True).sample()
    d = diagnose(args.port, snap)
    if args.json:
        json.dump(diagnosis_json(d, snap), out, indent=1)
        out.write("\n")
    else:
        out.write("\n".join(diagnosis_lines(d)) + "\n")
        on_port = [s for s in snap.sockets if s.lport == args.port]
        for note in sample_notes(on_port, snap.gaps):
            err.write(f"note: {note}\n")
    return EXIT_OK if d.can_bind else EXIT_FAIL
