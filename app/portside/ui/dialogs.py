"""Modal screens: the confirm-and-act dialog, the port probe report, and help."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..backend import Backend, PortHolders
from ..fmt import format_duration, join_cmdline, safe_text
from ..model import DENIED, GONE, REFUSED, SENT, SignalResult, Target
from ..query import SYNTAX_HELP

POLL = 0.1  # seconds between checks while waiting for a port to be freed


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What the user is asked to confirm, frozen when the dialog opens."""

    kind: str  # "terminate", "kill" or "free"
    sig: int
    targets: tuple[Target, ...]
    port: int | None  # success is this port being free; None: the targets exiting
    socket: str  # the socket the action came from, as shown to the user
    holders: int  # how many processes hold that socket
    typed_pid: int | None = None  # the PID the user must type (another user's / root's)
    grace: float = 5.0

    @property
    def title(self) -> str:
        """The dialog's question."""
        if self.kind == "free":
            return f"Free port {self.port}: SIGTERM every holder ({len(self.targets)})?"
        t = self.targets[0]
        verb = "Kill (SIGKILL)" if self.sig == signal.SIGKILL else "Terminate (SIGTERM)"
        return f"{verb} {safe_text(t.name)}, PID {t.pid}?"


def describe_target(t: Target) -> Text:
    """PID, name, user, start time and command line of a target, as plain text."""
    text = Text()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.create_time))
    text.append(f"PID {t.pid}", "bold")
    text.append(f"  {safe_text(t.name)}  user {safe_text(t.username or '?')}  "
                f"started {started}\n")
    text.append(f"  {safe_text(join_cmdline(t.cmdline) or '?')}\n", "dim")
    return text


