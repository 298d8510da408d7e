"""The socket table: a virtual table on Textual's Line API that renders only visible rows.

Every row lives in a plain Python model (portside.view.TableModel); a refresh is a dict
diff and a list sort, and painting costs the rows on screen, not the rows in the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..fmt import (
    format_age,
    format_duration,
    format_endpoint,
    holders_cell,
    manager_cell,
    safe_text,
    state_cell,
    time_left_cell,
)
from ..model import TIME_WAIT, Snapshot, is_orphan, left_until
from ..view import CHANGED, GONE, NEW, Row, RowKey, TableModel


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its header, the sort column it maps to, and its width rules."""

    id: str
    title: str
    width: int
    sort: str | None = None
    right: bool = False
    flex: int = 0  # share of the spare width
    max_width: int = 0  # 0: no limit


COLUMNS = (
    Column("proto", "PROTO", 5, "proto"),
    Column("address", "ADDRESS", 9, "address", flex=2, max_width=39),
    Column("port", "PORT", 5, "port", right=True),
    Column("remote", "REMOTE", 12, None, flex=2, max_width=45),
    Column("state", "STATE", 11, "state"),
    Column("pid", "PID", 7, "pid", right=True),
    Column("process", "PROCESS", 8, "process", flex=3),
    Column("user", "USER", 8, "user", max_width=12, flex=1),
    Column("time", "TIME", 7, "time", right=True),
    Column("conns", "CONN", 4, None, right=True),
    Column("tw", "TW", 4, None, right=True),
    Column("manager", "MANAGER", 18, None, flex=2, max_width=30),
)
# Dropped first when the terminal is narrow.
DROP_ORDER = ("tw", "conns", "manager", "user", "remote", "proto", "time")


