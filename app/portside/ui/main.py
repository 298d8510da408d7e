"""The main screen: the table, its view settings as reactives, and every action on a row.

Dialogs only decide: a ConfirmScreen returns the plan the user confirmed, and this screen
carries it out on a worker it owns, so the outcome is reported whether or not a dialog is
still open.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from .. import policy
from ..actions import (
    FIRST_WAIT,
    KILL_GRACE,
    SETTLE,
    ActionKind,
    ActionPlan,
    Outcome,
    addr_of,
    judge,
    origin,
    pid_list,
    retaken,
)
from ..backend import Backend, PortHolders
from ..fmt import join_cmdline, safe_text, signal_name
from ..model import SENT, Diagnosis, SignalResult, Snapshot, Target
from ..query import SORT_COLUMNS, Query, QueryError, parse
from ..report import diagnosis_lines, sample_notes
from ..view import Row, TableModel, watch_events
from .commands import (
    BY_ID,
    COMMANDS,
    ROW_COMMANDS,
    ActionCommands,
    Command,
    bindings,
    help_keys,
)
from .details import details_text
from .dialogs import ConfirmScreen, TextScreen, help_text
from .table import SocketTable
from .widgets import (
    ActivityLine,
    Banner,
    DetailsPane,
    FilterInput,
    StatusLine,
    header_text,
    is_late,
)

if TYPE_CHECKING:
    from .app import PortsideApp

MIN_WIDTH, MIN_HEIGHT = 60, 12  # below this the "too small" notice is shown
WIDE = 150  # from this width the details pane sits beside the table
POLL = 0.1  # seconds between checks while waiting for a port to be freed
TOAST: dict[str, SeverityLevel] = {"success": "information", "warning": "warning",
                                   "error": "error"}
KEYS = {key: c for c in COMMANDS for key in c.key.split(",")}


class ActionProgress(Message):
    """Seconds left in an action's grace period (or, settling, of the time a freed port
    must stay free), from its worker."""

    def __init__(self, plan: ActionPlan, left: float, settling: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.left = left
        self.settling = settling


class ActionDone(Message):
    """An action finished: how it went, judged from who holds its sockets now."""

    def __init__(self, plan: ActionPlan, outcome: Outcome) -> None:
        super().__init__()
        self.plan = plan
        self.outcome = outcome


class ProbeReady(Message):
    """A port diagnosis from a worker."""

    def __init__(self, diagnosis: Diagnosis | None, error: str = "") -> None:
        super().__init__()
        self.diagnosis = diagnosis
        self.error = error


class SampleTaken(Message):
    """A sample the sampler's thread took into the model."""

    def __init__(self, snapshot: Snapshot, sampled_at: float) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.sampled_at = sampled_at

    def can_replace(self, message: Message) -> bool:
        """One repaint for the newest is enough."""
        return isinstance(message, SampleTaken)


class FilterReady(Message):
    """The view a worker made for a filter being typed."""

    def __init__(self, query: Query, version: int, view: list[Row], shown: int) -> None:
        super().__init__()
        self.query = query
        self.version = version  # the model's version the rows were taken at
        self.view = view
        self.shown = shown


FULL_GC = 60.0  # seconds between full passes of the cyclic garbage collector
NO_FULL_PASS = 1 << 30  # young collections before the collector would pass in full
SYNC_ROWS = 5000  # up to this many rows a new filter is applied at once; above, on a worker


