"""The model and the formatting helpers: pure logic, no sockets."""

from __future__ import annotations

from portside.fmt import format_duration, format_endpoint, join_cmdline, safe_text
from portside.model import Snapshot, Socket, main_pid


def sock(**kw: object) -> Socket:
    base: dict[str, object] = dict(proto="tcp", family="ipv4", laddr="127.0.0.1", lport=3000,
                                   raddr=None, rport=None, state="LISTEN", inode=7)
    base.update(kw)
    return Socket(**base)  # type: ignore[arg-type]


def test_key_is_stable_across_state_change_of_a_connection() -> None:
    est = sock(raddr="127.0.0.1", rport=5000, state="ESTABLISHED", inode=99)
    tw = sock(raddr="127.0.0.1", rport=5000, state="TIME_WAIT", inode=0)
    assert est.key == tw.key


def test_key_tells_reuseport_listeners_apart() -> None:
    assert sock(inode=1).key != sock(inode=2).key
    assert sock(inode=1).key != sock(inode=1, proto="udp", state="NONE").key


def test_labels_and_listening() -> None:
    assert sock(family="ipv6", laddr="::1").proto_label == "tcp6"
    assert sock(proto="udp", state="NONE").proto_label == "udp4"
    assert sock().is_listening and sock(proto="udp", state="NONE").is_listening
    assert not sock(state="TIME_WAIT").is_listening


def test_main_pid_is_the_root_of_the_holders() -> None:
    # 20 forked 21 and 22; 21 forked 30: the master is 20, whatever the PID order.
    ppids = {20: 1, 21: 20, 22: 20, 30: 21, 5: 22}
    assert main_pid((5, 20, 21, 22, 30), ppids) == 20
    assert main_pid((21, 30), ppids) == 21
    assert main_pid((), ppids) is None
    # A cycle (cannot happen, but must not hang or crash): the smallest PID.
    assert main_pid((1, 2), {1: 2, 2: 1}) == 1


def test_time_left_counts_down_to_the_deadline() -> None:
    snap = Snapshot(taken_at=1000.0, monotonic=50.0, sockets=())
    tw = sock(state="TIME_WAIT", ends=80.0, time_left_exact=True)
    assert snap.time_left(tw) == 30.0  # as of the sample
    assert tw.time_left(60.5) == 19.5
    assert tw.time_left(500.0) == 0.0
    assert snap.time_left(sock()) is None and sock().time_left(60.0) is None


def test_safe_text_shows_controls_and_bidi() -> None:
    assert safe_text("node") == "node"
    assert safe_text("[bold]x[/]") == "[bold]x[/]"  # markup is the UI's concern: kept
    assert safe_text("a\x1b[31mred") == "a\\e[31mred"
    assert safe_text("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert safe_text("tab\there\nnl\x00") == "tab\\there\\nnl\\x00"
    assert safe_text("\x9b") == "\\x9b"
    assert safe_text("日本語 café") == "日本語 café"


def test_format_duration() -> None:
    assert format_duration(None) == ""
    assert format_duration(0.04) == "0.0s"
    assert format_duration(9.96) == "10.0s"
    assert format_duration(59.9) == "59s"
    assert format_duration(185) == "3m05s"
    assert format_duration(2 * 3600 + 7 * 60) == "2h07m"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert format_duration(-5) == "0.0s"
    assert format_duration(float("nan")) == "0.0s"


def test_endpoint_and_cmdline() -> None:
    assert format_endpoint("127.0.0.1", 80) == "127.0.0.1:80"
    assert format_endpoint("::1", 80) == "[::1]:80"
    assert join_cmdline(("node", "my app.js", "")) == "node 'my app.js' ''"
    assert join_cmdline(("npm run dev", "", "", "")) == "'npm run dev'"  # a title's padding
    assert join_cmdline(None) == ""


def test_format_age_is_coarse_after_ten_minutes() -> None:
    from portside.fmt import format_age
    assert format_age(None) == ""
    assert format_age(5) == "5.0s"
    assert format_age(185) == "3m05s"
    assert format_age(599) == "9m59s"
    assert format_age(600) == "10m" and format_age(659) == "10m"
    assert format_age(3 * 3600 + 7 * 60 + 5) == "3h07m"
