"""The main screen's text widgets. Each owns its text and repaints only when it changed."""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Input, Static

from ..backend import Identity
from ..fmt import format_duration, safe_text
from ..view import TableModel


class FilterInput(Input):
    """The filter box. Textual's Input takes a new virtual size (its text's width) on
    every key typed, and that re-lays out the whole screen: a repaint of every widget,
    tens of milliseconds a key with a large table. The box's own size never changes, so
    the new virtual size is taken quietly; Input's own assignment then changes nothing."""

    error = ""  # why the text typed is not a filter ("" when it is one)

    def _watch_value(self, value: str) -> None:
        self.set_reactive(Input.virtual_size, Size(self.content_width, 1))
        super()._watch_value(value)

    def say(self, error: str) -> None:
        """Mark the box invalid and say why in its bottom border ("": valid). In the
        border, not a line below it: a line that comes and goes re-lays out the screen
        on every key typed through a half-written term (`state:`, `port:30-`)."""
        if error == self.error:
            return
        self.error = error
        self.set_class(bool(error), "-invalid")
        self.border_subtitle = Text(error) if error else None  # text: never markup


class StatusLine(Widget):
    """The one-line header; repainted in place, never re-laid out (it updates every sample)."""

    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()

    def show(self, text: Text) -> None:
        """Replace the text (a repaint of one line, only when it differs)."""
        if text.plain != self._text.plain or text.spans != self._text.spans:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        """The current status."""
        return self._text


def is_late(age: float, interval: float) -> bool:
    """A sample older than this is late: the header counts its age, and the screen's
    clock ticks by itself until the next one comes."""
    return age > interval + 1


def header_text(identity: Identity, interval: float, paused: bool, model: TableModel,
                sampled_at: float | None, now: float, watched: list[int],
                filtering: bool = False) -> Text:
    """The header: who and where, live or paused, the sample's age, what is shown
    (`filtering`: a new filter is being applied, the rows are still the last one's)."""
    snap = model.snapshot
    status = Text(f"portside · {safe_text(identity.hostname)} · {safe_text(identity.user)} "
                  f"({'root' if identity.is_root else 'not root'}) · every {interval:g}s · ")
    age = now - sampled_at if sampled_at is not None and snap is not None else None
    # Data older than a few intervals is never called live, whatever kept it from coming.
    stale = not paused and age is not None and age > max(3 * interval, interval + 5)
    if paused:
        status.append("PAUSED", "bold reverse")
    elif stale:
        status.append("STALE", "bold reverse")
    else:
        status.append("● live", "bold")
    if age is not None and snap is not None:
        if stale or paused or is_late(age, interval):
            # Late: count the seconds. On time, the sample's clock time is enough (and an
            # idle header does not have to repaint every second).
            status.append(f" · sample {format_duration(age)} ago")
        else:
            status.append(" · sampled " + time.strftime("%H:%M:%S",
                                                        time.localtime(snap.taken_at)))
    else:
        status.append(" · waiting for the first sample")
    if snap is not None:
        total = len(snap.sockets)
        status.append(f" · {model.shown} of {total} sockets" if model.shown != total
                      else f" · {total} sockets")
        if filtering:
            status.append(" · filtering…", "bold")
        if model.fold:
            status.append(" · TIME_WAIT folded")
    if watched:
        status.append(" · watching " + " ".join(f":{p}" for p in sorted(watched)))
    return status


class ActivityLine(Static):
    """What the last action is doing (a countdown), then how it ended; hidden when idle."""

    DEFAULT_CSS = """
    ActivityLine {
        height: 1;
        padding: 0 1;
        background: $accent 20%;
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self._shown = ""

    def show(self, text: str) -> None:
        """Show this text (empty: hidden); updated only when it changes."""
        if text != self._shown:
            self._shown = text
            self.update(text)
            self.display = bool(text)


class Banner(Static):
    """Warnings above the table: a failing sampler, sockets whose owner cannot be seen."""

    DEFAULT_CSS = """
    Banner {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $warning 25%;
        color: $foreground;
        display: none;
    }
    Banner.-error {
        background: $error 35%;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self._shown: tuple[str, bool] | None = None

    def show(self, lines: list[str], error: bool) -> None:
        """Show these lines (none: hidden); re-laid out only when they change."""
        text = "\n".join(lines)
        if (text, error) == self._shown:
            return
        self._shown = (text, error)
        self.update(Text(text))
        self.set_class(error, "-error")
        self.display = bool(lines)

    @property
    def text(self) -> str:
        """What the banner says now."""
        return self._shown[0] if self._shown else ""


class DetailsPane(VerticalScroll):
    """Everything known about the highlighted row, scrollable."""

    DEFAULT_CSS = """
    DetailsPane {
        height: 40%;
        min-height: 6;
        border-top: solid $primary 50%;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown = ""

    def compose(self) -> ComposeResult:
        yield Static("", markup=False, id="details-body")

    def show(self, text: Text) -> None:
        """Show the text. Static.update re-lays out the screen: skip it when nothing
        visible changed, and repaint in place when the text keeps its shape."""
        if text.plain == self._shown:
            return
        body = self.query_one("#details-body", Static)
        width = body.size.width
        lines, before = text.plain.split("\n"), self._shown.split("\n")
        # Same height when no line that changed wraps, before or after.
        relayout = len(lines) != len(before) or any(
            a != b and (cell_len(a) > width or cell_len(b) > width)
            for a, b in zip(lines, before, strict=True))
        self._shown = text.plain
        body.update(text, layout=relayout)

    @property
    def text(self) -> str:
        """What the pane shows now."""
        return self._shown