class ActionScreen(ModalScreen[None]):
    """Confirm, signal, count down until the port is free, then report (and offer SIGKILL)."""

    BINDINGS = [
        Binding("y", "confirm", "Confirm", show=False),
        Binding("n,escape", "cancel", "Cancel", show=False),
        Binding("k", "escalate", "SIGKILL", show=False),
    ]

    class Progress(Message):
        """Seconds left in the grace period, from the worker."""

        def __init__(self, left: float, what: str) -> None:
            super().__init__()
            self.left = left
            self.what = what

    class Done(Message):
        """The action finished: what was sent and who still holds the port."""

        def __init__(self, results: list[SignalResult], holders: PortHolders | None,
                     alive: list[Target]) -> None:
            super().__init__()
            self.results = results
            self.holders = holders
            self.alive = alive

    def __init__(self, plan: ActionPlan, backend: Backend) -> None:
        super().__init__()
        self.plan = plan
        self.backend = backend
        self.state = "confirm"  # confirm -> running -> done
        self.remaining: tuple[Target, ...] = ()  # offered SIGKILL after a failed SIGTERM
        self.outcome = ""

    def compose(self) -> ComposeResult:
        plan = self.plan
        kill = plan.sig == signal.SIGKILL
        with Vertical(id="dialog", classes="danger" if kill else ""):
            yield Static(plan.title, id="dialog-title")
            body = Text()
            body.append(f"socket  {plan.socket}  ")
            body.append(f"held by {plan.holders} process(es)\n\n")
            for t in plan.targets:
                body.append_text(describe_target(t))
            if kill:
                body.append("\nSIGKILL cannot be caught: the process gets no chance to clean "
                            "up (unsaved data, temp files, child processes).\n", "bold")
            with VerticalScroll(id="dialog-scroll"):
                yield Static(body, id="dialog-body")
            if plan.typed_pid is not None:
                yield Static(f"This process belongs to {self._owner()}: type its PID "
                             f"({plan.typed_pid}) to confirm.", id="typed-label")
                yield Input(placeholder="PID", id="typed-pid", restrict=r"[0-9]*",
                            max_length=10)
            yield Static("", id="dialog-status")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary")
                label = "SIGKILL (y)" if kill else ("Free port (y)" if plan.kind == "free"
                                                    else "SIGTERM (y)")
                yield Button(label, id="confirm", variant="error" if kill else "warning")
                yield Button("SIGKILL the rest (k)", id="escalate", variant="error")

    def _owner(self) -> str:
        users = {t.username or "?" for t in self.plan.targets}
        return ", ".join(sorted(users))

    def on_mount(self) -> None:
        """Cancel has the focus: Enter alone never signals anything."""
        self.query_one("#escalate").display = False
        self.query_one("#cancel", Button).focus()

    # Buttons and keys -------------------------------------------------------------------

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#escalate")
    def _escalate_pressed(self) -> None:
        self.action_escalate()

    @on(Input.Submitted, "#typed-pid")
    def _typed(self) -> None:
        self.action_confirm()

    def action_cancel(self) -> None:
        """Close; while a signal is pending nothing more is sent."""
        if self.state == "confirm":
            self.app.notify("Cancelled: nothing was sent.", timeout=3)
        self.dismiss(None)

    def action_confirm(self) -> None:
        """Send the planned signal to exactly the frozen targets."""
        if self.state == "done" and not self.remaining:
            self.dismiss(None)
            return
        if self.state != "confirm":
            return
        if self.plan.typed_pid is not None:
            typed = self.query_one("#typed-pid", Input).value.strip()
            if typed != str(self.plan.typed_pid):
                self._status(f"Type {self.plan.typed_pid} to confirm (you typed "
                             f"{typed or 'nothing'}).", "error")
                self.query_one("#typed-pid", Input).focus()
                return
        self._start(self.plan.targets, self.plan.sig, self.plan.grace)

    def action_escalate(self) -> None:
        """SIGKILL exactly the holders still there after SIGTERM."""
        if self.state != "done" or not self.remaining:
            return
        self._start(self.remaining, signal.SIGKILL, 2.0)

    # Work -------------------------------------------------------------------------------

    def _start(self, targets: tuple[Target, ...], sig: int, grace: float) -> None:
        self.state = "running"
        self.remaining = ()
        self.query_one("#confirm").display = False
        self.query_one("#escalate").display = False
        if self.plan.typed_pid is not None:
            self.query_one("#typed-pid").display = False
        self.query_one("#cancel", Button).label = "Close (esc)"
        self.query_one("#cancel", Button).focus()
        name = signal.Signals(sig).name
        self._status(f"Sending {name} to PID {', '.join(str(t.pid) for t in targets)}…", "")
        self.run_worker(lambda: self._act(targets, sig, grace), thread=True, exclusive=True,
                        group="action", exit_on_error=False)

    def _act(self, targets: tuple[Target, ...], sig: int, grace: float) -> None:
        """Worker thread: signal, then poll the port (or the PIDs) until the grace ends."""
        results = [self.backend.send_signal(t, sig) for t in targets]
        port = self.plan.port
        what = f"port {port} to be free" if port is not None else "the process to exit"
        deadline = time.monotonic() + grace
        holders: PortHolders | None = None
        alive: list[Target] = []
        while True:
            if port is not None:
                holders = self.backend.holders(port)
                done = holders.free
            else:
                alive = [t for t in targets if self.backend.is_alive(t)]
                done = not alive
            left = deadline - time.monotonic()
            if done or left <= 0 or not any(r.outcome == SENT for r in results):
                break
            self.post_message(self.Progress(left, what))
            time.sleep(min(POLL, left))
        self.post_message(self.Done(results, holders, alive))

    def on_action_screen_progress(self, message: Progress) -> None:
        """Show the countdown."""
        if self.state == "running":
            self._status(f"Waiting for {message.what}: {message.left:4.1f}s left", "")

    def on_action_screen_done(self, message: Done) -> None:
        """Report the outcome; offer SIGKILL for exactly the remaining holders."""
        self.state = "done"
        lines, severity, remaining = outcome(self.plan, message)
        self.remaining = remaining
        self.outcome = " ".join(lines)
        self._status("\n".join(lines), severity)
        if remaining:
            self.query_one("#escalate").display = True
        self.app.notify(self.outcome, severity="information" if severity == "success"
                        else "warning" if severity == "warning" else "error", timeout=8)

    def _status(self, text: str, severity: str) -> None:
        status = self.query_one("#dialog-status", Static)
        status.update(Text(text))
        status.set_classes(severity)


