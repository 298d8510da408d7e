"""The right process, every time: a PID reused within the same clock tick gets nothing.

A (pid, start time) pair has 10 ms resolution. tests/reuse_trials.py makes the reuse happen
for real (as root, through /proc/sys/kernel/ns_last_pid): process X is listed, exits, and
Y is forked with X's PID in the same tick, so Y's pair is X's. Only the pidfd captured
when X was listed tells them apart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_root

TRIALS = Path(__file__).with_name("reuse_trials.py")


@pytest.mark.parametrize("how", ["pid", "listing"])
def test_a_pid_reused_in_the_same_tick_gets_no_signal(how: str) -> None:
    require_root()
    res = subprocess.run([sys.executable, str(TRIALS), how], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["same_tick"] >= 3, summary  # the reuse really happened within the tick
    assert summary["hits"] == 0, summary  # and not one signal reached the newcomer
    assert set(summary["outcomes"]) == {"gone"}, summary
