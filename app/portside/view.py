"""The dashboard's table as plain Python: rows by key, changes, filter, sort and folding.

No Textual here: the widget only renders the rows this model hands it, so the logic is
tested fast and a refresh costs a dict diff and a list sort, not widget operations.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import Final, Literal, cast

from .actions import SETTLE
from .backend import PortHolders
from .model import LISTEN, TIME_WAIT, ProcessInfo, Snapshot, Socket, left_until
from .query import Query, group_matches, sort_key

NEW_SECONDS = 3.0  # how long a new row stays highlighted
GONE_SECONDS = 3.0  # how long a vanished row stays, marked as gone
CHANGED_SECONDS = 3.0  # how long a state change stays marked

Mark = Literal["", "new", "gone", "changed"]
NEW: Final = "new"  # highlighted for NEW_SECONDS
GONE: Final = "gone"  # vanished: kept GONE_SECONDS, struck through
CHANGED: Final = "changed"  # its state changed
# A listener's row is keyed by its inode (an int the socket already holds: at 100k
# listeners, 17 MB less than a key tuple per row and an identity index beside it); any
# other row by Socket.key, or ("fold", proto, side, port) for a fold.
RowKey = int | tuple[object, ...]
_SORTKEY = attrgetter("sortkey")
_SLICE = 8192  # rows a worker sorts at a time
_MASKS = 256  # groups of terms whose masks a worker keeps


@dataclass(slots=True, eq=False)  # identity: list.index() on 50k rows compares pointers
class Row:
    """One line of the table: a socket, or a fold of a port's TIME_WAIT sockets."""

    key: RowKey
    sock: Socket
    mark: Mark = ""
    until: float = 0.0  # when the mark ends (monotonic)
    count: int = 1  # > 1 for a fold
    soonest: float | None = None  # fold: when the first to expire ends (monotonic)
    proc: ProcessInfo | None = None  # a gone row's process, as last seen
    sortkey: tuple[object, ...] = ()  # cached sort key ...
    sortcol: str = ""  # ... for this sort column ("" when stale)
    gen: int = 0  # the last sample that listed this socket
    changes: int = 0  # counts the changes of its socket's state or holders
    # (query, whether it matches, `changes` then), as last tried: one tuple, set at once,
    # as a filter's worker may set it while a sample changes the row.
    matched: tuple[object, bool, int] = (None, False, -1)

    @property
    def folded(self) -> bool:
        """True for a row standing for several TIME_WAIT sockets."""
        return type(self.key) is tuple and self.key[0] == "fold"

    @property
    def fold_of(self) -> tuple[str, str, int]:
        """A fold's (protocol, "local" or "remote", port)."""
        assert type(self.key) is tuple and self.key[0] == "fold"  # narrows the type too
        return cast(tuple[str, str, int], self.key[1:])

    def time_left(self, now: float) -> float | None:
        """Seconds left for a TIME_WAIT row at `now` (the last one, for a fold)."""
        return self.sock.time_left(now)


def row_key(sock: Socket) -> RowKey:
    """The key of a socket's row: stays the same for this socket across samples."""
    # A listening socket's inode stands for it while it listens (a listener cannot be
    # bound again); 0 is an inode not known (psutil's fallback), which needs the tuple.
    if sock.inode and sock.state == LISTEN:
        return sock.inode
    return sock.key


def fold_port(sock: Socket, listening: set[int]) -> tuple[str, int]:
    """Which port a TIME_WAIT socket drains from: the server's side of the connection."""
    if sock.lport in listening or sock.rport is None:
        return ("local", sock.lport)
    if sock.rport in listening:
        return ("remote", sock.rport)
    # Neither side listens any more: the lower port is the service, the other ephemeral.
    return ("local", sock.lport) if sock.lport <= sock.rport else ("remote", sock.rport)


