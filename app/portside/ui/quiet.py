"""Textual's input thread, waking ten times less often while nobody types.

Textual's Linux driver reads the terminal on a thread that wakes every 0.1 s whether or
not a key came, to see whether it should stop and to time out a lone Escape: about a
fifth of what an idle dashboard costs. Its selector is swapped for one that keeps that
0.1 s while input is recent (an Escape still times out in 0.1 s, a quit key stops the
thread at once) and waits up to IDLE_WAIT after QUIET seconds without input: what then
waits longer is only a stop asked from outside (a signal), by up to IDLE_WAIT.
"""

from __future__ import annotations

import os
import selectors
import sys
import time
import types
import weakref
from collections.abc import Callable

QUIET = 2.0  # seconds without input before the thread waits longer
IDLE_WAIT = 1.0  # the longest wait then


_LIVE: weakref.WeakSet[QuietSelector] = weakref.WeakSet()


class QuietSelector(selectors.SelectSelector):
    """A SelectSelector whose timeouts grow to IDLE_WAIT after QUIET seconds of nothing;
    wake() ends such a wait at once (its own pipe, never handed to the caller)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.last_input = clock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        super().register(self._wake_r, selectors.EVENT_READ)
        _LIVE.add(self)

    def timeout_for(self, asked: float | None) -> float | None:
        """The wait to use when `asked` is asked for, now."""
        if asked is None or asked >= IDLE_WAIT or self.clock() - self.last_input < QUIET:
            return asked
        return IDLE_WAIT

    def select(self, timeout: float | None = None
               ) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(self.timeout_for(timeout))
        if ready:
            self.last_input = self.clock()
        theirs = [(key, mask) for key, mask in ready if key.fd != self._wake_r]
        if len(theirs) != len(ready):
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
        return theirs

    def wake(self) -> None:
        """End a wait now; the waits after are short again (QUIET seconds)."""
        try:
            os.write(self._wake_w, b"w")
        except OSError:
            pass  # full (a wake is pending) or closed: nothing to add

    def close(self) -> None:
        _LIVE.discard(self)
        super().close()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def wake() -> None:
    """Before a stop that no key asked for (a signal): the input thread sees it at once."""
    for selector in list(_LIVE):
        selector.wake()


def install() -> bool:
    """Give Textual's Linux driver the quiet selector (once; True when it has it)."""
    if not sys.platform.startswith("linux"):
        return False
    from textual.drivers import linux_driver

    if getattr(linux_driver.selectors, "QUIET_SELECTOR", False):  # type: ignore[attr-defined]
        return True
    shim = types.ModuleType("selectors")
    shim.__dict__.update(vars(selectors))
    shim.SelectSelector = QuietSelector  # type: ignore[attr-defined]
    shim.QUIET_SELECTOR = True  # type: ignore[attr-defined]
    linux_driver.selectors = shim  # type: ignore[attr-defined]
    return True
