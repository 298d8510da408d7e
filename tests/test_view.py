"""The table model: changes, filter, sort, folding and watch events, on demo data."""

from __future__ import annotations

import pytest

from portside.actions import SETTLE
from portside.backend import PortHolders
from portside.demo import DEMO_MONOTONIC, demo_snapshot
from portside.model import Snapshot, Socket
from portside.query import Query, parse
from portside.view import (
    CHANGED,
    GONE,
    NEW,
    RowKey,
    TableModel,
    row_key,
    watch_events,
)


def later(snap: Snapshot, seconds: float, **kw: object) -> Snapshot:
    return demo_snapshot(taken_at=snap.taken_at + seconds,
                         monotonic=snap.monotonic + seconds, **kw)  # type: ignore[arg-type]


def test_first_snapshot_marks_nothing_then_changes_are_marked() -> None:
    m = TableModel()
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    assert len(m.view) == len(snap.sockets) and not any(r.mark for r in m.view)
    # python3 (PID 2301) exits: its listener is kept a while, marked gone.
    s2 = later(snap, 2, gone=frozenset({2301}))
    m.apply(s2, s2.monotonic)
    gone = [r for r in m.view if r.mark == GONE]
    assert [r.sock.lport for r in gone] == [8000]
    # ... and leaves once its time is up.
    s3 = later(snap, 6, gone=frozenset({2301}))
    m.apply(s3, s3.monotonic)
    assert 8000 not in {r.sock.lport for r in m.view}
    # It comes back: new.
    s4 = later(snap, 8)
    m.apply(s4, s4.monotonic)
    assert [r.mark for r in m.view if r.sock.lport == 8000] == [NEW]
    assert m.expire(s4.monotonic + 10) and not any(r.mark for r in m.view)


def test_holder_change_is_marked_changed() -> None:
    m = TableModel()
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    s2 = later(snap, 2, gone=frozenset({991}))  # one nginx worker exits
    m.apply(s2, s2.monotonic)
    marks = {r.sock.lport: r.mark for r in m.view if r.sock.lport in (80, 443)}
    assert marks == {80: CHANGED, 443: CHANGED}


def test_filter_sort_and_index() -> None:
    m = TableModel(query=parse(":5432"))
    m.apply(demo_snapshot(), DEMO_MONOTONIC)
    assert {r.sock.lport for r in m.view} >= {5432} and all(
        5432 in (r.sock.lport, r.sock.rport) for r in m.view)
    m.query = parse("")
    m.sort_column, m.reverse = "process", False
    m.rebuild()
    names = [m.snapshot.process(r.sock.pid).name.lower()  # type: ignore[union-attr]
             for r in m.view if r.sock.pid is not None]
    assert names == sorted(names)
    key = m.view[5].key
    m.reverse = True
    m.rebuild()
    position = m.position(key)
    assert position is not None and m.view[position].key == key


def test_a_sample_tries_the_filter_only_on_new_and_changed_rows() -> None:
    query = parse("nginx")
    tried: list[int] = []

    class Counting(Query):
        def matches(self, sock: Socket, snap: Snapshot | None = None) -> bool:
            tried.append(sock.lport)
            return Query.matches(self, sock, snap)

    counting = Counting(*query)
    m = TableModel(query=counting)
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    assert len(tried) == len(snap.sockets)
    first = [r.key for r in m.view]
    tried.clear()
    s2 = later(snap, 2, gone=frozenset({991}))  # an nginx worker exits: 80 and 443 change
    m.apply(s2, s2.monotonic)
    assert sorted(set(tried)) == [80, 443], tried
    assert [r.key for r in m.view] == first  # the same rows match
    tried.clear()
    m.query = parse("postgres")  # a new filter: every row is tried again
    m.rebuild()
    assert {r.sock.lport for r in m.view} == {5432}


def test_fold_time_wait_per_port() -> None:
    m = TableModel(fold=True)
    m.apply(demo_snapshot(), DEMO_MONOTONIC)
    folds = {r.key: r for r in m.view if r.folded}
    assert set(folds) == {("fold", "tcp", "local", 3000), ("fold", "tcp", "remote", 5432)}
    f = folds[("fold", "tcp", "local", 3000)]
    assert f.count == 24 and f.soonest is not None
    assert abs(f.soonest - (DEMO_MONOTONIC + 2.05)) < 1e-6  # a deadline
    assert f.time_left(DEMO_MONOTONIC) == pytest.approx(58.4)
    assert f.time_left(DEMO_MONOTONIC + 100) == 0.0
    assert len(m.members(f)) == 24
    assert not [r for r in m.view if r.sock.state == "TIME_WAIT" and not r.folded]
    count, soonest, last = m.drain(3000, DEMO_MONOTONIC)
    assert count == 24 and last == pytest.approx(58.4) and soonest is not None
    assert m.drain(3000, DEMO_MONOTONIC + 10)[:2] == (24, 0.0)  # counted down
    assert m.drain(3000, DEMO_MONOTONIC + 10)[2] == pytest.approx(58.4 - 10)
    assert m.drain(5432, DEMO_MONOTONIC) == (0, None, None)  # the server side is remote
    assert m.tw_counts[3000] == 24


