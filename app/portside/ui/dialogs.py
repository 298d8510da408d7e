"""Modal screens: the confirm-and-act dialog, the port probe report, and help."""

from __future__ import annotations

import signal
import time

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..actions import ActionPlan, Outcome, addr_of, judge, pid_list
from ..backend import Backend, PortHolders
from ..fmt import format_duration, join_cmdline, safe_text
from ..model import SENT, SignalResult, Target
from ..query import SYNTAX_HELP

POLL = 0.1  # seconds between checks while waiting for a port to be freed
# A confirmation takes y, Enter or a click only once it has been on screen this long: keys
# typed ahead (or pasted) before the dialog was seen must never confirm it.
ARM_SECONDS = 0.5
TOAST: dict[str, SeverityLevel] = {"success": "information", "warning": "warning"}


class ArmedInput(Input):
    """An Input that drops every key and paste while its dialog is not armed."""

    def _armed(self) -> bool:
        return bool(getattr(self.screen, "armed", True))

    async def _on_key(self, event: events.Key) -> None:
        if not self._armed() and event.key not in ("escape", "tab", "shift+tab"):
            event.stop()
            event.prevent_default()
            self.screen.post_message(ActionScreen.Dropped(event.key))
            return
        await super()._on_key(event)

    def _on_paste(self, event: events.Paste) -> None:
        if not self._armed():
            event.stop()
            event.prevent_default()
            self.screen.post_message(ActionScreen.Dropped("paste"))
            return
        super()._on_paste(event)


def describe_target(t: Target) -> Text:
    """PID, name, user, start time and command line of a target, as plain text."""
    text = Text()
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.create_time))
    text.append(f"PID {t.pid}", "bold")
    text.append(f"  {safe_text(t.name)}  user {safe_text(t.username or '?')}  "
                f"started {started}\n")
    text.append(f"  {safe_text(join_cmdline(t.cmdline) or '?')}\n", "dim")
    return text


def plan_body(plan: ActionPlan) -> Text:
    """The dialog's body: the socket, every target, and what signalling them will not do."""
    kill = plan.sig == signal.SIGKILL
    body = Text()
    body.append(f"socket  {plan.socket}  ")
    body.append(f"held by {len(plan.holders)} process(es)\n\n")
    for t in plan.targets:
        body.append_text(describe_target(t))
    others = plan.others
    if others:
        body.append(f"\n{len(plan.holders)} processes hold this socket: signalling "
                    f"{'it' if len(plan.targets) == 1 else 'these'} alone will not free the "
                    f"port, PID {pid_list(others)} keep{'s' if len(others) == 1 else ''} it. "
                    f"Press a to signal all {len(plan.holders)}.\n", "bold")
    if kill:
        body.append("\nSIGKILL cannot be caught: the process gets no chance to clean "
                    "up (unsaved data, temp files, child processes).\n", "bold")
    return body