@dataclass
class TableModel:
    """Every row by key plus the visible list in sort order."""

    query: Query = field(default_factory=Query)
    sort_column: str = "port"
    reverse: bool = False
    fold: bool = False
    snapshot: Snapshot | None = None
    rows: dict[RowKey, Row] = field(default_factory=dict)
    view: list[Row] = field(default_factory=list)
    _gen: int = 0  # sample counter: rows seen in this sample carry it
    tw_counts: dict[int, int] = field(default_factory=dict)  # TIME_WAIT per local port
    _marked: set[RowKey] = field(default_factory=set)  # rows with a mark, for expire()
    shown: int = 0  # sockets the view stands for (folds count all theirs; gone rows not)
    _sorted_by: str = ""  # the column the view's rows have sort keys for
    version: int = 0  # counts the views made: a view made elsewhere from older rows is stale
    rows_gen: int = 0  # counts the changes to `rows`: a worker's masks are for one of them
    _masks: dict[tuple[object, ...], int] = field(default_factory=dict)  # a worker's masks
    _index: tuple[Snapshot, dict[int, list[Socket]], dict[int, list[float]]] | None = None
    _by_sock: dict[int, Row] = field(default_factory=dict)  # id(socket) -> its row

    def apply(self, snap: Snapshot, now: float) -> None:
        """Take a new snapshot: mark new, gone and changed rows, then rebuild the view."""
        # The hot path at 100k sockets. A socket the sampler kept from the last sample is
        # the same object: its row is found by identity and only marked as seen (no key is
        # made, nothing compared). The rows stay in one dict, changed in place; the ones
        # no socket came for have gone.
        first = self.snapshot is None
        previous = self.snapshot
        rows = self.rows
        marked: set[RowKey] = set()
        tw: dict[int, int] = {}
        new_mark: Mark = "" if first else NEW
        new_until = now + NEW_SECONDS
        last = self._gen
        self._gen = gen = last + 1
        added: list[Row] = []
        fresh: list[Row] = []  # rows whose sort key must be made: new or changed
        by_sock = self._by_sock
        find = by_sock.get
        seen = 0  # rows this sample listed
        for s in snap.sockets:
            # A listener's row is found by its inode (its key: row_key's rule, inlined, as
            # a call per socket costs at 100k), anything else's through the identity index.
            listener = s.state == LISTEN and s.inode
            row = rows.get(s.inode) if listener else find(id(s))
            if row is None or row.sock is not s or row.gen != last:
                # Not the last sample's socket object: its row by key, new or changed.
                key = row_key(s)
                row = rows.get(key)
                if row is None or row.mark == GONE:
                    if row is not None:
                        row.mark = ""  # the gone row is replaced by a new one: retire it
                        self._forget(row)
                        key = row.key  # the dict's: one key tuple per row
                    row = rows[key] = Row(key, s, new_mark, new_until)
                    added.append(row)
                else:
                    before = row.sock
                    if before.state != s.state or before.holders != s.holders:
                        row.mark, row.until, row.sortcol = CHANGED, now + CHANGED_SECONDS, ""
                        row.changes += 1
                        fresh.append(row)
                    self._forget(row)
                    row.sock = s
                if not listener:
                    by_sock[id(s)] = row
            if row.gen != gen:
                row.gen = gen
                seen += 1
            if row.mark:  # new, changed, or marked before: kept while its time runs
                if row.until <= now:
                    row.mark = ""
                else:
                    marked.add(row.key)
            if s.state == TIME_WAIT:
                tw[s.lport] = tw.get(s.lport, 0) + 1
        gone = 0
        if seen != len(rows):
            for row in [r for r in rows.values() if r.gen != gen]:
                if row.mark != GONE:
                    row.mark, row.until = GONE, now + GONE_SECONDS
                    row.proc = previous.process(row.sock.pid) if previous else None
                elif row.until <= now:
                    del rows[row.key]
                    self._forget(row)
                    continue
                marked.add(row.key)
                gone += 1
        self.rows_gen += 1
        self._marked = marked
        self.snapshot = snap
        self.tw_counts = tw
        # Rows in their previous order, then the new ones: nearly sorted, so the sort that
        # follows is close to linear.
        if self.fold or self.query.terms:
            self.rebuild()
            return
        if not added and not fresh and not gone and self.sort_column != "time" \
                and len(self.view) == len(rows) and self._sorted_by == self.sort_column:
            # The same rows with the same sort keys: the view's order stands (a sort of
            # 100k sorted rows still compares every neighbour: ~50 ms).
            self.shown = len(rows)
            self.version += 1
            return
        order = [r for r in self.view if r.gen == gen or (r.mark == GONE and r.until > now)]
        if len(order) + len(added) == len(rows):
            self._sort(order + added, snap, added + fresh, gone)
        else:  # the last view was not the whole table: start from the rows
            self.rebuild()

    def _forget(self, row: Row) -> None:
        """The row no longer stands for its socket object (replaced, or the row gone)."""
        if self._by_sock.get(id(row.sock)) is row:
            del self._by_sock[id(row.sock)]

    def expire(self, now: float) -> bool:
        """Drop gone rows and marks whose time is up; True when the view changed."""
        changed = False
        for key in list(self._marked):
            row = self.rows.get(key)
            if row is None or not row.mark:
                self._marked.discard(key)
                continue
            if row.until <= now:
                if row.mark == GONE:
                    del self.rows[key]
                    self._forget(row)
                    self.rows_gen += 1
                else:
                    row.mark = ""
                self._marked.discard(key)
                changed = True
        if changed:
            self.rebuild()
        return changed

    def rebuild(self) -> None:
        """Filter, fold and sort the rows into the view."""
        if self.snapshot is None:
            self.view = []
            return
        made = self.compose(list(self.rows.values()), self.query)
        assert made is not None
        self.adopt(made[0], made[1], self.query)
        self._sorted_by = self.sort_column

    def adopt(self, view: list[Row], shown: int, query: Query) -> None:
        """Take a view made by compose() (on a worker, for this query)."""
        self.view, self.shown, self.query = view, shown, query
        self.version += 1
        self._sorted_by = ""  # a worker's view: its rows may lack keys for the column

    def compose(self, rows: list[Row], query: Query, keep: bool = True,
                cancelled: Callable[[], bool] | None = None, rows_gen: int | None = None
                ) -> tuple[list[Row], int] | None:
        """The view these rows make with this query, and the sockets it stands for.
        A worker thread may run it for a query being typed (keep=False: the rows' sort
        keys are left as they are; only their match results are kept, one tuple each);
        it returns None soon after `cancelled()` turns true (a newer key was typed).
        `rows_gen`: the model's rows_gen when `rows` were taken from it."""
        snap = self.snapshot
        assert snap is not None
        if query.terms and not keep:
            kept = self._masked(rows, query, snap, self.rows_gen if rows_gen is None
                                else rows_gen, cancelled)
            if kept is None:
                return None
            rows = kept
        elif query.terms:
            # A row's match holds until the row changes: only new and changed rows are
            # tried again on a sample.
            match, kept = query.matches, []
            for r in rows:
                tried = r.matched
                if tried[0] is not query or tried[2] != r.changes:
                    tried = r.matched = (query, match(r.sock, snap), r.changes)
                if tried[1]:
                    kept.append(r)
            rows = kept
        if self.fold:
            rows = self._folded(rows, snap)
        folded = sum(r.count - 1 for r in rows if r.count > 1) if self.fold else 0
        gone = sum(1 for r in rows if r.mark == GONE) if self._marked else 0
        return self._sorted(rows, snap, None, keep), len(rows) - (gone - folded)

    def _masked(self, rows: list[Row], query: Query, snap: Snapshot, rows_gen: int,
                cancelled: Callable[[], bool] | None) -> list[Row] | None:
        """The rows this query keeps, for a query being typed: each group of terms is
        tried once on these rows (the model's rows at `rows_gen`) and kept as a mask, one
        byte a row, so that a key typed at the end of a long query tries only the group
        it changes. The masks are ANDed as integers and the rows picked by
        itertools.compress, both in C. Each mask is filed under the rows it was made
        from: a cancelled worker finishing late cannot hand a newer one its masks."""
        masks = self._masks
        changes = [r.changes for r in rows]  # as the rows are when tried
        combined: int | None = None
        for group in query.groups:
            mask = masks.get((rows_gen, len(rows), group))
            if mask is None:
                flags = bytearray(len(rows))
                for i, r in enumerate(rows):
                    if cancelled is not None and not i % 2048 and cancelled():
                        return None
                    if group_matches(group, r.sock, snap):
                        flags[i] = 1
                mask = int.from_bytes(flags, "little")
                if len(masks) >= _MASKS:
                    masks.clear()
                masks[(rows_gen, len(rows), group)] = mask
            combined = mask if combined is None else combined & mask
        assert combined is not None
        picked = combined.to_bytes(len(rows), "little")
        # Each row keeps its result (one tuple, set at once, as the UI thread reads it):
        # the samples after this filter is taken try only new and changed rows.
        for r, flag, seen in zip(rows, picked, changes, strict=True):
            r.matched = (query, flag == 1, seen)
        return list(compress(rows, picked))

    def _sort(self, rows: list[Row], snap: Snapshot, fresh: list[Row] | None,
              hidden: int) -> None:
        """Sort rows into the view. `fresh`: the only rows without a key for the column
        the view is sorted by (None: check every row); `hidden`: rows that are not
        sockets to count (gone ones; negative for the extra sockets of folds)."""
        self.view = self._sorted(rows, snap, fresh)
        self._sorted_by = self.sort_column
        self.shown = len(rows) - hidden
        self.version += 1

    def _sorted(self, rows: list[Row], snap: Snapshot, fresh: list[Row] | None,
                keep: bool = True) -> list[Row]:
        col = self.sort_column
        key = sort_key(col, snap)
        if not keep:  # another thread's: keys of its own, the rows' left alone
            def cached(r: Row) -> tuple[object, ...]:
                return r.sortkey if r.sortcol == col and col != "time" else key(r.sock)
            # Sorted in slices, then merged: one sort of 100k rows holds the GIL ~80 ms,
            # which the UI thread would wait through; a slice holds it a few.
            chunks = [sorted(rows[i:i + _SLICE], key=cached, reverse=self.reverse)
                      for i in range(0, len(rows), _SLICE)]
            if len(chunks) == 1:
                return chunks[0]
            return list(heapq.merge(*chunks, key=cached, reverse=self.reverse))
        # Sort keys are kept per row: only new or changed rows (or a new column) need one.
        # Times change every sample, so that column is always recomputed.
        if col == "time" or fresh is None or col != self._sorted_by:
            fresh = rows if col == "time" else [r for r in rows if r.sortcol != col]
        for r in fresh:
            r.sortkey = key(r.sock)
            r.sortcol = col
        rows.sort(key=_SORTKEY, reverse=self.reverse)
        return rows

    def position(self, key: RowKey) -> int | None:
        """Where the row with this key is in the view, if it is."""
        row = self.rows.get(key)
        if row is not None:
            try:
                return self.view.index(row)
            except ValueError:
                return None
        return next((i for i, r in enumerate(self.view) if r.key == key), None)

    def _folded(self, rows: list[Row], snap: Snapshot) -> list[Row]:
        listening = {s.lport for s in snap.sockets if s.state == LISTEN}
        groups: dict[tuple[str, str, int], list[Row]] = {}
        out: list[Row] = []
        for r in rows:
            if r.sock.state == TIME_WAIT and r.mark != GONE:
                side, port = fold_port(r.sock, listening)
                groups.setdefault((r.sock.proto, side, port), []).append(r)
            else:
                out.append(r)
        for (proto, side, port), members in groups.items():
            if len(members) == 1:
                out.append(members[0])
                continue
            ends = [m.sock.ends or 0.0 for m in members]
            first = members[0]
            base = first.sock
            # A synthetic socket that sorts and filters like its members.
            sock = base._replace(
                lport=port if side == "local" else base.lport,
                rport=port if side == "remote" else None,
                raddr=None if side == "local" else base.raddr,
                ends=max(ends),
            )
            mark: Mark = NEW if any(m.mark == NEW for m in members) else ""
            out.append(Row(("fold", proto, side, port), sock, mark,
                           max(m.until for m in members), len(members), min(ends)))
        return out

    # Queries of the view ----------------------------------------------------------------

    def row_at(self, index: int) -> Row | None:
        """The row at a view index, if any."""
        return self.view[index] if 0 <= index < len(self.view) else None

    def members(self, row: Row) -> list[Row]:
        """The TIME_WAIT rows a fold stands for (the row itself otherwise)."""
        if not row.folded or self.snapshot is None:
            return [row]
        proto, side, port = row.fold_of
        listening = {s.lport for s in self.snapshot.sockets if s.state == LISTEN}
        return [r for r in self.rows.values() if r.sock.state == TIME_WAIT and r.mark != GONE
                and r.sock.proto == proto and fold_port(r.sock, listening) == (side, port)]

    def drain(self, port: int, now: float) -> tuple[int, float | None, float | None]:
        """TIME_WAIT sockets with this local port: (count, soonest, last) seconds left."""
        snap = self.snapshot
        if snap is None or not self.tw_counts.get(port):
            return 0, None, None
        # The details panel asks on every sample and cursor move: the snapshot's sockets
        # (a row that is not gone is a socket of the snapshot), through its index.
        ends = self.index(snap)[1].get(port)
        if not ends:
            return 0, None, None
        return len(ends), left_until(min(ends), now), left_until(max(ends), now)

    def sockets_of(self, pid: int) -> list[Socket]:
        """Every socket of the snapshot held by this process."""
        if self.snapshot is None:
            return []
        return self.index(self.snapshot)[0].get(pid, [])

    def index(self, snap: Snapshot) -> tuple[dict[int, list[Socket]], dict[int, list[float]]]:
        """The snapshot's sockets by holder PID, and its TIME_WAIT deadlines by local port:
        made once a snapshot (at 100k sockets a pass over them is ~30 ms, which every
        cursor move would pay), on the sampler's thread when it took the snapshot."""
        made = self._index
        if made is not None and made[0] is snap:
            return made[1], made[2]
        by_pid: dict[int, list[Socket]] = {}
        ends: dict[int, list[float]] = {}
        for s in snap.sockets:
            for p in s.holders:
                by_pid.setdefault(p, []).append(s)
            if s.state == TIME_WAIT and s.ends is not None:
                ends.setdefault(s.lport, []).append(s.ends)
        self._index = (snap, by_pid, ends)  # one tuple, set at once: threads may ask
        return by_pid, ends


