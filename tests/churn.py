"""Process churn: short-lived children that each listen on ADDR and exit at once, so that
samplers meet sockets whose process is gone mid-sample. `python churn.py ADDR SECONDS`;
prints "ready" once churning. Bounded in time and in children alive at once."""

from __future__ import annotations

import os
import random
import socket
import sys
import time

ALIVE = 40


def main() -> None:
    addr, seconds = sys.argv[1], float(sys.argv[2])
    deadline = time.monotonic() + seconds
    children: set[int] = set()
    announced = False
    while time.monotonic() < deadline:
        while len(children) < ALIVE:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - leaves through os._exit
                try:
                    with socket.socket() as s:
                        s.bind((addr, 0))
                        s.listen(1)
                        time.sleep(random.random() * 0.02)
                finally:
                    os._exit(0)
            children.add(pid)
        pid, _ = os.wait()
        children.discard(pid)
        if not announced:
            print("ready", flush=True)
            announced = True
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
