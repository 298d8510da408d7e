"""The portside dashboard: a live socket table, details, filter, and safe actions."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from ..actions import ActionPlan, addr_of
from ..backend import Backend, refusal, socket_refusal
from ..fmt import format_duration, format_endpoint, join_cmdline, safe_text
from ..model import TIME_WAIT, Diagnosis, Snapshot, holder_pids, listeners_on
from ..query import SORT_COLUMNS, Query, QueryError, parse
from ..report import diagnosis_lines
from ..view import Row, RowKey, TableModel, port_holders, row_keys, watch_events
from .details import details_text
from .dialogs import ActionScreen, TextScreen, help_text
from .table import SocketTable

MIN_WIDTH, MIN_HEIGHT = 60, 12  # below this the "too small" notice is shown
WIDE = 150  # from this width the details pane sits beside the table
MAX_BACKOFF = 60.0


class SnapshotReady(Message):
    """A new sample from the sampler worker. A newer one replaces an unprocessed older one."""

    def __init__(self, snapshot: Snapshot, keys: list[RowKey] | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.keys = keys  # the rows' keys, computed on the sampler thread

    def can_replace(self, message: Message) -> bool:
        """Only the newest snapshot matters."""
        return isinstance(message, SnapshotReady)


class SampleFailed(Message):
    """The sampler raised; it retries after `retry_in` seconds."""

    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__()
        self.error = error
        self.retry_in = retry_in


class ProbeReady(Message):
    """A port diagnosis from a worker."""

    def __init__(self, diagnosis: Diagnosis | None, error: str = "") -> None:
        super().__init__()
        self.diagnosis = diagnosis
        self.error = error


ACTIONS: list[tuple[str, str, str, str]] = [
    # (key, action, footer label, description for help and the command palette)
    ("slash", "filter", "Filter", "Focus the filter box (Esc clears it)"),
    ("t", "terminate", "Term", "Terminate the highlighted process (SIGTERM)"),
    ("k", "kill", "Kill", "Kill the highlighted process (SIGKILL)"),
    ("f", "free", "Free port", "Free the highlighted port: SIGTERM every holder"),
    ("p", "pause", "Pause", "Pause or resume live updates"),
    ("r", "refresh", "Refresh", "Sample now"),
    ("a", "all_states", "All", "Show every TCP state, or only LISTEN/TIME_WAIT/UDP"),
    ("z", "fold", "Fold TW", "Fold each port's TIME_WAIT sockets into one row"),
    ("w", "watch", "Watch", "Watch the highlighted port: notify when freed or taken"),
    ("b", "probe", "Probe", "Why can't I bind this port? (EADDRINUSE diagnosis)"),
    ("s", "sort", "Sort", "Sort by the next column"),
    ("S", "reverse", "Reverse", "Reverse the sort order"),
    ("d", "details", "Details", "Show or hide the details pane"),
    ("c", "copy_pid", "Copy PID", "Copy the highlighted PID to the clipboard"),
    ("C", "copy_cmdline", "Copy cmd", "Copy the highlighted command line"),
    ("question_mark", "help", "Help", "Keys and filter syntax"),
    ("q", "quit", "Quit", "Quit portside"),
]
SHOWN = {"filter", "terminate", "kill", "free", "pause", "all_states", "fold", "watch",
         "probe", "help", "quit"}
KEY_LABELS = {"slash": "/", "question_mark": "?"}
ROW_ACTIONS = ("terminate", "kill", "free", "copy_pid", "copy_cmdline")  # depend on the row


class StatusLine(Widget):
    """The one-line header; repainted in place, never re-laid out (it updates every second)."""

    DEFAULT_CSS = "StatusLine { height: 1; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text = Text()

    def show(self, text: Text) -> None:
        """Replace the text (a repaint of one line)."""
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        """The current status."""
        return self._text


class PortsideApp(App[int]):
    """The live port dashboard."""

    CSS_PATH = Path(__file__).with_name("portside.tcss")
    TITLE = "portside"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        # `/` is a priority binding: it takes the focus as the App reads the key, before
        # the keys queued behind it are handed out (bubbling would get it there too late).
        Binding(key, action, label, show=action in SHOWN, tooltip=desc, id=action,
                key_display=KEY_LABELS.get(key), priority=action == "filter")
        for key, action, label, desc in ACTIONS
    ]
    BINDINGS.append(Binding("space", "pause", "Pause", show=False))

    def __init__(self, backend: Backend, query: str | list[str] = "", interval: float = 2.0,
                 watch: Iterable[int] = (), grace: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, live: bool = True) -> None:
        super().__init__()
        self.backend = backend
        self.interval = interval
        self.grace = grace
        self.clock = clock
        self.live = live  # False: no sampler thread (tests feed snapshots themselves)
        self.model = TableModel()
        self.initial_query = query
        self.last_query: Query = Query()
        self.paused = False
        self.all_states = False
        self.watched: dict[int, tuple[int, ...] | None] = {p: None for p in watch}
        self._watch_seen: set[int] = set()
        self.last_error = ""
        self.last_sample_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._details_shown = ""
        self._banner_shown: str | None = None
        self._bindings_state: tuple[bool | None, ...] = ()
        self.crash: str | None = None  # why the dashboard stopped on an error, if it did
        self.too_small = False  # the "too small" notice hides the table: no row actions

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """A toast, as plain text: toasts carry process names, which are never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def _handle_exception(self, error: Exception) -> None:
        """Keep the error for a one-line message; the traceback only with PORTSIDE_DEBUG."""
        if self.crash is None:
            self.crash = f"{type(error).__name__}: {error}"
        super()._handle_exception(error)
        if not os.environ.get("PORTSIDE_DEBUG"):
            self._exit_renderables.clear()

    # Layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static("", id="banner")
        with Horizontal(id="filterbar"):
            yield Input(placeholder="filter: :3000 proc:node state:listen -state:tw   "
                        "(/ to focus, Esc to clear)", id="filter", select_on_focus=False)
        yield Static("", id="filter-error")
        with Container(id="main"):
            yield SocketTable(self.model, clock=self.clock, id="table")
            with Container(id="details"):
                yield Static("", id="details-body")
        yield Static("Terminal too small for portside.\nEnlarge it, or press q to quit.",
                     id="too-small", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Apply the initial filter, start sampling and the one-second tick."""
        query = self.initial_query
        text = query if isinstance(query, str) else " ".join(query)
        if text:
            self.query_one("#filter", Input).value = text
            self._set_filter(text)
        self.query_one("#table", SocketTable).focus()
        self._layout(self.size.width, self.size.height)
        self._update_status()
        self.set_interval(1.0, self._tick)
        # Everything built so far lives as long as the app: keep it out of the cyclic GC's
        # walks, which otherwise revisit it every time 50k sockets' worth of rows churn.
        gc.freeze()
        if self.live:
            self._sampler()

    def on_resize(self, event: Any) -> None:
        """Details beside the table when wide, below when narrow; a notice when tiny."""
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.too_small = small
        # The main screen, even while a dialog is on top of it.
        self.screen_stack[0].set_class(small, "too-small")
        self._sync_bindings()
        self.query_one("#main").set_class(width >= WIDE, "wide")

    # Sampling ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="sampler", name="sampler")
    def _sampler(self) -> None:
        """One long-lived thread: sample, post, wait; never two samples at once."""
        worker = get_current_worker()
        failures = 0
        while not (worker.is_cancelled or self._stop.is_set()):
            wait = self.interval
            if not self.paused:
                try:
                    snap = self.backend.sample(self.all_states)
                except Exception as exc:  # never die silently: report it, retry later
                    failures += 1
                    wait = min(self.interval * 2 ** failures, MAX_BACKOFF)
                    self.post_message(SampleFailed(f"{type(exc).__name__}: {exc}", wait))
                else:
                    failures = 0
                    # Row keys are made here, off the UI thread: at 50k sockets that is
                    # ~10 ms the UI does not spend.
                    self.post_message(SnapshotReady(snap, row_keys(snap)))
            deadline = time.monotonic() + (3600.0 if self.paused else wait)
            self._wake.clear()
            # Wait in short steps so a cancelled worker notices at once even if unwoken.
            while not (worker.is_cancelled or self._stop.is_set()):
                left = deadline - time.monotonic()
                if left <= 0 or self._wake.wait(min(left, 1.0)):
                    break

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The sampler must never die silently: say so, and start it again."""
        worker = event.worker
        if worker.name != "sampler" or self._stop.is_set() or not self.is_running:
            return
        if event.state in (WorkerState.ERROR, WorkerState.SUCCESS):
            self.last_error = (f"The sampler stopped ({safe_text(str(worker.error))}); "
                               "restarting it")
            self._update_status()
            self.set_timer(self.interval, self._sampler)

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        """Apply a sample: one dict diff, one sort, one repaint of the visible rows."""
        if not self.is_running:  # closing: the widgets may be gone already
            return
        self.apply_snapshot(message.snapshot, message.keys)

    def apply_snapshot(self, snap: Snapshot, keys: list[RowKey] | None = None) -> None:
        """Take a snapshot into the table (also used by tests with made-up data)."""
        self.last_error = ""
        self.last_sample_at = self.clock()
        self.model.apply(snap, self.clock(), keys)
        self.query_one("#table", SocketTable).refresh_rows()
        self._check_watches(snap)
        self._update_status()
        self._sync_bindings()

    def on_sample_failed(self, message: SampleFailed) -> None:
        """Show why sampling failed and when it retries."""
        if not self.is_running:
            return
        self.last_error = (f"Sampling failed ({safe_text(message.error)}); retrying in "
                           f"{format_duration(message.retry_in)}")
        self._update_status()

    def _tick(self) -> None:
        """Once a second: countdowns, expired marks, the sample's age."""
        if not self.is_running:
            return
        table = self.query_one("#table", SocketTable)
        if self.model.expire(self.clock()):
            table.refresh_rows()
        else:
            table.tick()
        self._update_details(table.current)
        self._update_status()

    def on_unmount(self) -> None:
        """Stop the sampler thread promptly."""
        self._stop.set()
        self._wake.set()

    # Status and banners -----------------------------------------------------------------

    def _update_status(self) -> None:
        ident = self.backend.identity
        snap = self.model.snapshot
        parts = [f"portside · {ident.hostname} · {ident.user} "
                 f"({'root' if ident.is_root else 'not root'}) · every {self.interval:g}s"]
        status = Text(" · ".join(parts) + " · ")
        if self.paused:
            status.append("PAUSED", "bold reverse")
        else:
            status.append("● live", "bold")
        if self.last_sample_at is not None and self.model.snapshot is not None:
            age = self.clock() - self.last_sample_at
            stale = not self.paused and age > max(3 * self.interval, self.interval + 5)
            if stale or self.paused or age > self.interval + 1:
                # Late: count the seconds. On time, the sample's clock time is enough (and
                # an idle header does not have to repaint every second).
                status.append(f" · sample {format_duration(age)} ago")
            else:
                status.append(" · sampled " + time.strftime(
                    "%H:%M:%S", time.localtime(self.model.snapshot.taken_at)))
            if stale:
                status.append(" STALE", "bold reverse")
        else:
            status.append(" · waiting for the first sample")
        if snap is not None:
            shown = self.model.shown
            status.append(f" · {shown} of {len(snap.sockets)} sockets"
                          if shown != len(snap.sockets) else f" · {shown} sockets")
            if self.model.fold:
                status.append(" · TIME_WAIT folded")
        if self.watched:
            status.append(" · watching " + " ".join(f":{p}" for p in sorted(self.watched)))
        self.query_one("#status", StatusLine).show(status)
        banner = self.query_one("#banner", Static)
        lines = []
        if self.last_error:
            lines.append(self.last_error)
        if snap is not None and snap.gaps.unknown_owner:
            n = snap.gaps.unknown_owner
            if not snap.gaps.is_root:
                lines.append(f"{n} socket(s) belong to processes you cannot see (owner '?'): "
                             "run `sudo portside` to see and stop them.")
            else:
                lines.append(f"{n} socket(s) have an owner whose files cannot be read, "
                             "even as root.")
        text = "\n".join(lines)
        if text != self._banner_shown:  # Static.update re-lays out the screen: only on change
            self._banner_shown = text
            banner.update(Text(text))
            banner.set_class(bool(self.last_error), "error")
            banner.display = bool(lines)

    # Filter -----------------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)

    def _set_filter(self, text: str) -> None:
        """Apply a valid query; an invalid one marks the box and keeps the last valid."""
        box = self.query_one("#filter", Input)
        error = self.query_one("#filter-error", Static)
        try:
            query = parse(text, me=self.backend.identity.user)
        except QueryError as exc:
            box.add_class("-invalid")
            error.update(Text(f"{exc} (still showing: {self.last_query.source or 'all'})"))
            error.display = True
            return
        box.remove_class("-invalid")
        error.display = False
        self.last_query = query
        self.model.query = query
        self.model.rebuild()
        self.query_one("#table", SocketTable).refresh_rows()
        self._update_status()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.screen.set_focus(self.query_one("#table", SocketTable))

    def on_key(self, event: Any) -> None:
        """Esc in the filter clears it and returns to the table."""
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            box.value = ""
            self._set_filter("")
            self.query_one("#table", SocketTable).focus()
            event.stop()

    def action_filter(self) -> None:
        """Focus the filter box now: every key typed after / goes to it, however fast."""
        # Widget.focus() defers the change, so keys already queued behind / would still
        # reach the table's bindings (a pasted "/ky" opened the kill dialog).
        self.screen.set_focus(self.query_one("#filter", Input))

    # Details ----------------------------------------------------------------------------

    def on_socket_table_highlighted(self, message: SocketTable.Highlighted) -> None:
        """The cursor moved: show that row, and re-check which actions are available."""
        self._update_details(message.row)
        self._sync_bindings()

    def on_socket_table_header_clicked(self, message: SocketTable.HeaderClicked) -> None:
        """Sort by the clicked column; a second click reverses."""
        if self.model.sort_column == message.sort:
            self.model.reverse = not self.model.reverse
        else:
            self.model.sort_column, self.model.reverse = message.sort, False
        self._resort()

    def _update_details(self, row: Row | None) -> None:
        details = self.query_one("#details")
        if details.display:
            text = details_text(self.model, row, self.clock())
            # Static.update re-lays out the screen: skip it when nothing visible changed,
            # and repaint in place when the text keeps its shape (an uptime ticking).
            if text.plain != self._details_shown:
                body = self.query_one("#details-body", Static)
                width = body.size.width
                lines, before = text.plain.split("\n"), self._details_shown.split("\n")
                # Same height when no line that changed wraps, before or after.
                relayout = len(lines) != len(before) or any(
                    a != b and (cell_len(a) > width or cell_len(b) > width)
                    for a, b in zip(lines, before, strict=True))
                self._details_shown = text.plain
                body.update(text, layout=relayout)

    def action_details(self) -> None:
        """Toggle the details pane."""
        details = self.query_one("#details")
        details.display = not details.display
        self._update_details(self._row())

    # Views ------------------------------------------------------------------------------

    def action_pause(self) -> None:
        """Pause or resume sampling (the table stays as it is)."""
        self.paused = not self.paused
        self._wake.set()
        self.notify("Paused: press p to resume." if self.paused else "Live again.", timeout=2)
        self._update_status()

    def action_refresh(self) -> None:
        """Sample now."""
        self._wake.set()

    def action_all_states(self) -> None:
        """Every TCP state, or back to LISTEN / TIME_WAIT / UDP."""
        self.all_states = not self.all_states
        self.notify("Showing every TCP state." if self.all_states
                    else "Showing listeners, UDP and TIME_WAIT.", timeout=2)
        self._wake.set()

    def action_fold(self) -> None:
        """Fold or unfold TIME_WAIT sockets per port."""
        self.model.fold = not self.model.fold
        self.model.rebuild()
        self.query_one("#table", SocketTable).refresh_rows()

    def action_sort(self) -> None:
        """Sort by the next column."""
        cols = list(SORT_COLUMNS)
        i = cols.index(self.model.sort_column) if self.model.sort_column in cols else -1
        self.model.sort_column = cols[(i + 1) % len(cols)]
        self.model.reverse = False
        self._resort()

    def action_reverse(self) -> None:
        """Reverse the sort order."""
        self.model.reverse = not self.model.reverse
        self._resort()

    def _resort(self) -> None:
        self.model.rebuild()
        self.query_one("#table", SocketTable).refresh_rows()
        self.notify(f"Sorted by {self.model.sort_column}"
                    f"{' (reversed)' if self.model.reverse else ''}", timeout=1.5)

    # Acting on processes ----------------------------------------------------------------

    def _row(self) -> Row | None:
        return self.query_one("#table", SocketTable).current

    def unavailable(self, action: str) -> str | None:
        """Why an action cannot run on the highlighted row now, or None."""
        row = self._row()
        snap = self.model.snapshot
        if row is None or snap is None:
            return "no row is highlighted"
        if self.too_small and action not in ("watch", "probe"):
            return "the terminal is too small to show the highlighted row: enlarge it"
        sock = row.sock
        if action in ("terminate", "kill", "free"):
            why = socket_refusal(sock, snap.gaps.is_root)
            if sock.state == TIME_WAIT:
                return why
            if row.mark == "gone":
                return "this socket is gone"
            if action == "free" and not sock.is_listening:
                return "only a listening socket's port can be freed"
            if why:
                return why
            pids = sock.pids if action == "free" else (sock.pid,)
            for pid in pids:
                why = refusal(pid, self.backend.identity)
                if why:
                    return why
                if snap.process(pid) is None:
                    return f"PID {pid} is no longer known"
            return None
        if action in ("watch", "probe"):
            return None
        if action == "copy_pid":
            return None if sock.pid is not None else "no PID to copy"
        if action == "copy_cmdline":
            proc = snap.process(sock.pid)
            return None if proc is not None and proc.cmdline else "no command line to copy"
        return None

    def _sync_bindings(self) -> None:
        """Refresh the footer only when an action became (un)available: it recomposes."""
        state = tuple(self.check_action(a, ()) for a in ROW_ACTIONS)
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Unavailable actions are dimmed in the footer (None), not hidden."""
        if action in ROW_ACTIONS:
            return None if self.unavailable(action) else True
        if action == "filter":
            # Typed in the box (or behind a dialog), `/` is just a character.
            return self.screen is self.screen_stack[0] and not self._filter_box().has_focus
        return True

    def _filter_box(self) -> Input:
        return self.screen_stack[0].query_one("#filter", Input)

    def _explain(self, action: str) -> None:
        why = self.unavailable(action)
        if why:
            self.notify(f"Not available: {why}.", severity="warning", timeout=4)

    # A disabled binding lets the key through to these handlers: say why, do nothing.
    def key_t(self) -> None:
        """Explain an unavailable terminate."""
        self._explain("terminate")

    def key_k(self) -> None:
        """Explain an unavailable kill."""
        self._explain("kill")

    def key_f(self) -> None:
        """Explain an unavailable free."""
        self._explain("free")

    def plan(self, action: str) -> ActionPlan | None:
        """Freeze what the dialog will act on, from the snapshot on screen now."""
        row = self._row()
        snap = self.model.snapshot
        if row is None or snap is None or self.unavailable(action):
            return None
        sock = row.sock
        if action == "free":
            # Every listening socket on the port, with every holder of each.
            socks = listeners_on(snap, sock.lport)
            holders = snap.targets(holder_pids(socks))
            chosen, addrs = holders, tuple(sorted({addr_of(s) for s in socks}))
        else:
            holders = snap.targets(sock.pids)
            chosen = snap.targets((sock.pid,) if sock.pid is not None else ())
            addrs = (addr_of(sock),)
        port = sock.lport if sock.is_listening else None
        label = f"{sock.proto_label} {format_endpoint(sock.laddr, sock.lport)} {sock.state}"
        sig = signal.SIGKILL if action == "kill" else signal.SIGTERM
        # Another user's process (or root's, when a person runs us through sudo) must be
        # confirmed by typing its PID; one's own processes need only `y`.
        return ActionPlan(action, sig, chosen, holders, port, addrs, label,
                          self.backend.identity.operator, self.grace)

    def _act(self, action: str) -> None:
        plan = self.plan(action)
        if plan is None:
            self._explain(action)
            return
        self.push_screen(ActionScreen(plan, self.backend))

    def action_terminate(self) -> None:
        """SIGTERM the highlighted process, after confirmation."""
        self._act("terminate")

    def action_kill(self) -> None:
        """SIGKILL the highlighted process, after a stronger confirmation."""
        self._act("kill")

    def action_free(self) -> None:
        """SIGTERM every holder of the highlighted port, after confirmation."""
        self._act("free")

    # Copy -------------------------------------------------------------------------------

    def action_copy_pid(self) -> None:
        """Copy the PID (OSC 52)."""
        row = self._row()
        if row is None or self.unavailable("copy_pid"):
            self._explain("copy_pid")
            return
        self.copy_to_clipboard(str(row.sock.pid))
        self.notify(f"Copied PID {row.sock.pid}.", timeout=2)

    def action_copy_cmdline(self) -> None:
        """Copy the command line (OSC 52)."""
        row = self._row()
        snap = self.model.snapshot
        proc = snap.process(row.sock.pid) if row and snap else None
        if proc is None or proc.cmdline is None or self.unavailable("copy_cmdline"):
            self._explain("copy_cmdline")
            return
        self.copy_to_clipboard(join_cmdline(proc.cmdline))
        self.notify("Copied the command line.", timeout=2)

    # Watch and probe --------------------------------------------------------------------

    def _port(self) -> int | None:
        row = self._row()
        if row is None:
            return None
        if row.folded:
            port = row.key[3]
            return port if isinstance(port, int) else None
        return row.sock.lport

    def action_watch(self) -> None:
        """Watch the highlighted port, or stop watching it."""
        port = self._port()
        if port is None:
            self.notify("Highlight a row to watch its port.", severity="warning")
            return
        if port in self.watched:
            del self.watched[port]
            self._watch_seen.discard(port)
            self.notify(f"Stopped watching port {port}.", timeout=3)
        else:
            snap = self.model.snapshot
            self.watched[port] = port_holders(snap, port) if snap else None
            if snap is not None:
                self._watch_seen.add(port)
            self.notify(f"Watching port {port}: you will be told when it is freed or taken.",
                        timeout=4)
        self._update_status()

    def _check_watches(self, snap: Snapshot) -> None:
        for port, before in list(self.watched.items()):
            after = port_holders(snap, port)
            self.watched[port] = after
            if port not in self._watch_seen:
                self._watch_seen.add(port)  # the first sample sets the baseline
                continue

            def name(pid: int) -> str:
                proc = snap.process(pid)
                return safe_text(proc.name) if proc else "?"

            for event in watch_events(port, before, after, name):
                self.notify(event, title="portside watch", timeout=10)
                self.bell()

    def action_probe(self) -> None:
        """Run the EADDRINUSE diagnosis for the highlighted port."""
        port = self._port()
        if port is None:
            self.notify("Highlight a row to probe its port.", severity="warning")
            return
        self.notify(f"Probing port {port}…", timeout=2)
        self._probe(port)

    @work(thread=True, exclusive=True, exit_on_error=False, group="probe")
    def _probe(self, port: int) -> None:
        try:
            self.post_message(ProbeReady(self.backend.diagnose(port)))
        except Exception as exc:  # shown in the UI: never a traceback
            self.post_message(ProbeReady(None, f"{type(exc).__name__}: {exc}"))

    def on_probe_ready(self, message: ProbeReady) -> None:
        """Show the diagnosis in a panel."""
        if not self.is_running:
            return
        d = message.diagnosis
        if d is None:
            self.notify(f"Probe failed: {safe_text(message.error)}", severity="error")
            return
        verdict = "can be bound now" if d.can_bind else "cannot be bound now"
        self.push_screen(TextScreen(f"Port {d.port}: {verdict}",
                                    Text("\n".join(diagnosis_lines(d)))))

    # Help, palette, quit ----------------------------------------------------------------

    def action_help(self) -> None:
        """Keys and the filter syntax."""
        keys = [(KEY_LABELS.get(k, k), desc) for k, _, _, desc in ACTIONS]
        keys += [("↑↓ PgUp PgDn", "Move; Home/End: first/last row; click a header to sort"),
                 ("ctrl+p", "Command palette: every action by name")]
        self.push_screen(TextScreen("portside help", help_text(keys)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action in the command palette, next to Textual's own."""
        yield from super().get_system_commands(screen)
        for _key, action, label, desc in ACTIONS:
            if action == "quit":
                continue
            yield SystemCommand(label, desc, self._palette(action))

    def _palette(self, action: str) -> Callable[[], None]:
        def run() -> None:
            if self.check_action(action, ()) is None:
                self._explain(action)
            else:
                getattr(self, f"action_{action}")()
        return run

    async def action_quit(self) -> None:
        """Quit at once: the sampler thread is told to stop, never waited on for long."""
        self._stop.set()
        self._wake.set()
        self.exit(0)

