"""A warm sampler in its own process, driven line by line: for tests that change what the
process may do (its descriptor limit) between samples.

Each line on stdin is a list of ports and local addresses; the answer, one JSON line:
for each of the listening sockets on them its holders, the sample's notes for those
sockets, how many have owner unknown, how many have no holder, and `free_fd`, the lowest
descriptor number the process would get next.
"""

from __future__ import annotations

import json
import os
import sys

from portside.model import owner_unknown
from portside.report import sample_notes
from portside.system.sampler import Sampler


def main() -> None:
    sampler = Sampler()
    for line in sys.stdin:
        ports = {int(p) for p in line.split() if p.isdigit()}
        addrs = {a for a in line.split() if not a.isdigit()}
        snap = sampler.sample()
        mine = [s for s in snap.sockets if s.state == "LISTEN"
                and (s.lport in ports or s.laddr in addrs)]
        fd = os.dup(0)
        os.close(fd)
        print(json.dumps({
            "holders": {s.lport: list(s.holders) for s in mine},
            "unknown": sum(1 for s in mine if owner_unknown(s, snap.gaps)),
            "no_holder": sum(1 for s in mine if not s.holders),
            "notes": sample_notes(mine, snap.gaps),
            "free_fd": fd,
        }), flush=True)


if __name__ == "__main__":
    main()