# Watching ports --------------------------------------------------------------------------


def watch_events(port: int, before: PortHolders, after: PortHolders,
                 name_of: Callable[[int], str],
                 started_by: Callable[[int], str | None] = lambda pid: None,
                 free_for: float | None = None) -> list[str]:
    """What changed on a watched port between two samples, as notification texts.

    `free_for`: how long the port had been free, when it was seen becoming free; taken
    again within `SETTLE`, something restarts its server, and the text says who
    (started_by: "restarted by ..." or "started by ..." for a PID, as actions.origin
    says it)."""
    if (before.free, before.pids) == (after.free, after.pids):
        return []

    def who(pids: tuple[int, ...]) -> str:
        return ", ".join(f"PID {p} ({name_of(p)})" + (f", {by}" if (by := started_by(p)) else "")
                         for p in pids) or "an unknown process"

    if after.free:
        return [f"Port {port} is free"]
    if before.free:
        if free_for is not None and free_for <= SETTLE:
            return [f"Port {port} was taken again {free_for:.1f}s after it was freed, by "
                    f"{who(after.pids)}: something restarts it"]
        return [f"Port {port}: something listens now: {who(after.pids)}"]
    return [f"Port {port}: the listener changed (restart?): {who(before.pids)} -> "
            f"{who(after.pids)}"]