def test_watch_events() -> None:
    snap = demo_snapshot()
    held = PortHolders.of(3000, snap)
    assert held.pids == (2001,) and not held.free
    unknown = PortHolders.of(2024, snap)
    assert unknown.pids == () and not unknown.free and unknown.unknown == 1
    free = PortHolders.of(3001, snap)
    assert free.free
    other = PortHolders.of(3000, demo_snapshot(gone=frozenset({2001})))
    name = {2001: "node", 2002: "node"}.get
    assert watch_events(3000, held, held, lambda p: name(p) or "?") == []
    assert watch_events(3000, held, other, lambda p: "?") == ["Port 3000 is free"]
    assert "listens now: PID 2001 (node)" in watch_events(
        3000, free, held, lambda p: name(p) or "?")[0]
    assert "something listens now: an unknown process" in watch_events(
        3000, free, unknown, lambda p: "?")[0]
    assert "restart" in watch_events(3000, held, unknown, lambda p: name(p) or "?")[0]
    # Free only a moment (within the settle time) before it was taken: a restarter.
    by = {2001: "started by PID 1204 (bash)"}.get
    assert watch_events(3000, free, held, lambda p: name(p) or "?", by, 0.4) == [
        "Port 3000 was taken again 0.4s after it was freed, by PID 2001 (node), started by "
        "PID 1204 (bash): something restarts it"]
    assert "something listens now" in watch_events(3000, free, held, lambda p: "?", by,
                                                   SETTLE + 1)[0]


def test_rows_are_keyed_by_socket_key_or_a_listeners_inode() -> None:
    m = TableModel()
    snap = demo_snapshot(all_states=True)
    m.apply(snap, DEMO_MONOTONIC)
    listeners = [s for s in snap.sockets if s.state == "LISTEN" and s.inode]
    assert listeners and set(m.rows) == {
        s.inode if s in listeners else s.key for s in snap.sockets}
    # A listener's row holds its socket's own inode object, and the identity index only
    # the others: no key tuple nor index entry per listener (17 MB at 100k).
    assert all(m.rows[s.inode].key is s.inode for s in listeners)
    assert len(m._by_sock) == len(snap.sockets) - len(listeners)
    # Each sample makes new (equal) keys: a row keeps the dict's, so one key tuple per
    # socket stays alive, not two (9 MB at 100k sockets).
    s2 = later(snap, 2)
    m.apply(s2, s2.monotonic)
    assert all(row.key is key for key, row in m.rows.items())
    assert not any(id(s) in m._by_sock for s in s2.sockets if s.state == "LISTEN")


def test_sort_keys_follow_column_changes_and_state_changes() -> None:
    m = TableModel(sort_column="pid")
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    pids = [r.sock.pid for r in m.view if r.sock.pid is not None]
    assert pids == sorted(pids)
    m.sort_column = "user"
    m.rebuild()
    users = [r.sock.user or "\uffff" for r in m.view]
    assert users == sorted(users)
    # nginx loses a worker: its rows change, and are sorted by their new holders.
    m.sort_column = "pid"
    m.rebuild()
    s2 = later(snap, 2, gone=frozenset({990}))
    m.apply(s2, s2.monotonic)
    pids = [r.sock.pid for r in m.view if r.sock.pid is not None]
    assert pids == sorted(pids) and 991 in pids


def test_a_workers_masks_pick_the_rows_the_plain_filter_picks() -> None:
    m = TableModel()
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    rows = list(m.rows.values())
    typed = ""
    for text in ["nginx", "-nginx state:tw", "-nginx state:tw :443", ":80 :443 -pid:990",
                 "127.0.0", "127.0.0 -python", "proto:udp", "user:alice -proc:node"]:
        plain = m.compose(rows, parse(text))
        masked = m.compose(rows, parse(text), keep=False)
        assert plain is not None and masked is not None
        assert [r.key for r in masked[0]] == [r.key for r in plain[0]], text
        assert masked[1] == plain[1]
        typed = text
    assert typed
    # The masks are for the rows they were made from: samples that move a row (it goes,
    # then comes back, last) have their rows tried afresh.
    assert m.compose(rows, parse("python"), keep=False) is not None
    for seconds, gone in ((2, frozenset({2301})), (6, frozenset({2301})), (8, frozenset())):
        step = later(snap, seconds, gone=gone)
        m.apply(step, step.monotonic)
    now = list(m.rows.values())
    assert len(now) == len(rows) and [r.key for r in now] != [r.key for r in rows]
    python = parse("python")
    fresh = m.compose(now, python, keep=False)
    plain = m.compose(now, parse("python"))
    assert fresh is not None and plain is not None
    assert [r.key for r in fresh[0]] == [r.key for r in plain[0]]
    # The rows keep the worker's results: the samples that follow try no row again.
    assert all(r.matched == (python, r in fresh[0], r.changes) for r in now)