class ActionScreen(ModalScreen[None]):
    """Confirm, signal, count down until the port is free, then report (and offer SIGKILL)."""

    BINDINGS = [
        Binding("y", "confirm", "Confirm", show=False),
        Binding("a", "all_holders", "Every holder", show=False),
        Binding("n,escape", "cancel", "Cancel", show=False),
        Binding("k", "escalate", "SIGKILL", show=False),
    ]

    class Progress(Message):
        """Seconds left in the grace period, from the worker."""

        def __init__(self, left: float, what: str) -> None:
            super().__init__()
            self.left = left
            self.what = what

    class Dropped(Message):
        """A key or paste arrived before the dialog was armed, and was ignored."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

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
        self.result: Outcome | None = None
        self.armed = False  # confirmations are ignored until the dialog has been seen
        self.arm_seconds = ARM_SECONDS
        self._arming = 0  # which arming period is running (a newer one replaces it)

    @property
    def outcome_text(self) -> str:
        """The outcome, one line per fact ("" until the action is done)."""
        return "\n".join(self.result.lines) if self.result is not None else ""

    @property
    def remaining(self) -> tuple[Target, ...]:
        """The processes SIGKILL is offered to: they got SIGTERM and still hold the port."""
        return self.result.escalate if self.result is not None else ()

    def compose(self) -> ComposeResult:
        plan = self.plan
        kill = plan.sig == signal.SIGKILL
        with Vertical(id="dialog", classes="danger" if kill else ""):
            yield Static(Text(plan.title), id="dialog-title")
            with VerticalScroll(id="dialog-scroll"):
                yield Static(plan_body(plan), id="dialog-body")
            if plan.typed_pid is not None:
                yield Static(Text(f"This process belongs to {self._owner()}: type its PID "
                                  f"({plan.typed_pid}) to confirm."), id="typed-label")
                yield ArmedInput(placeholder="PID", id="typed-pid", restrict=r"[0-9]*",
                                 max_length=10)
            yield Static("", id="dialog-status")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary")
                label = "SIGKILL (y)" if kill else ("Free port (y)" if plan.kind == "free"
                                                    else "SIGTERM (y)")
                yield Button(label, id="confirm", variant="error" if kill else "warning")
                yield Button(f"All {len(plan.holders)} holders (a)", id="all-holders",
                             variant="warning")
                yield Button("SIGKILL them (k)", id="escalate", variant="error")
                yield Button("Signal the others (a)", id="more", variant="warning")

    def _owner(self) -> str:
        users = {safe_text(t.username or "?") for t in self.plan.targets}
        return ", ".join(sorted(users))

    def on_mount(self) -> None:
        """Cancel (or the PID box) has the focus; nothing is accepted until armed."""
        self.query_one("#escalate").display = False
        self.query_one("#more").display = False
        self.query_one("#all-holders").display = bool(self.plan.others)
        if self.plan.typed_pid is not None:
            self.set_focus(self.query_one("#typed-pid", Input))
        else:
            self.set_focus(self.query_one("#cancel", Button))
        self._arm("confirm")

    def _arm(self, what: str) -> None:
        """Ignore confirmations until this dialog has been on screen for arm_seconds."""
        self.armed = False
        self._arming += 1
        arming = self._arming
        first = self.outcome_text + "\n" if what == "escalate" else ""
        self._status(f"{first}Read this first: keys are ignored for {self.arm_seconds:g}s.",
                     "error" if what == "escalate" else "")

        def start() -> None:  # after the dialog's first paint
            self.set_timer(self.arm_seconds, lambda: self._armed_now(arming, what))

        self.call_after_refresh(start)

    def _armed_now(self, arming: int, what: str) -> None:
        if arming != self._arming:
            return
        self.armed = True
        if what == "confirm":
            how = ("type the PID, then Enter" if self.plan.typed_pid is not None
                   else "press y")
            self._status(f"Ready: {how} to confirm; n or Esc cancels.", "")
        else:
            self._status(self.outcome_text, "error")

    def on_action_screen_dropped(self, message: Dropped) -> None:
        """Say that an early key was ignored."""
        key = "a paste" if message.key == "paste" else f"'{message.key}'"
        self._status(f"Ignored {key}: pressed before this dialog was shown. Read it, then "
                     "confirm again.", "warning")

    # Buttons and keys -------------------------------------------------------------------

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        # n and Esc always cancel; an Enter typed ahead onto the focused button is dropped
        # like any other early key (the user has not read the dialog yet).
        if self.state != "confirm" or self._accepts("enter"):
            self.action_cancel()

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#all-holders, #more")
    def _all_pressed(self) -> None:
        self.action_all_holders()

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

    def _accepts(self, key: str) -> bool:
        if not self.armed:
            self.post_message(self.Dropped(key))
        return self.armed

    def action_confirm(self) -> None:
        """Send the planned signal to exactly the frozen targets."""
        if self.state == "done" and not self.remaining and not self._more():
            self.dismiss(None)
            return
        if self.state != "confirm" or not self._accepts("y"):
            return
        if self.plan.typed_pid is not None:
            typed = self.query_one("#typed-pid", Input).value.strip()
            if typed != str(self.plan.typed_pid):
                self._status(f"Type {self.plan.typed_pid} to confirm (you typed "
                             f"{typed or 'nothing'}).", "error")
                self.set_focus(self.query_one("#typed-pid", Input))
                return
        self._start(self.plan.targets, self.plan.sig, self.plan.grace)

    def action_all_holders(self) -> None:
        """Before: widen the action to every holder. After: a new dialog for the others."""
        if self.state == "confirm" and self.plan.others:
            if not self._accepts("a"):
                return
            self.dismiss(None)
            self.app.push_screen(ActionScreen(self.plan.every_holder(), self.backend))
        elif self.state == "done" and self._more():
            if not self._accepts("a"):
                return
            self.dismiss(None)
            self.app.push_screen(ActionScreen(self.plan.follow_up(self._more()),
                                              self.backend))

    def _more(self) -> tuple[Target, ...]:
        return self.result.more if self.result is not None else ()

    def action_escalate(self) -> None:
        """SIGKILL exactly the processes this action sent SIGTERM that still hold it."""
        if self.state != "done" or not self.remaining or not self._accepts("k"):
            return
        self._start(self.remaining, signal.SIGKILL, 2.0)

    # Work -------------------------------------------------------------------------------

    def _start(self, targets: tuple[Target, ...], sig: int, grace: float) -> None:
        self.state = "running"
        self.result = None
        for button in ("#confirm", "#escalate", "#all-holders", "#more"):
            self.query_one(button).display = False
        if self.plan.typed_pid is not None:
            self.query_one("#typed-pid").display = False
        self.query_one("#cancel", Button).label = "Close (esc)"
        self.set_focus(self.query_one("#cancel", Button))
        name = signal.Signals(sig).name
        self._status(f"Sending {name} to PID {pid_list(targets)}…", "")
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
        wanted = set(self.plan.sockets)
        while True:
            if port is not None:
                holders = self.backend.holders(port)
                done = not any(addr_of(s) in wanted for s in holders.sockets)
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
        """Report the outcome; offer SIGKILL only to the processes that got SIGTERM."""
        self.state = "done"
        result = judge(self.plan, message.results, message.holders, message.alive)
        self.result = result
        self._status(self.outcome_text, result.severity)
        self.query_one("#escalate").display = bool(result.escalate)
        self.query_one("#more").display = bool(result.more)
        if result.escalate or result.more:
            self._arm("escalate")  # a follow-up is a confirmation too: not by a key typed ahead
        self.app.notify(" ".join(result.lines), severity=TOAST.get(result.severity, "error"),
                        timeout=8)

    def _status(self, text: str, severity: str) -> None:
        status = self.query_one("#dialog-status", Static)
        status.update(Text(text))
        status.set_classes(severity)


class TextScreen(ModalScreen[None]):
    """A scrollable report (the port probe, help); any of esc, q, enter closes it."""

    BINDINGS = [Binding("escape,q,enter,question_mark", "close", "Close")]

    def __init__(self, title: str, body: Text, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._title = title
        self._body = body

    def compose(self) -> ComposeResult:
        with Vertical(id="report"):
            yield Static(Text(self._title), id="report-title")
            with VerticalScroll(id="report-scroll"):
                yield Static(self._body, id="report-body")
            yield Static("esc to close", id="report-hint", markup=False)

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
    text.append("\nTerminate, kill and free ask first (Cancel has the focus; keys pressed in "
                f"the first {ARM_SECONDS:g}s are ignored). With several holders, a signals "
                "them all. After SIGTERM a countdown runs until the socket is free; SIGKILL "
                "is offered only to the processes that got SIGTERM and still hold it, and "
                "holders that got no signal need a new confirmation (a). Grace period: "
                f"{format_duration(5.0)}.\n")
    return text
