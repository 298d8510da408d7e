"""Freed memory goes back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import sys

import pytest

from portside.system.memory import trimmer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def test_the_trimmer_gives_freed_heap_pages_back() -> None:
    release = trimmer()
    release()
    # 30 MB of blocks under glibc's mmap threshold come from its heap; freed below one
    # still in use, they are not returned by free() itself.
    blocks = [bytearray(60_000) for _ in range(500)]
    last = blocks[-1]
    del blocks
    before = _rss_mb()
    release()
    assert before - _rss_mb() > 10, "freed heap pages stayed resident"
    assert len(last) == 60_000