class MainScreen(Screen[None]):
    """The live table with its header, banner, filter box and details pane."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (MIN_WIDTH, "-normal"), (WIDE, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (MIN_HEIGHT, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())
    AUTO_FOCUS = "#table"
    COMMANDS = {ActionCommands}

    # The view settings. Each is one assignment away: a watcher does the rest.
    filter_query: reactive[Query] = reactive(Query, init=False)
    sort: reactive[tuple[str, bool]] = reactive(("port", False), init=False)
    fold = reactive(False, init=False)
    all_states = reactive(False, init=False)
    paused = reactive(False, init=False)
    details = reactive(True, init=False)

    def __init__(self, backend: Backend, model: TableModel, interval: float, grace: float,
                 initial_query: str, watch: list[int], settle: float = SETTLE) -> None:
        super().__init__()
        self.backend = backend
        self.model = model
        self.interval = interval
        self.grace = grace
        self.settle = settle  # seconds a freed port must stay free (0: not checked)
        self._freed_at: dict[int, float] = {}  # watched port -> when it was seen freed
        self.initial_query = initial_query
        self.watched: dict[int, PortHolders | None] = {p: None for p in watch}
        self.sampled_at: float | None = None
        self.error = ""  # why sampling fails, while it does
        self._notes: list[str] = []  # the sample's notes for the rows shown
        self._notes_key: tuple[int, int] | None = None
        self.activity = ""  # what the last action is doing, or how it ended
        self._bindings_state: tuple[bool, ...] = ()  # the row actions' availability shown
        self.filtering: Query | None = None  # a filter a worker is applying
        # Held while the model changes: the sampler's thread takes samples into it, the UI
        # thread changes its settings and expires its marks.
        self.model_lock = threading.Lock()
        self._full_gc = 0.0  # when the cyclic GC last ran a full pass (set at mount)
        self._gc_threshold: tuple[int, int, int] | None = None  # as it was before mount
        self.sync_rows = SYNC_ROWS

    @property
    def portside(self) -> PortsideApp:
        """The app, typed."""
        from .app import PortsideApp

        assert isinstance(self.app, PortsideApp)
        return self.app

    def clock(self) -> float:
        """The app's monotonic clock."""
        return self.portside.clock()

    # Layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # The breakpoint classes for the size of now, so that the first resize (which sets
        # them) finds nothing to change and the screen is styled once, not twice.
        width, height = self.app.size
        for dimension, points in ((width, self.HORIZONTAL_BREAKPOINTS),
                                  (height, self.VERTICAL_BREAKPOINTS)):
            self.add_class(max((p for p in points if p[0] <= dimension), default=points[0])[1])
        yield StatusLine(id="status")
        yield ActivityLine(id="activity")
        yield Banner(id="banner")
        with Horizontal(id="filterbar"):
            yield FilterInput(placeholder="filter: :3000 proc:node state:listen -state:tw   "
                              "(/ to focus, Esc to clear)", id="filter",
                              select_on_focus=False)
        with Container(id="main"):
            yield SocketTable(self.model, clock=self.clock, id="table")
            yield DetailsPane(id="details")
        yield Static("Terminal too small for portside.\nEnlarge it, or press q to quit.",
                     id="too-small", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Apply the initial filter and start the one-second tick (for the gaps between
        samples)."""
        if self.initial_query:
            self.query_one("#filter", Input).value = self.initial_query
            self._set_filter(self.initial_query)
        self.query_one(SocketTable).focus()
        self.refresh_header()
        self.set_interval(1.0, self._tick)
        self._full_gc = self.clock()
        # Everything built so far (the app, this screen and its widgets) lives as long as
        # the app: keep it out of the cyclic GC's walks.
        gc.freeze()
        # A sample's sockets and rows live until the next one and hold no cycles
        # (reference counting frees them), but each sample makes 100k new objects, and
        # the collector's full passes (the oldest generation) walked them all, 50-80 ms
        # at 50k-100k sockets, once or more a sample. Those passes are left to
        # _keep_out_of_gc, every FULL_GC seconds (every 10 minutes, the cycles that
        # outlive the young generations grew RSS 8 MB in 4 minutes of churn; every
        # minute, under 1 MB); the young generations collect as usual.
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(self._gc_threshold[0], self._gc_threshold[1], NO_FULL_PASS)

    def on_unmount(self) -> None:
        """The collector as it was (the process may go on: tests, a host program)."""
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)

    def on_resize(self) -> None:
        """Too small, nothing has the focus (keys must not type into a hidden filter box);
        big enough again, the table has it."""
        if self.too_small:
            self.set_focus(None)
        elif self.focused is None:
            self.set_focus(self.query_one(SocketTable))

    @property
    def too_small(self) -> bool:
        """True while the table is hidden by the "too small" notice."""
        width, height = self.app.size
        return width < MIN_WIDTH or height < MIN_HEIGHT

    # Samples ----------------------------------------------------------------------------

    def apply_snapshot(self, snap: Snapshot, sampled_at: float | None = None) -> None:
        """Take a snapshot into the table: one dict diff, one sort, one repaint.
        `sampled_at`: when the sample began, by the app's clock (default: now)."""
        self._take(snap)
        self.sample_taken(snap, sampled_at)

    def take_sample(self, snap: Snapshot, sampled_at: float) -> None:
        """On the sampler's thread: the snapshot into the model (the dict diff and the
        sort: up to ~100 ms at 100k sockets, which keys typed meanwhile would wait through
        on the UI thread), then the screen is told."""
        self._take(snap)
        self.post_message(SampleTaken(snap, sampled_at))

    def _take(self, snap: Snapshot) -> None:
        with self.model_lock:
            self.model.apply(snap, self.clock())
        self.model.index(snap)  # what the details pane asks, made before it asks
        self._keep_out_of_gc()

    def on_sample_taken(self, message: SampleTaken) -> None:
        """A sample the sampler's thread took into the model: the screen follows."""
        self.sample_taken(message.snapshot, message.sampled_at)

    def sample_taken(self, snap: Snapshot, sampled_at: float | None) -> None:
        """Repaint for a sample in the model (its age from `sampled_at`; None: now)."""
        self.error = ""
        self.sampled_at = self.clock() if sampled_at is None else sampled_at
        self.query_one(SocketTable).refresh_rows()
        self._check_watches(snap)
        self.refresh_header()

    def _keep_out_of_gc(self) -> None:
        """Every FULL_GC seconds, one full pass of the cyclic garbage collector (see
        on_mount: it never runs one by itself here)."""
        now = self.clock()
        if now - self._full_gc >= FULL_GC:
            self._full_gc = now
            gc.collect()

    def sample_failed(self, error: str) -> None:
        """Say why sampling fails (until a sample arrives)."""
        self.error = error
        self.refresh_header()

    def _tick(self) -> None:
        """Once a second between samples: countdowns, expired marks, the sample's age.

        While samples come on time each one repaints all of that, and the tick leaves the
        screen alone: an idle dashboard draws once per refresh, as htop does (a tick
        between two samples was a third of its CPU). Paused, failing or late, it ticks."""
        if self._on_time():
            return
        table = self.query_one(SocketTable)
        # A sample going into the model holds the lock: its marks expire next second.
        if self.model_lock.acquire(blocking=False):
            try:
                expired = self.model.expire(self.clock())
            finally:
                self.model_lock.release()
        else:
            expired = False
        if expired:
            table.refresh_rows()
        else:
            table.tick()
        self._show_details()
        self.refresh_header()

    def _on_time(self) -> bool:
        """Live, and the last sample not late (as the header judges it)."""
        if self.paused or self.error or self.sampled_at is None:
            return False
        return not is_late(self.clock() - self.sampled_at, self.interval)

    def refresh_header(self) -> None:
        """The header, the activity line and the banner, from the state of now."""
        self.query_one(StatusLine).show(header_text(
            self.backend.identity, self.interval, self.paused, self.model, self.sampled_at,
            self.clock(), list(self.watched), self.filtering is not None))
        self.query_one(ActivityLine).show(self.activity)
        lines = [self.error] if self.error else []
        snap = self.model.snapshot
        if snap is not None:
            # What the sample could not see, counted among the rows shown (once per change).
            key = (id(snap), id(self.model.view))
            if key != self._notes_key:
                self._notes_key = key
                shown = (r.sock for r in self.model.view) if self.filter_query.terms else None
                self._notes = sample_notes(shown, snap.gaps)
            lines += self._notes
        self.query_one(Banner).show(lines, bool(self.error))

    # The view settings ------------------------------------------------------------------

    def _reshape(self) -> None:
        """A view setting changed: rebuild the rows, repaint them, and say so above."""
        model = self.model
        with self.model_lock:
            model.query, model.fold = self.filter_query, self.fold
            model.sort_column, model.reverse = self.sort
            model.rebuild()
        self.query_one(SocketTable).refresh_rows()  # -> Highlighted: details and footer
        self.refresh_header()

    def watch_filter_query(self) -> None:
        """A new filter."""
        self._reshape()

    def watch_fold(self) -> None:
        """TIME_WAIT folded or unfolded."""
        self._reshape()

    def watch_sort(self, sort: tuple[str, bool]) -> None:
        """A new sort column or direction."""
        self._reshape()
        self.notify(f"Sorted by {sort[0]}{' (reversed)' if sort[1] else ''}", timeout=1.5)

    def watch_paused(self, paused: bool) -> None:
        """Pause or resume the sampler (the table stays as it is)."""
        self.portside.resample(paused, self.all_states)
        self.notify("Paused: press p to resume." if paused else "Live again.", timeout=2)
        self.refresh_header()

    def watch_all_states(self, all_states: bool) -> None:
        """Sample every TCP state, or only LISTEN / TIME_WAIT / UDP."""
        self.portside.resample(self.paused, all_states)
        self.notify("Showing every TCP state." if all_states
                    else "Showing listeners, UDP and TIME_WAIT.", timeout=2)

    def watch_details(self, shown: bool) -> None:
        """Show or hide the details pane."""
        self.query_one(DetailsPane).display = shown
        self._show_details()

    def action_sort(self) -> None:
        """Sort by the next column."""
        cols = list(SORT_COLUMNS)
        column = self.sort[0]
        i = cols.index(column) if column in cols else -1
        self.sort = (cols[(i + 1) % len(cols)], False)

    def action_reverse(self) -> None:
        """Reverse the sort order."""
        self.sort = (self.sort[0], not self.sort[1])

    def on_socket_table_header_clicked(self, message: SocketTable.HeaderClicked) -> None:
        """Sort by the clicked column; a second click reverses."""
        column, reverse = self.sort
        self.sort = (column, not reverse) if column == message.sort else (message.sort, False)

    def action_refresh(self) -> None:
        """Sample now."""
        self.portside.resample(self.paused, self.all_states)

    # Filter -----------------------------------------------------------------------------

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value)

    def _set_filter(self, text: str) -> None:
        """Apply a valid query; an invalid one marks the box and keeps the last valid."""
        box = self.query_one("#filter", FilterInput)
        try:
            query = parse(text, me=self.backend.identity.user)
        except QueryError as exc:
            box.say(f"{exc} (still showing: {self.filter_query.source or 'all'})")
            return
        box.say("")
        if len(self.model.rows) <= self.sync_rows:
            self.filtering = None
            self.filter_query = query
            return
        # At 100k rows a filter takes a while: the keys typed are never held up by it, the
        # last one typed wins, and the header says the table is still the last filter's.
        self.filtering = query
        self._filter_rows(query, list(self.model.rows.values()), self.model.version,
                          self.model.rows_gen)
        self.refresh_header()

    # A description of its own: the default is the repr of every argument, 100k rows.
    @work(thread=True, exclusive=True, exit_on_error=False, group="filter",
          description="the filter being typed")
    def _filter_rows(self, query: Query, rows: list[Row], version: int, rows_gen: int
                     ) -> None:
        worker = get_current_worker()
        made = self.model.compose(rows, query, keep=False,
                                  cancelled=lambda: worker.is_cancelled, rows_gen=rows_gen)
        if made is not None and not worker.is_cancelled:
            self.post_message(FilterReady(query, version, *made))

    def on_filter_ready(self, message: FilterReady) -> None:
        """A worker's view for the filter typed: taken, unless the rows changed meanwhile
        (a sample, a fold, a sort), when the view is made from the rows of now."""
        if message.query is not self.filtering:
            return  # a newer filter was typed since
        self.filtering = None
        if message.version != self.model.version:
            # Rows came or changed meanwhile: the rows keep the worker's results, so only
            # those are tried here (made again on the worker, a long filter could be
            # overtaken by every sample, for ever).
            with self.model_lock:
                self.model.query = message.query
                self.model.rebuild()
        else:
            with self.model_lock:
                self.model.adopt(message.view, message.shown, message.query)
        self.set_reactive(MainScreen.filter_query, message.query)  # done: no watcher
        self.query_one(SocketTable).refresh_rows()
        self.refresh_header()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.set_focus(self.query_one(SocketTable))

    def action_filter(self) -> None:
        """Focus the filter box now: every key typed after / goes to it, however fast."""
        # Widget.focus() defers the change, so keys already queued behind / would still
        # reach the table's bindings (a pasted "/ky" opened the kill dialog).
        self.set_focus(self.query_one("#filter", Input))

    def on_key(self, event: events.Key) -> None:
        """Esc in the filter clears it; a row action's key says why it is unavailable."""
        box = self.query_one("#filter", Input)
        if box.has_focus:
            if event.key == "escape":
                box.value = ""
                self._set_filter("")
                self.set_focus(self.query_one(SocketTable))
                event.stop()
            return
        command = KEYS.get(event.key)
        # A dimmed binding lets its key through to here: say why, do nothing.
        if command is not None and command.row is not None and self._explain(command.row):
            event.stop()

    # Availability -----------------------------------------------------------------------

    def unavailable(self, action: policy.RowAction) -> str | None:
        """Why a row action cannot run on the highlighted row now, or None."""
        ident = self.backend.identity
        return policy.unavailable(action, self.query_one(SocketTable).current,
                                  self.model.snapshot, ident.pid, ident.protected,
                                  self.too_small)

    def unavailable_command(self, command: Command) -> str | None:
        """Why a command cannot run now (for the palette), or None."""
        return self.unavailable(command.row) if command.row is not None else None

    async def run_command(self, command: Command) -> None:
        """Run a command from the palette; one that cannot run says why (run_action
        alone would skip a disabled action without a word)."""
        if command.row is None or not self._explain(command.row):
            await self.run_action(command.action)

    def _explain(self, action: policy.RowAction) -> bool:
        why = self.unavailable(action)
        if why:
            self.notify(f"Not available: {why}.", severity="warning", timeout=4)
        return why is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Unavailable row actions are dimmed in the footer (None), not hidden."""
        if action == "filter":
            # Typed in the box, `/` is just a character.
            return not self.query_one("#filter", Input).has_focus
        command = BY_ID.get(str(parameters[0]) if action == "signal" and parameters
                            else action)
        if command is not None and command.row is not None:
            return None if self.unavailable(command.row) else True
        return True

    def on_socket_table_highlighted(self, message: SocketTable.Highlighted) -> None:
        """The cursor moved (or its row changed): details, and which actions can run."""
        self._show_details()
        # The footer recomposes on refresh_bindings (tens of ms at 10k rows): only when
        # an action became available or unavailable.
        state = tuple(self.unavailable(c.row) is None for c in ROW_COMMANDS if c.row)
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    def _show_details(self) -> None:
        if self.details:
            self.query_one(DetailsPane).show(details_text(
                self.model, self.query_one(SocketTable).current, self.clock()))

    # Signals: ask, then act -------------------------------------------------------------

    def action_signal(self, kind: ActionKind) -> None:
        """Terminate, kill or free: plan from the row on screen, and ask."""
        if self._explain(kind):
            return
        row = self.query_one(SocketTable).current
        snap = self.model.snapshot
        assert row is not None and snap is not None  # unavailable() said so
        operator = self.backend.identity.operator
        plan = policy.plan(kind, row, snap, operator, self.grace)
        alternative = plan.every_holder() if plan.others else None
        if kind != "free" and plan.cautions and self.unavailable("free") is None:
            # Something restarts it: offer what frees the port for good.
            good = policy.plan("free", row, snap, operator, self.grace)
            alternative = good if good.for_good else alternative
        self.ask(plan, alternative)

    def ask(self, plan: ActionPlan, alternative: ActionPlan | None = None,
            context: tuple[str, ...] = ()) -> None:
        """Open the confirmation; the plan it returns is carried out here."""
        self.app.push_screen(ConfirmScreen(plan, alternative, context), self._decided)

    def _decided(self, plan: ActionPlan | None) -> None:
        if plan is None:
            self.notify("Cancelled: nothing was sent.", timeout=3)
            return
        self._carry_out(plan)

    @work(thread=True, group="action", exit_on_error=False)
    def _carry_out(self, plan: ActionPlan) -> None:
        """Signal exactly the plan's targets, then poll until its sockets are free (or its
        targets exit), for at most the grace period; post the judged outcome.

        Freeing for good comes first: the managers asked, the restarters signalled; then
        only the targets still holding the port are signalled."""
        worker = get_current_worker()
        said = [self.backend.ask(req)[1] for req in plan.requests]
        results = [self.backend.send_signal(t, plan.sig) for t in plan.first]
        targets = plan.targets
        if plan.for_good and plan.port is not None:
            port = plan.port
            deadline = time.monotonic() + FIRST_WAIT
            while not (held := self.backend.holders(port)).free and \
                    time.monotonic() < deadline and not worker.cancelled_event.wait(POLL):
                pass
            targets = tuple(t for t in targets if t.pid in held.pids)
        results += [self.backend.send_signal(t, plan.sig) for t in targets]
        acted = bool(plan.requests) or any(r.outcome == SENT for r in results)
        deadline = time.monotonic() + plan.grace
        holders: PortHolders | None = None
        alive: list[Target] = []
        wanted = set(plan.sockets)
        while True:
            if plan.port is not None:
                holders = self.backend.holders(plan.port)
                done = not any(addr_of(s) in wanted for s in holders.sockets)
            else:
                alive = [t for t in plan.targets if self.backend.is_alive(t)]
                done = not alive
            left = deadline - time.monotonic()
            if done or left <= 0 or not acted:
                break
            self.post_message(ActionProgress(plan, left))
            if worker.cancelled_event.wait(min(POLL, left)):
                break  # the app is closing
        outcome: Outcome | None = None
        if holders is not None and done and self.settle > 0 and acted:
            outcome = self._settle(plan, results, holders)
        if outcome is None:
            outcome = judge(plan, results, holders, alive)
        self.post_message(ActionDone(plan, outcome._replace(lines=(*outcome.lines, *said))))

    def _settle(self, plan: ActionPlan, results: list[SignalResult], free: PortHolders
                ) -> Outcome | None:
        """On the action's worker: the freed port must stay free for `settle` seconds; the
        outcome if something takes it again meanwhile (never signalled), else None."""
        assert plan.port is not None
        cancelled = get_current_worker().cancelled_event
        wanted = set(plan.sockets)
        start = time.monotonic()
        while (left := self.settle - (time.monotonic() - start)) > 0:
            self.post_message(ActionProgress(plan, left, settling=True))
            if cancelled.wait(min(POLL, left)):
                return None
            holders = self.backend.holders(plan.port)
            if any(addr_of(s) in wanted for s in holders.sockets):
                by = {t.pid: b for t in holders.targets
                      if (b := self.backend.started_by(t.pid)) is not None}
                return retaken(plan, results, holders, time.monotonic() - start, by)
        return None

    def on_action_progress(self, message: ActionProgress) -> None:
        """Count down in the activity line."""
        plan = message.plan
        what = (f"port {plan.port} to stay free" if message.settling
                else f"port {plan.port} to be free" if plan.port is not None
                else "the process to exit")
        self.activity = (f"{signal_name(plan.sig)} sent to PID {pid_list(plan.targets)}: "
                         f"waiting for {what}: {message.left:4.1f}s left")
        self.refresh_header()

    def on_action_done(self, message: ActionDone) -> None:
        """Report the outcome; a follow-up (SIGKILL, the other holders) is a new question."""
        outcome = message.outcome
        # The verdict in the activity line (one line, under the header); all of it in the
        # toast and, for a follow-up, atop the next dialog.
        self.activity = outcome.lines[0] if outcome.lines else ""
        self.refresh_header()
        self.set_timer(10, self._clear_activity(self.activity))
        self.notify(" ".join(outcome.lines), severity=TOAST[outcome.severity], timeout=8)
        plan = message.plan
        others = plan.follow_up(outcome.more) if outcome.more else None
        if outcome.escalate:
            self.ask(plan.escalation(outcome.escalate, KILL_GRACE), others,
                     outcome.lines)
        elif others is not None:
            self.ask(others, None, outcome.lines)

    def _clear_activity(self, text: str) -> Callable[[], None]:
        def clear() -> None:
            if self.activity == text:
                self.activity = ""
                self.refresh_header()
        return clear

    # Copy -------------------------------------------------------------------------------

    def action_copy_pid(self) -> None:
        """Copy the PID (OSC 52); on a managed row, the command that stops it for good."""
        row = self.query_one(SocketTable).current
        if self._explain("copy_pid") or row is None:
            return
        snap = self.model.snapshot
        m = snap.manager(row.sock) if snap is not None else None
        if m is not None and m.stop and m.kind not in ("orphan", "unknown"):
            self.app.copy_to_clipboard(m.stop)
            self.notify(f"Copied the command that stops it for good: {safe_text(m.stop)}",
                        timeout=4)
            return
        self.app.copy_to_clipboard(str(row.sock.pid))
        self.notify(f"Copied PID {row.sock.pid}.", timeout=2)

    def action_copy_cmdline(self) -> None:
        """Copy the command line (OSC 52)."""
        row = self.query_one(SocketTable).current
        snap = self.model.snapshot
        proc = snap.process(row.sock.pid) if row and snap else None
        if self._explain("copy_cmdline") or proc is None:
            return
        self.app.copy_to_clipboard(join_cmdline(proc.cmdline))
        self.notify("Copied the command line.", timeout=2)

    # Watch and probe --------------------------------------------------------------------

    def action_watch(self) -> None:
        """Watch the highlighted port, or stop watching it."""
        port = policy.row_port(self.query_one(SocketTable).current)
        if port is None:
            self.notify("Highlight a row to watch its port.", severity="warning")
            return
        if port in self.watched:
            del self.watched[port]
            self.notify(f"Stopped watching port {port}.", timeout=3)
        else:
            snap = self.model.snapshot
            self.watched[port] = PortHolders.of(port, snap) if snap else None
            self.notify(f"Watching port {port}: you will be told when it is freed or taken.",
                        timeout=4)
        self.refresh_header()

    def _check_watches(self, snap: Snapshot) -> None:
        def name(pid: int) -> str:
            proc = snap.process(pid)
            return safe_text(proc.name) if proc else "?"

        def started_by(pid: int) -> str | None:
            # From the sample's managers and parent chains: no call to the machine on the
            # UI thread.
            proc = snap.process(pid)
            parent = snap.process(proc.ppid) if proc is not None and proc.ppid else None
            return origin(pid, snap.managers, f"PID {parent.pid} ({parent.name})"
                          if parent is not None and parent.pid > 1 else None)

        now = self.clock()
        for port, before in list(self.watched.items()):
            after = PortHolders.of(port, snap)
            self.watched[port] = after
            if before is None:
                continue  # the first sample sets the baseline
            if after.free and not before.free:
                self._freed_at[port] = now
            freed = self._freed_at.pop(port, None) if not after.free else None
            for event in watch_events(port, before, after, name, started_by,
                                      None if freed is None else now - freed):
                self.notify(event, title="portside watch", timeout=10)
                self.app.bell()

    def action_probe(self) -> None:
        """Run the EADDRINUSE diagnosis for the highlighted port."""
        port = policy.row_port(self.query_one(SocketTable).current)
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
        d = message.diagnosis
        if d is None:
            self.notify(f"Probe failed: {safe_text(message.error)}", severity="error")
            return
        verdict = "can be bound now" if d.can_bind else "cannot be bound now"
        self.app.push_screen(TextScreen(f"Port {d.port}: {verdict}",
                                        Text("\n".join(diagnosis_lines(d)))))

    def action_help(self) -> None:
        """Keys and the filter syntax."""
        self.app.push_screen(TextScreen("portside help", help_text(help_keys(), self.grace)))

