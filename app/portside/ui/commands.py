"""The dashboard's one registry of actions: it feeds the bindings, footer, help and palette."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..policy import RowAction


@dataclass(frozen=True, slots=True)
class Command:
    """One action: its key, what it runs, and how it is shown."""

    id: str
    key: str
    action: str  # what run_action runs, e.g. "signal('terminate')"
    label: str  # the footer's word
    description: str  # the help line and the palette's title: what it does
    show: bool = True  # in the footer
    row: RowAction | None = None  # acts on the highlighted row: the policy says when it can
    priority: bool = False
    key_display: str | None = None


COMMANDS: tuple[Command, ...] = (
    # `/` is a priority binding: it takes the focus as the App reads the key, before the
    # keys queued behind it are handed out (bubbling would get it there too late).
    Command("filter", "slash", "filter", "Filter", "Filter the table (Esc clears it)",
            priority=True, key_display="/"),
    Command("terminate", "t", "signal('terminate')", "Term",
            "Terminate the highlighted process (SIGTERM)", row="terminate"),
    Command("kill", "k", "signal('kill')", "Kill",
            "Kill the highlighted process (SIGKILL)", row="kill"),
    Command("free", "f", "signal('free')", "Free port",
            "Free the highlighted port: SIGTERM every holder", row="free"),
    Command("pause", "p,space", "toggle('paused')", "Pause", "Pause or resume live updates",
            key_display="p"),
    Command("refresh", "r", "refresh", "Refresh", "Sample now", show=False),
    Command("all_states", "a", "toggle('all_states')", "All",
            "Show every TCP state, or only LISTEN / TIME_WAIT / UDP"),
    Command("fold", "z", "toggle('fold')", "Fold TW",
            "Fold each port's TIME_WAIT sockets into one row"),
    Command("watch", "w", "watch", "Watch",
            "Watch the highlighted port: notify when it is freed or taken", row="watch"),
    Command("probe", "b", "probe", "Probe",
            "Why can't I bind the highlighted port? (EADDRINUSE diagnosis)", row="probe"),
    Command("sort", "s", "sort", "Sort", "Sort by the next column", show=False),
    Command("reverse", "S", "reverse", "Reverse", "Reverse the sort order", show=False),
    Command("details", "d", "toggle('details')", "Details", "Show or hide the details pane",
            show=False),
    Command("copy_pid", "c", "copy_pid", "Copy PID",
            "Copy the highlighted PID (on a managed row, the command that stops it for "
            "good) to the clipboard", show=False, row="copy_pid"),
    Command("copy_cmdline", "C", "copy_cmdline", "Copy cmd",
            "Copy the highlighted command line to the clipboard", show=False,
            row="copy_cmdline"),
    Command("help", "question_mark", "help", "Help", "Show the keys and the filter syntax",
            key_display="?"),
    Command("quit", "q", "app.quit", "Quit", "Quit portside"),
)
BY_ID = {c.id: c for c in COMMANDS}
ROW_COMMANDS = tuple(c for c in COMMANDS if c.row is not None)


def bindings() -> list[Binding]:
    """The main screen's bindings, one per command."""
    return [Binding(c.key, c.action, c.label, show=c.show, tooltip=c.description, id=c.id,
                    key_display=c.key_display, priority=c.priority) for c in COMMANDS]


def help_keys() -> list[tuple[str, str]]:
    """(key, description) for the help screen."""
    keys = [(c.key_display or c.key, c.description) for c in COMMANDS]
    return [*keys, ("space", "Pause or resume (like p)"),
            ("↑↓ PgUp PgDn", "Move; Home/End: first/last row; click a header to sort"),
            ("ctrl+p", "Command palette: every action by name")]


class CommandHost(Protocol):
    """The screen the palette acts on (MainScreen)."""

    def unavailable_command(self, command: Command) -> str | None:
        """Why the command cannot run now, or None."""

    async def run_command(self, command: Command) -> None:
        """Run it, or say why it cannot run."""


class ActionCommands(Provider):
    """Every portside action in the command palette, run through the screen's run_command.

    An action that cannot run on the highlighted row says why in its help line; run
    anyway, it explains itself and does nothing.
    """

    @property
    def host(self) -> CommandHost:
        """The screen the palette was opened on."""
        return cast(CommandHost, self.screen)

    def _commands(self) -> list[tuple[Command, str]]:
        out = []
        for c in COMMANDS:
            reason = self.host.unavailable_command(c)
            key = c.key_display or c.key.split(",")[0]
            out.append((c, f"Not available now: {reason}" if reason else f"key {key}"))
        return out

    def _run(self, command: Command) -> Callable[[], Awaitable[None]]:
        return partial(self.host.run_command, command)

    async def discover(self) -> Hits:
        """Every action, before anything is typed."""
        for c, help_text in self._commands():
            yield DiscoveryHit(c.description, self._run(c), help=help_text)

    async def search(self, query: str) -> Hits:
        """Actions whose description matches what was typed."""
        matcher = self.matcher(query)
        for c, help_text in self._commands():
            score = matcher.match(c.description)
            if score > 0:
                yield Hit(score, matcher.highlight(c.description), self._run(c), help=help_text)
