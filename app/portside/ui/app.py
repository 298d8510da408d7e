"""The portside app: the backend, the sampler worker, and routing its messages to the screen.

Everything on screen belongs to MainScreen (portside.ui.main) and its dialogs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from textual import work
from textual.app import App
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState, get_current_worker

from ..actions import GRACE, SETTLE
from ..backend import Backend
from ..fmt import format_duration, safe_text
from ..model import Snapshot
from ..query import as_typed
from ..view import TableModel
from . import quiet
from .main import MainScreen

MAX_BACKOFF = 60.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
STOP_WAIT = 3.0  # seconds a signalled dashboard may take to leave before it is ended
SWITCH_INTERVAL = 0.001  # seconds a thread holds the GIL while another waits (sys default 5 ms)


class SamplerSettings(NamedTuple):
    """What one sampler worker does; a new setting starts a new worker."""

    interval: float
    paused: bool = False
    all_states: bool = False


class SampleFailed(Message):
    """The sampler raised; it retries after `retry_in` seconds."""

    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__()
        self.error = error
        self.retry_in = retry_in


class PortsideApp(App[int]):
    """The live port dashboard."""

    CSS_PATH = Path(__file__).with_name("portside.tcss")
    TITLE = "portside"

    def __init__(self, backend: Backend, query: str | list[str] = "", interval: float = 2.0,
                 watch: Iterable[int] = (), grace: float = GRACE, settle: float = SETTLE,
                 clock: Callable[[], float] = time.monotonic, live: bool = True,
                 handle_signals: bool = False) -> None:
        super().__init__()
        self.handle_signals = handle_signals  # SIGTERM, SIGHUP, SIGQUIT: quit cleanly
        self._stopping = False
        self.backend = backend
        self.interval = interval
        self.clock = clock
        self.live = live  # False: no sampler thread (tests feed snapshots themselves)
        self.model = TableModel()
        text = query if isinstance(query, str) else as_typed(query)
        self.main = MainScreen(backend, self.model, interval, grace, text, list(watch),
                               settle)
        self.sampling: SamplerSettings | None = None  # what the running sampler does
        self.crash: str | None = None  # why the dashboard stopped on an error, if it did

    def get_default_screen(self) -> MainScreen:
        """The dashboard is the bottom screen; dialogs are pushed over it."""
        return self.main

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast, as plain text whoever asks: toasts carry process names, which are never
        markup (Widget.notify, which screens use, passes markup=True)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def _handle_exception(self, error: Exception) -> None:
        """Keep the error for a one-line message; the traceback only with PORTSIDE_DEBUG."""
        if self.crash is None:
            self.crash = f"{type(error).__name__}: {error}"
        super()._handle_exception(error)
        if not os.environ.get("PORTSIDE_DEBUG"):
            self._exit_renderables.clear()

    def on_mount(self) -> None:
        """Start sampling."""
        # The sampler and a filter's worker run Python beside the UI thread: a key waits
        # for the GIL up to the switch interval each time the UI thread wakes, 5 ms by
        # default, several times a key. 1 ms: measured at 100k rows while a 251-character
        # filter is typed, the longest wait for the screen fell from 74 to 59 ms.
        sys.setswitchinterval(SWITCH_INTERVAL)
        if self.handle_signals:
            loop = asyncio.get_running_loop()

            def stop(sig: int, _frame: object) -> None:
                # A plain handler, not the loop's: it runs even while the main thread is
                # blocked (on a terminal that is gone), so the watchdog always starts.
                self._watchdog(sig)
                loop.call_soon_threadsafe(self._stop_on_signal, sig)

            for sig in STOP_SIGNALS:
                signal.signal(sig, stop)
        if self.live:
            self.resample(False, False)

    def _watchdog(self, sig: int) -> None:
        """Leaving can hang when the terminal is gone (Textual's writer waits on a
        terminal that will never read): after STOP_WAIT seconds, or at a second signal,
        the process ends at once, as it would without a handler."""
        if self._stopping:
            os._exit(128 + sig)
        self._stopping = True
        timer = threading.Timer(STOP_WAIT, os._exit, args=(128 + sig,))
        timer.daemon = True
        timer.start()

    def _stop_on_signal(self, sig: int) -> None:
        """Asked to stop (kill, a closed terminal): leave the way q does, so the terminal
        is restored (alternate screen, mouse, echo), with 128 + the signal, as a shell says."""
        self.workers.cancel_all()
        quiet.wake()  # the terminal's input thread may be in a long wait: no key came
        self.exit(return_code=128 + sig)

    # Sampling ---------------------------------------------------------------------------

    def resample(self, paused: bool, all_states: bool) -> None:
        """Start a sampler with these settings; it replaces the one running (which stops
        at once) and samples now unless paused."""
        if not self.live:
            return
        self.sampling = SamplerSettings(self.interval, paused, all_states)
        self._sampler(self.sampling)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sampler", name="sampler")
    def _sampler(self, settings: SamplerSettings) -> None:
        """One long-lived thread: sample, post, wait; cancelled, it stops at once."""
        cancelled = get_current_worker().cancelled_event
        failures = 0
        while not settings.paused and not cancelled.is_set():
            wait = settings.interval
            # The data's age counts from here, not from when the screen gets to it: a busy
            # UI must not call old data live.
            began = self.clock()
            try:
                snap = self.backend.sample(settings.all_states)
            except Exception as exc:  # never die silently: report it, retry later
                failures += 1
                wait = min(settings.interval * 2 ** failures, MAX_BACKOFF)
                self.post_message(SampleFailed(f"{type(exc).__name__}: {exc}", wait))
            else:
                failures = 0
                if cancelled.is_set() or not self.is_running:
                    return  # replaced meanwhile (say, by all states): this one is stale
                self.main.take_sample(snap, began)
                # What the table let go of this sample, back to the system.
                self.backend.release_memory()
            cancelled.wait(wait)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The sampler must never die silently: say so, and start it again."""
        worker = event.worker
        if worker.name != "sampler" or worker.is_cancelled or not self.is_running:
            return
        if event.state in (WorkerState.ERROR, WorkerState.SUCCESS) and self.sampling:
            if self.sampling.paused:
                return
            self.main.sample_failed(f"The sampler stopped ({safe_text(str(worker.error))}); "
                                    "restarting it")
            settings = self.sampling
            self.set_timer(self.interval, lambda: self.resample(settings.paused,
                                                                settings.all_states))

    def on_sample_failed(self, message: SampleFailed) -> None:
        """Show why sampling failed and when it retries."""
        if self.is_running:
            self.main.sample_failed(f"Sampling failed ({safe_text(message.error)}); "
                                    f"retrying in {format_duration(message.retry_in)}")

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Take a made-up snapshot (tests and screenshots)."""
        self.main.apply_snapshot(snap)

    async def action_quit(self) -> None:
        """Quit at once: the workers are cancelled, never waited on for long."""
        self.workers.cancel_all()
        self.exit(0)
