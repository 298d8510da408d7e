"""The action policy on its own: what may be done on a row, why not, and the plan it makes."""

from __future__ import annotations

import signal

import pytest

from portside import policy
from portside.actions import GRACE
from portside.demo import DEMO_IDENTITY, DEMO_MONOTONIC, demo_snapshot
from portside.model import Snapshot
from portside.view import GONE, Row, TableModel

ME, PROTECTED = DEMO_IDENTITY.pid, DEMO_IDENTITY.protected


def rows(snap: Snapshot | None = None, fold: bool = False) -> TableModel:
    model = TableModel(fold=fold)
    model.apply(snap or demo_snapshot(), DEMO_MONOTONIC)
    return model


def row(port: int, state: str = "LISTEN", laddr: str | None = None,
        model: TableModel | None = None) -> Row:
    model = model or rows()
    return next(r for r in model.view if r.sock.lport == port and r.sock.state == state
                and laddr in (None, r.sock.laddr))


def why(action: policy.RowAction, r: Row | None, snap: Snapshot | None = None,
        small: bool = False) -> str | None:
    return policy.unavailable(action, r, snap or demo_snapshot(), ME, PROTECTED, small)


def test_refusals() -> None:
    assert policy.refusal(None, ME, PROTECTED) is not None
    assert "not a process" in (policy.refusal(0, ME, PROTECTED) or "")
    assert "init" in (policy.refusal(1, ME, PROTECTED) or "")
    assert "itself" in (policy.refusal(ME, ME, PROTECTED) or "")
    assert "parents" in (policy.refusal(1204, ME, PROTECTED) or "")
    assert policy.refusal(2001, ME, PROTECTED) is None


@pytest.mark.parametrize("action", ["terminate", "kill", "free"])
def test_signals_are_refused_where_nothing_may_be_signalled(action: policy.RowAction) -> None:
    assert "TIME_WAIT" in (why(action, row(3000, "TIME_WAIT")) or "")
    assert "sudo" in (why(action, row(2024)) or "")  # owner unknown, not root
    assert "no row" in (why(action, None) or "")
    assert "too small" in (why(action, row(3000), small=True) or "")
    assert why(action, row(3000)) is None


def test_free_needs_a_listener_and_every_holder_allowed() -> None:
    snap = demo_snapshot(all_states=True)
    model = rows(snap)
    conn = next(r for r in model.view if r.sock.state == "ESTABLISHED" and r.sock.lport == 3000)
    assert "listening" in (why("free", conn, snap) or "")
    assert why("terminate", conn, snap) is None  # a connection's process can be ended
    # nginx: the master is root's and the workers www-data's; all may be asked about.
    assert why("free", row(80)) is None


def test_a_gone_row_cannot_be_acted_on() -> None:
    model = rows()
    model.apply(demo_snapshot(gone=frozenset({2001})), DEMO_MONOTONIC + 1)
    gone = next(r for r in model.view if r.sock.lport == 3000 and r.mark == GONE)
    assert "gone" in (why("terminate", gone, model.snapshot) or "")


def test_copy_watch_probe() -> None:
    assert why("copy_pid", row(2024)) == "no PID to copy"
    assert why("copy_cmdline", row(3000)) is None
    tw = row(3000, "TIME_WAIT")
    assert why("watch", tw) is None and why("probe", tw) is None
    assert why("watch", row(3000), small=True) is None  # no row is acted on


def test_plans() -> None:
    snap = demo_snapshot()
    term = policy.plan("terminate", row(8080), snap, "alice")
    assert term.sig == signal.SIGTERM and [t.pid for t in term.targets] == [3100]
    assert [t.pid for t in term.holders] == [3100, 3101, 3102]
    assert [t.pid for t in term.others] == [3101, 3102] and term.grace == GRACE
    assert term.port == 8080 and term.sockets == (("tcp", "127.0.0.1", 8080),)
    assert term.typed_pid is None  # alice's own
    kill = policy.plan("kill", row(5432, laddr="127.0.0.1"), snap, "alice", grace=9)
    assert kill.sig == signal.SIGKILL and kill.typed_pid == 1500 and kill.grace == 9
    free = policy.plan("free", row(5432, laddr="127.0.0.1"), snap, "alice")
    # Every listener on the port, both addresses.
    assert free.sockets == (("tcp", "127.0.0.1", 5432), ("tcp", "::1", 5432))
    assert [t.pid for t in free.targets] == [1500]


def test_row_port_of_a_fold_is_its_port() -> None:
    model = rows(fold=True)
    fold = next(r for r in model.view if r.folded)
    assert fold.key == ("fold", "tcp", "local", policy.row_port(fold))
    assert policy.row_port(row(3000)) == 3000 and policy.row_port(None) is None


def test_a_pm2_daemon_is_refused_even_with_its_title_cut_short() -> None:
    from portside.daemons import manager_refusal

    full = manager_refusal(20825, "PM2 v5.4.3: God", (
        "PM2 v5.4.3: God Daemon (/home/al ice/.pm2)", "", ""))
    assert full is not None and "PID 20825 is the pm2 daemon (/home/al ice/.pm2)" in full
    assert "PM2_HOME='/home/al ice/.pm2' pm2 stop NAME" in full
    cut = manager_refusal(7, "PM2 v6.0.1: God", ("PM2 v6.0.1: God Daemon (/tmp/pytest-of-r",))
    assert cut is not None and "pm2 daemon" in cut
    assert manager_refusal(8, "node", ("node", "/srv/app.js")) is None
    # The 15-byte name alone does not say "God Daemon": the title is what tells.
    assert manager_refusal(9, "PM2 v5.4.3: God", ()) is None