def outcome(plan: ActionPlan, done: ActionScreen.Done
            ) -> tuple[list[str], str, tuple[Target, ...]]:
    """(lines, severity, holders to offer SIGKILL) for a finished action."""
    lines: list[str] = []
    sent = [r for r in done.results if r.outcome == SENT]
    for r in done.results:
        if r.outcome == DENIED:
            lines.append(f"PID {r.target.pid}: permission denied: it belongs to another user. "
                         "Run portside with sudo to stop it.")
        elif r.outcome == GONE:
            lines.append(f"PID {r.target.pid}: already exited or PID reused: nothing sent.")
        elif r.outcome == REFUSED:
            lines.append(f"PID {r.target.pid}: refused: {r.message}.")
    name = signal.Signals(done.results[0].signal).name if done.results else "signal"
    if done.holders is not None:
        h = done.holders
        if h.free:
            lines.insert(0, f"Port {h.port} is free." + (f" ({name} sent to "
                         f"{', '.join(str(r.target.pid) for r in sent)})" if sent else ""))
            return lines, "success" if not lines[1:] else "warning", ()
        who = ", ".join(f"{t.pid} ({safe_text(t.name)})" for t in h.targets)
        if h.unknown:
            who = (who + ", " if who else "") + f"{h.unknown} socket(s) of unknown owner"
        lines.insert(0, f"Port {h.port} is still held by PID {who}.")
        can_kill = done.results and done.results[0].signal != signal.SIGKILL
        remaining = tuple(h.targets) if can_kill and sent else ()
        if remaining:
            lines.append("Press k to SIGKILL exactly these, or Esc to leave them.")
        return lines, "error", remaining
    if not done.alive:
        if sent:
            lines.insert(0, f"PID {', '.join(str(r.target.pid) for r in sent)} exited.")
        return lines, "success" if sent and len(lines) == 1 else "warning", ()
    lines.insert(0, f"PID {', '.join(str(t.pid) for t in done.alive)} still running after "
                    f"{name}.")
    can_kill = done.results and done.results[0].signal != signal.SIGKILL
    remaining = tuple(done.alive) if can_kill else ()
    if remaining:
        lines.append("Press k to SIGKILL it, or Esc to leave it.")
    return lines, "error", remaining


class TextScreen(ModalScreen[None]):
    """A scrollable report (the port probe, help); any of esc, q, enter closes it."""

    BINDINGS = [Binding("escape,q,enter,question_mark", "close", "Close")]

    def __init__(self, title: str, body: Text, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._title = title
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="report"):
            yield Static(self._title, id="report-title")
            with VerticalScroll(id="report-scroll"):
                yield Static(self._body, id="report-body")
            yield Static("esc to close", id="report-hint")

    def action_close(self) -> None:
        """Close the report."""
        self.dismiss(None)


def help_text(keys: list[tuple[str, str]]) -> Text:
    """The help screen: keys, then the filter syntax."""
    text = Text()
    text.append("Keys\n", "bold")
    for key, desc in keys:
        text.append(f"  {key:<12}", "bold")
        text.append(f"{desc}\n")
    text.append("\nFilter syntax (press / to filter)\n", "bold")
    text.append(SYNTAX_HELP + "\n")
    text.append("\nRows: new ones are highlighted for a few seconds, vanished ones stay a few "
                "seconds marked 'gone', state changes are marked. '?' as owner: another "
                "user's socket (run with sudo). '~' before a time: estimated.\n")
    text.append("\nTerminate, kill and free ask first (Cancel has the focus); after SIGTERM a "
                "countdown runs until the port is free, then SIGKILL is offered for exactly "
                f"the processes still holding it. Grace period: {format_duration(5.0)}.\n")
    return text
