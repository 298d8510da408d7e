"""Modal screens: the confirm-and-act dialog, the port probe report, and help."""

from __future__ import annotations

import signal

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..actions import GRACE, ActionPlan, pid_list, request_label
from ..fmt import describe_target, format_duration, safe_text
from ..model import Target
from ..query import SYNTAX_HELP

# A confirmation takes y, Enter or a click only once it has been on screen this long: keys
# typed ahead (or pasted) before the dialog was seen must never confirm it.
ARM_SECONDS = 0.5


class ArmedInput(Input):
    """An Input that drops every key and paste while its dialog is not armed."""

    def _armed(self) -> bool:
        return bool(getattr(self.screen, "armed", True))

    async def _on_key(self, event: events.Key) -> None:
        if not self._armed() and event.key not in ("escape", "tab", "shift+tab"):
            event.stop()
            event.prevent_default()
            self.screen.post_message(ConfirmScreen.Dropped(event.key))
            return
        await super()._on_key(event)

    def _on_paste(self, event: events.Paste) -> None:
        if not self._armed():
            event.stop()
            event.prevent_default()
            self.screen.post_message(ConfirmScreen.Dropped("paste"))
            return
        super()._on_paste(event)


def _target(body: Text, t: Target, role: str = "") -> None:
    head, command = describe_target(t)
    body.append(f"PID {t.pid}", "bold")
    body.append(head.removeprefix(f"PID {t.pid}") + (f"  ({role})" if role else "") + "\n")
    body.append(f"  {command}\n", "dim")


def plan_body(plan: ActionPlan, alternative: ActionPlan | None = None) -> Text:
    """The dialog's body: the socket, every target, and what signalling them will not do."""
    kill = plan.sig == signal.SIGKILL
    body = Text()
    body.append(f"socket  {plan.socket}  ")
    body.append(f"held by {len(plan.holders)} process(es)\n\n")
    for req in plan.requests:
        body.append(f"First, ask {req.via} to stop {safe_text(request_label(req))}", "bold")
        body.append(f": {safe_text(req.command)}\n")
        body.append(f"  PID {', '.join(map(str, req.holders))} holds the port for it: no "
                    "signal is sent to it\n", "dim")
    if plan.first:
        body.append("First, SIGTERM what restarts the holders:\n", "bold")
        for t in plan.first:
            _target(body, t, "restarter")
        if plan.targets:
            body.append("Then, if they still hold the port:\n", "bold")
    for t in plan.targets:
        _target(body, t)
    for caution in plan.cautions if not plan.for_good else ():
        body.append(f"\n{safe_text(caution)}.", "bold")
        if alternative is not None and alternative.for_good:
            body.append(f" Press a to free it for good instead ({safe_text(plan.stop)}).",
                        "bold")
        body.append("\n")
    others = plan.others
    if others:
        body.append(f"\n{len(plan.holders)} processes hold this socket: signalling "
                    f"{'it' if len(plan.targets) == 1 else 'these'} alone will not free the "
                    f"port, PID {pid_list(others)} keep{'s' if len(others) == 1 else ''} it."
                    + (f" Press a for: {alternative.choice}." if alternative else "")
                    + "\n", "bold")
    if kill:
        body.append("\nSIGKILL cannot be caught: the process gets no chance to clean "
                    "up (unsaved data, temp files, child processes).\n", "bold")
    return body


