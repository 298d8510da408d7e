"""The terminal's input thread waits longer while nobody types (portside.ui.quiet)."""

from __future__ import annotations

import os
import selectors
import sys

import pytest

from portside.ui import quiet

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def test_waits_grow_after_a_quiet_spell_and_input_or_a_wake_shortens_them() -> None:
    now = [100.0]
    sel = quiet.QuietSelector(clock=lambda: now[0])
    r, w = os.pipe()
    try:
        sel.register(r, selectors.EVENT_READ)
        assert sel.timeout_for(0.1) == 0.1  # input is recent (it just started)
        now[0] += quiet.QUIET + 0.5
        assert sel.timeout_for(0.1) == quiet.IDLE_WAIT
        assert sel.timeout_for(None) is None and sel.timeout_for(5.0) == 5.0
        os.write(w, b"k")  # a key: the caller gets it, and short waits again
        ready = sel.select(0.1)
        assert [key.fd for key, _ in ready] == [r]
        assert sel.timeout_for(0.1) == 0.1
        os.read(r, 1)
        now[0] += quiet.QUIET + 0.5
        assert sel.timeout_for(0.1) == quiet.IDLE_WAIT
        # A stop asked by a signal: the long wait ends at once, and what woke it is not
        # handed to the caller (Textual would read the terminal for it).
        quiet.wake()
        assert sel.select(5.0) == []
        assert sel.timeout_for(0.1) == 0.1
    finally:
        sel.close()
        os.close(r)
        os.close(w)
    assert sel not in quiet._LIVE


def test_textual_driver_gets_the_quiet_selector() -> None:
    from textual.drivers import linux_driver

    real = linux_driver.selectors  # type: ignore[attr-defined]
    try:
        assert quiet.install() and quiet.install()  # once, however often asked
        shim = linux_driver.selectors  # type: ignore[attr-defined]
        assert shim.SelectSelector is quiet.QuietSelector
        assert shim.EVENT_READ == selectors.EVENT_READ
        assert shim.SelectorKey is selectors.SelectorKey
    finally:
        linux_driver.selectors = real  # type: ignore[attr-defined]