def layout(width: int, all_states: bool, managed: bool = False) -> list[tuple[Column, int]]:
    """Columns and widths that fit `width` cells (one space between columns); the
    manager column only when some holder has a manager."""
    cols = [c for c in COLUMNS if (all_states or c.id != "remote")
            and (managed or c.id != "manager")]
    if all_states:
        cols = [c for c in cols if c.id not in ("conns", "tw")]
    for drop in DROP_ORDER:
        need = sum(c.width for c in cols) + len(cols) - 1
        if need <= width:
            break
        cols = [c for c in cols if c.id != drop]
    spare = max(0, width - (sum(c.width for c in cols) + len(cols) - 1))
    widths = {c.id: c.width for c in cols}
    # Hand out the spare width by flex share, respecting maxima.
    while spare > 0:
        growable = [c for c in cols if c.flex and (not c.max_width or widths[c.id] < c.max_width)]
        if not growable:
            break
        total = sum(c.flex for c in growable)
        given = 0
        for c in growable:
            add = max(1, spare * c.flex // total)
            if c.max_width:
                add = min(add, c.max_width - widths[c.id])
            add = min(add, spare - given)
            widths[c.id] += add
            given += add
            if given >= spare:
                break
        if given == 0:
            break
        spare -= given
    return [(c, widths[c.id]) for c in cols]


def fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut text to exactly `width` cells, with an ellipsis when cut."""
    if width <= 0:
        return ""
    length = cell_len(text)
    if length > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - length)
    return pad + text if right else text + pad


def _first_difference(a: str, b: str) -> int:
    """The first index where two different strings of one length differ: halves compared
    in C (a Python loop over a 200-column line was 2% of a sample at 50k sockets)."""
    lo, hi = 0, len(a)  # a[:lo] == b[:lo] and a[lo:hi] != b[lo:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def changed_region(before: list[str], after: list[str]) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) around the characters that differ between two lists of
    lines of the same length, or None when that is not a simple matter of columns (a
    line with wide characters, whose cells are not its characters)."""
    xs: list[int] = []
    ys: list[int] = []
    for y, (a, b) in enumerate(zip(before, after, strict=True)):
        if a == b:
            continue
        if len(a) != len(b) or cell_len(a) != len(a) or cell_len(b) != len(b):
            return None
        xs += (_first_difference(a, b), len(a) - 1 - _first_difference(a[::-1], b[::-1]))
        ys.append(y)
    if not ys:
        return None
    return min(xs), ys[0], max(xs) - min(xs) + 1, ys[-1] - ys[0] + 1


class SocketTable(ScrollView, can_focus=True):
    """The live table of sockets. Row 0 is a sticky header; the cursor follows its key."""

    DEFAULT_CSS = """
    SocketTable {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    SocketTable > .socket-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    SocketTable > .socket-table--sorted {
        color: $accent;
    }
    SocketTable > .socket-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    SocketTable:focus > .socket-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    SocketTable > .socket-table--new {
        background: $success 30%;
    }
    SocketTable > .socket-table--gone {
        color: $text-disabled;
        text-style: strike;
    }
    SocketTable > .socket-table--changed {
        background: $warning 30%;
    }
    SocketTable > .socket-table--unknown {
        color: $text-muted;
    }
    SocketTable > .socket-table--timewait {
        color: $text-muted;
    }
    """

    COMPONENT_CLASSES = {
        "socket-table--header",
        "socket-table--sorted",
        "socket-table--cursor",
        "socket-table--new",
        "socket-table--gone",
        "socket-table--changed",
        "socket-table--unknown",
        "socket-table--timewait",
    }

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another row (or the row under it changed)."""

        def __init__(self, row: Row | None) -> None:
            super().__init__()
            self.row = row

    class HeaderClicked(Message):
        """A click on a column header: sort by it."""

        def __init__(self, sort: str) -> None:
            super().__init__()
            self.sort = sort

    def __init__(self, model: TableModel, clock: Callable[[], float] = time.monotonic,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.clock = clock
        self.cursor = 0
        self.cursor_key: RowKey | None = None
        self._layout: list[tuple[Column, int]] = []
        self._layout_for: tuple[int, bool, bool] = (-1, False, False)
        self._frame: tuple[object, ...] = ()  # the visible rows' identity when painted
        self._shown: list[str] = []  # and their texts
        self._styles: dict[str, Style] = {}
        self._texts: dict[int, str] = {}  # id(row) -> its line, as the last tick made it
        self._texts_layout: tuple[int, bool, bool] = (-1, False, False)

    # Data -----------------------------------------------------------------------------

    def refresh_rows(self) -> None:
        """After the model's view changed: keep the cursor on its row, resize, repaint."""
        view = self.model.view
        position = self.model.position(self.cursor_key) if self.cursor_key else None
        if position is not None:
            self.cursor = position
        self.cursor = max(0, min(self.cursor, len(view) - 1))
        row = self.model.row_at(self.cursor)
        self.cursor_key = row.key if row else None
        self.virtual_size = Size(self.size.width, len(view) + 1)
        self._scroll_cursor_into_view()
        self.tick()
        self.post_message(self.Highlighted(row))

    def tick(self) -> None:
        """Repaint only if what the visible rows show changed (an idle dashboard is quiet)."""
        top = int(self.scroll_offset.y)
        now = self.clock()
        rows = self.model.view[top:top + self.size.height]
        texts = [self.line_text(row, now) for row in rows]
        # Kept for render_line: the repaint that follows does not make them again.
        self._texts = dict(zip(map(id, rows), texts, strict=True))
        self._texts_layout = self._layout_for
        frame = (top, self.cursor, self.model.sort_column, self.model.reverse, self.size,
                 *((row.key, row.mark) for row in rows))
        if frame != self._frame:
            self._frame, self._shown = frame, texts
            self.refresh()
        elif texts != self._shown:
            # Same rows, new texts (a countdown, an uptime): repaint only the cells that
            # changed, so an idle dashboard redraws a column, not the screen.
            region = changed_region(self._shown, texts)
            self._shown = texts
            if region is None:
                self.refresh()
            else:
                x, y, width, height = region
                self.refresh(Region(x, y + 1, width, height))  # + 1: below the header

    @property
    def current(self) -> Row | None:
        """The row under the cursor."""
        return self.model.row_at(self.cursor)

    def move_to(self, index: int) -> None:
        """Put the cursor on a view index."""
        if not self.model.view:
            return
        self.cursor = max(0, min(index, len(self.model.view) - 1))
        row = self.model.view[self.cursor]
        self.cursor_key = row.key
        self._scroll_cursor_into_view()
        self.refresh()
        self.post_message(self.Highlighted(row))

    def select(self, port: int, state: str = "LISTEN", laddr: str | None = None) -> bool:
        """Put the cursor on the first row with this local port and state."""
        for i, row in enumerate(self.model.view):
            s = row.sock
            if s.lport == port and s.state == state and laddr in (None, s.laddr):
                self.move_to(i)
                return True
        return False

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False)

    # Actions --------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by rows."""
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move the cursor by a page."""
        self.move_to(self.cursor + direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        """First (0) or last (-1) row."""
        self.move_to(0 if where == 0 else len(self.model.view) - 1)

    def on_click(self, event: events.Click) -> None:
        """Header click sorts; row click moves the cursor."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x
            for col, width in self._columns():
                if x < width + 1:
                    if col.sort:
                        self.post_message(self.HeaderClicked(col.sort))
                    return
                x -= width + 1
            return
        self.move_to(int(self.scroll_offset.y) + offset.y - 1)

    # Rendering ------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        """Keep the virtual size in step with the width."""
        self.virtual_size = Size(event.size.width, len(self.model.view) + 1)

    def _columns(self) -> list[tuple[Column, int]]:
        snap = self.model.snapshot
        all_states = bool(snap and snap.all_states)
        managed = bool(snap and snap.managers)
        width = self.scrollable_content_region.width  # without the scrollbar
        key = (width, all_states, managed)
        if key != self._layout_for:
            self._layout = layout(width, all_states, managed)
            self._layout_for = key
        return self._layout

    def notify_style_update(self) -> None:
        """Styles changed (a theme, say): forget the cached ones."""
        super().notify_style_update()
        self._styles.clear()

    def _style(self, name: str) -> Style:
        """A component class's style, cached: rendering asks for them on every line."""
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style if name == "" else self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        """One screen line: the header, or the row at scroll offset + y - 1."""
        width = self.scrollable_content_region.width
        base = self._style("")
        if y == 0:
            return self._header(width, base)
        index = int(self.scroll_offset.y) + y - 1
        row = self.model.row_at(index)
        if row is None:
            return Strip.blank(width, base)
        style = base + self._row_style(row)
        if index == self.cursor and self.model.view:
            style += self._style("socket-table--cursor")
        # A row has one style: one segment for the whole line keeps painting cheap.
        text = self._texts.get(id(row)) if self._texts_layout == self._layout_for else None
        if text is None:
            text = self.line_text(row, self.clock())
        return Strip([Segment(text, style)]).adjust_cell_length(width, style)

    def line_text(self, row: Row, now: float) -> str:
        """A row as the text of one screen line, every column fitted to its width."""
        cells = self.cells(row, now)
        return " ".join(fit(cells.get(col.id, ""), w, col.right) for col, w in self._columns())

    def _header(self, width: int, base: Style) -> Strip:
        style = base + self._style("socket-table--header")
        sorted_style = style + self._style("socket-table--sorted")
        segments: list[Segment] = []
        for i, (col, w) in enumerate(self._columns()):
            if i:
                segments.append(Segment(" ", style))
            title = col.title
            is_sorted = col.sort is not None and col.sort == self.model.sort_column
            if is_sorted:
                title += "▼" if self.model.reverse else "▲"
            segments.append(Segment(fit(title, w, col.right), sorted_style if is_sorted
                                    else style))
        return Strip(segments).adjust_cell_length(width, style)

    def _row_style(self, row: Row) -> Style:
        get = self._style
        sock = row.sock
        style = Style()
        if sock.state == TIME_WAIT:
            style += get("socket-table--timewait")
        elif not sock.holders:
            style += get("socket-table--unknown")
        mark = row.mark if row.until > self.clock() or row.mark == GONE else ""
        if mark == NEW:
            style += get("socket-table--new")
        elif mark == GONE:
            style += get("socket-table--gone")
        elif mark == CHANGED:
            style += get("socket-table--changed")
        return style

    def cells(self, row: Row, now: float) -> dict[str, str]:
        """The text of each column for a row, at time `now` (plain text, never markup)."""
        sock = row.sock
        snap: Snapshot | None = self.model.snapshot
        cells = {"proto": sock.proto_label, "state": state_cell(sock)}
        if row.mark == GONE:
            cells["state"] = "gone"
        if row.folded:
            _, side, port = row.fold_of
            cells["address"] = f"×{row.count} sockets"
            cells["port"] = str(port) if side == "local" else f"→{port}"
            cells["process"] = (f"first in {format_duration(left_until(row.soonest, now))}"
                                if row.soonest is not None else "")
        else:
            cells["address"] = sock.laddr
            cells["port"] = str(sock.lport)
        if sock.raddr:
            cells["remote"] = format_endpoint(sock.raddr, sock.rport or 0)
        left = row.time_left(now)
        cells["time"] = time_left_cell(left, sock.time_left_exact)
        if sock.state == TIME_WAIT:
            cells["pid"] = ""
            if not row.folded and sock.raddr:
                cells["process"] = "peer " + format_endpoint(sock.raddr, sock.rport or 0)
            return cells
        if is_orphan(sock):  # closed by its process: the kernel finishes it
            cells["pid"] = ""
            cells["process"] = "no process, peer " + format_endpoint(sock.raddr or "",
                                                                     sock.rport or 0)
            return cells
        if not sock.holders:
            cells.update(pid="?", process="?", user=safe_text(sock.user or "?"))
            return cells
        proc = row.proc or (snap.process(sock.pid) if snap else None)
        cells["pid"] = holders_cell(sock)
        cells["process"] = safe_text(proc.name) if proc else "?"
        cells["user"] = safe_text(sock.user or "")
        if snap is not None and snap.managers:
            cells["manager"] = manager_cell(snap.manager(sock), pid=False)
        if proc is not None and snap is not None and left is None:
            cells["time"] = format_age(snap.taken_at + (now - snap.monotonic)
                                       - proc.create_time)
        if sock.is_listening and snap is not None:
            conns = snap.connections.get(sock.lport, 0) if sock.proto == "tcp" else 0
            cells["conns"] = str(conns) if conns else ""
            tw = self.model.tw_counts.get(sock.lport, 0) if sock.proto == "tcp" else 0
            cells["tw"] = str(tw) if tw else ""
        return cells