def test_the_details_index_follows_each_snapshot() -> None:
    m = TableModel()
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    held = m.sockets_of(2301)
    assert held and all(2301 in s.holders for s in held)
    assert held == [s for s in snap.sockets if 2301 in s.holders]
    tw_port = next(s.lport for s in snap.sockets if s.state == "TIME_WAIT")
    count = sum(1 for s in snap.sockets if s.state == "TIME_WAIT" and s.lport == tw_port)
    assert m.drain(tw_port, DEMO_MONOTONIC)[0] == count
    s2 = later(snap, 2, gone=frozenset({2301}))
    m.apply(s2, s2.monotonic)
    assert m.sockets_of(2301) == []  # the next snapshot's index, not the last one's


def test_a_socket_kept_by_the_sampler_finds_its_row_without_a_key(
        monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    m = TableModel(sort_column="pid")
    snap = demo_snapshot()
    m.apply(snap, DEMO_MONOTONIC)
    view = m.view
    made: list[Socket] = []
    real = Socket.key

    def counted(self: Socket) -> tuple[object, ...]:
        made.append(self)
        return real.fget(self)  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr(Socket, "key", property(counted))
    # The same socket objects two seconds on (as the sampler hands on unchanged ones).
    same = snap._replace(monotonic=snap.monotonic + 2, taken_at=snap.taken_at + 2)
    m.apply(same, same.monotonic)
    assert made == [] and m.view is view and [r.sock for r in m.view] == [
        r.sock for r in view]
    # Two sockets with a new holder (new objects): a UDP socket's key is made, and a
    # listener's row is found by its inode (no key made); the view is sorted again (by
    # PID: both move past every other holder).
    listener = next(s for s in snap.sockets if s.state == "LISTEN" and s.lport == 8000)
    udp = next(s for s in snap.sockets if s.proto == "udp")
    changed = {listener: listener._replace(holders=(99998,), pid=99998),
               udp: udp._replace(holders=(99999,), pid=99999)}
    moved = same._replace(sockets=tuple(changed.get(s, s) for s in snap.sockets),
                          monotonic=same.monotonic + 2)
    m.apply(moved, moved.monotonic)
    assert made == [changed[udp]]
    pids = [r.sock.pid for r in m.view if r.sock.pid is not None]
    assert pids[-2:] == [99998, 99999] and pids == sorted(pids) and m.view is not view
    for old, row in ((listener, m.rows[listener.inode]), (udp, m.rows[udp.key])):
        assert row.mark == CHANGED and row.sock is changed[old]


def test_rows_follow_a_churning_table_and_keep_no_stale_socket() -> None:
    import random

    rnd = random.Random(7)
    base = demo_snapshot()
    m = TableModel()
    live: dict[int, Socket] = {}  # port -> the socket object the "sampler" hands on
    next_port = 20000
    gone_at: dict[RowKey, float] = {}
    for step in range(40):
        mono = base.monotonic + step
        for port in list(live):
            r = rnd.random()
            if r < 0.1:
                del live[port]  # closed
            elif r < 0.2:
                live[port] = live[port]._replace(holders=(rnd.choice((1, 2, 3)),))
        for _ in range(rnd.randint(0, 4)):
            # Listeners (rows keyed by inode) and connections (by Socket.key) in turn.
            connected = next_port % 2 == 1
            live[next_port] = Socket("tcp", "ipv4", "127.0.0.1", next_port,
                                     "127.0.0.1" if connected else None,
                                     5432 if connected else None,
                                     "ESTABLISHED" if connected else "LISTEN", next_port, 0,
                                     (1,), 1, "root")
            next_port += 1
        snap = base._replace(sockets=tuple(live.values()), monotonic=mono,
                             taken_at=base.taken_at + step)
        before = set(m.rows)
        m.apply(snap, mono)
        current = {row_key(s): s for s in snap.sockets}
        for key in before - set(current):
            gone_at.setdefault(key, mono)
        for key in current:
            gone_at.pop(key, None)
        # Every socket has its row, holding this very object; the rows that went stay
        # GONE_SECONDS, marked, and nothing else is left.
        assert all(m.rows[k].sock is s and m.rows[k].mark != GONE for k, s in current.items())
        kept_gone = {k for k, t in gone_at.items() if mono - t < 3.0}
        assert set(m.rows) == set(current) | kept_gone
        assert all(m.rows[k].mark == GONE for k in kept_gone)
        ports = [r.sock.lport for r in m.view]
        assert sorted(ports) == ports and len(m.view) == len(m.rows)
        # One socket object per row is remembered, none of a row that left.
        assert len(m._by_sock) <= len(m.rows)
        assert all(m._by_sock[id(r.sock)] is r for r in m.rows.values()
                   if r.mark != GONE and r.sock.state != "LISTEN")
        assert not any(id(r.sock) in m._by_sock for r in m.rows.values()
                       if r.sock.state == "LISTEN")