class ConfirmScreen(ModalScreen[ActionPlan | None]):
    """Show a frozen plan and ask; return it if confirmed, None if not. Nothing is sent here.

    `alternative` is a second plan the user may switch to with `a` (every holder of the
    socket, or the holders a first action did not signal); switching shows it and asks
    again. `context` says why the dialog is asked (the outcome of the action before it).
    """

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
        background: $background 60%;
    }
    ConfirmScreen #dialog {
        width: 90;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    ConfirmScreen #dialog.-danger {
        border: thick $error;
    }
    ConfirmScreen #dialog-context {
        color: $text-error;
        text-style: bold;
        margin-bottom: 1;
    }
    ConfirmScreen #dialog-title {
        text-style: bold;
        margin-bottom: 1;
    }
    ConfirmScreen #dialog-scroll {
        height: auto;
        max-height: 14;
    }
    ConfirmScreen #typed-label {
        margin-top: 1;
        color: $text-warning;
    }
    ConfirmScreen #typed-pid {
        width: 20;
    }
    ConfirmScreen #dialog-status {
        height: auto;
        margin-top: 1;
    }
    ConfirmScreen #dialog-status.-warning {
        color: $text-warning;
    }
    ConfirmScreen #dialog-status.-error {
        color: $text-error;
        text-style: bold;
    }
    ConfirmScreen #dialog-buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ConfirmScreen #dialog-buttons Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("y", "confirm", "Confirm", show=False),
        Binding("k", "confirm_kill", "SIGKILL", show=False),
        Binding("a", "alternative", "The other plan", show=False),
        Binding("n,escape", "cancel", "Cancel", show=False),
    ]

    class Dropped(Message):
        """A key or paste arrived before the dialog was armed, and was ignored."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, plan: ActionPlan, alternative: ActionPlan | None = None,
                 context: tuple[str, ...] = (), arm_seconds: float = ARM_SECONDS) -> None:
        super().__init__()
        self.plan = plan
        self.alternative = alternative
        self.context = context
        self.armed = False  # confirmations are ignored until the dialog has been seen
        self.arm_seconds = arm_seconds
        self._arming = 0  # which arming period is running (a newer one replaces it)

    def compose(self) -> ComposeResult:
        plan = self.plan
        kill = plan.sig == signal.SIGKILL
        with Vertical(id="dialog", classes="-danger" if kill else ""):
            if self.context:
                yield Static(Text("\n".join(self.context)), id="dialog-context")
            yield Static(Text(plan.title), id="dialog-title")
            with VerticalScroll(id="dialog-scroll"):
                yield Static(plan_body(plan, self.alternative), id="dialog-body")
            if plan.typed_pid is not None:
                yield Static(Text(f"This process belongs to {self._owner()}: type its PID "
                                  f"({plan.typed_pid}) to confirm."), id="typed-label")
                yield ArmedInput(placeholder="PID", id="typed-pid", restrict=r"[0-9]*",
                                 max_length=10)
            yield Static("", id="dialog-status")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel (n)", id="cancel", variant="primary",
                             action="screen.press_cancel")
                yield Button(f"{plan.verb} (y)", id="confirm",
                             variant="error" if kill else "warning", action="screen.confirm")
                if self.alternative is not None:
                    yield Button(f"{self.alternative.choice} (a)", id="alternative",
                                 variant="warning", action="screen.alternative")

    def _owner(self) -> str:
        users = {safe_text(t.username or "?") for t in self.plan.targets}
        return ", ".join(sorted(users))

    def on_mount(self) -> None:
        """Cancel (or the PID box) has the focus; nothing is accepted until armed."""
        self._focus_first()
        self._arm()

    def _focus_first(self) -> None:
        if self.plan.typed_pid is not None:
            self.set_focus(self.query_one("#typed-pid", Input))
        else:
            self.set_focus(self.query_one("#cancel", Button))

    def _arm(self) -> None:
        """Ignore confirmations until this dialog has been on screen for arm_seconds."""
        self.armed = False
        self._arming += 1
        arming = self._arming
        self._status(f"Read this first: keys are ignored for {self.arm_seconds:g}s.", "")

        def start() -> None:  # after the dialog's first paint
            self.set_timer(self.arm_seconds, lambda: self._armed_now(arming))

        self.call_after_refresh(start)

    def _armed_now(self, arming: int) -> None:
        if arming != self._arming:
            return
        self.armed = True
        how = "type the PID, then Enter" if self.plan.typed_pid is not None else "press y"
        self._status(f"Ready: {how} to confirm; n or Esc cancels.", "")

    def on_confirm_screen_dropped(self, message: Dropped) -> None:
        """Say that an early key was ignored."""
        key = "a paste" if message.key == "paste" else f"'{message.key}'"
        self._status(f"Ignored {key}: pressed before this dialog was shown. Read it, then "
                     "confirm again.", "-warning")

    def _accepts(self, key: str) -> bool:
        if not self.armed:
            self.post_message(self.Dropped(key))
        return self.armed

    # Keys and buttons -------------------------------------------------------------------

    def action_cancel(self) -> None:
        """n and Esc always cancel."""
        self.dismiss(None)

    def action_press_cancel(self) -> None:
        """The Cancel button: an Enter typed ahead onto it is dropped like any early key
        (the user has not read the dialog yet)."""
        if self._accepts("enter"):
            self.dismiss(None)

    def action_confirm(self) -> None:
        """Return the plan, if armed (and, for another user's process, its PID typed)."""
        if not self._accepts("y"):
            return
        if self.plan.typed_pid is not None:
            box = self.query_one("#typed-pid", Input)
            typed = box.value.strip()
            if typed != str(self.plan.typed_pid):
                self._status(f"Type {self.plan.typed_pid} to confirm (you typed "
                             f"{typed or 'nothing'}).", "-error")
                self.set_focus(box)
                return
        self.dismiss(self.plan)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the PID box confirms (if the PID is right)."""
        event.stop()
        self.action_confirm()

    def action_confirm_kill(self) -> None:
        """k confirms a SIGKILL (the key that asked for it); it is ignored otherwise."""
        if self.plan.sig == signal.SIGKILL:
            self.action_confirm()

    async def action_alternative(self) -> None:
        """Show the other plan instead, and ask again from the start."""
        if self.alternative is None or not self._accepts("a"):
            return
        self.plan, self.alternative = self.alternative, None
        await self.recompose()
        self._focus_first()
        self._arm()

    def _status(self, text: str, severity: str) -> None:
        status = self.query_one("#dialog-status", Static)
        status.update(Text(text))
        status.set_classes(severity)

    @property
    def status_text(self) -> str:
        """What the status line says now."""
        return str(self.query_one("#dialog-status", Static).render())


class TextScreen(ModalScreen[None]):
    """A scrollable report (the port probe, help); any of esc, q, enter closes it."""

    DEFAULT_CSS = """
    TextScreen {
        align: center middle;
        background: $background 60%;
    }
    TextScreen #report {
        width: 100;
        max-width: 95%;
        height: 80%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    TextScreen #report-title {
        text-style: bold;
        padding: 1 0;
    }
    TextScreen #report-scroll {
        height: 1fr;
    }
    TextScreen #report-hint {
        color: $text-muted;
        height: 1;
    }
    """

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


def help_text(keys: list[tuple[str, str]], grace: float = GRACE) -> Text:
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
                f"the first {ARM_SECONDS:g}s are ignored). With several holders, a shows the "
                "plan for all of them. After SIGTERM the header counts down until the socket "
                "is free; SIGKILL is then offered, in a new dialog, only to the processes "
                "that got SIGTERM and still hold it, and holders that got no signal need "
                "their own confirmation (a). Grace period: "
                f"{format_duration(grace)}.\n")
    return text
