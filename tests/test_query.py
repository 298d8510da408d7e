"""The filter language: parsing, errors, matching and sorting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.model import ProcessInfo, Snapshot, Socket, make_processes
from portside.query import QueryError, parse, sort_key

NODE = ProcessInfo(pid=100, ppid=1, name="node", create_time=10.0, username="alice",
                   cmdline=("node", "server.js", "--port", "3000"))
NGINX = ProcessInfo(pid=200, ppid=1, name="nginx", create_time=20.0, username="root")
SOCKS = (
    Socket("tcp", "ipv4", "127.0.0.1", 3000, None, None, "LISTEN", 1, 1000, (100,), 100,
           "alice"),
    Socket("tcp", "ipv6", "::", 8080, None, None, "LISTEN", 2, 0, (200, 201), 200, "root"),
    Socket("tcp", "ipv4", "127.0.0.1", 3000, "127.0.0.1", 51000, "TIME_WAIT",
           ends=17.5, time_left_exact=True),
    Socket("udp", "ipv4", "0.0.0.0", 5353, None, None, "NONE", 3, 0, (), None, "root"),
    Socket("tcp", "ipv4", "10.1.2.3", 40000, "93.184.216.34", 443, "ESTABLISHED", 4, 1000,
           (100,), 100, "alice"),
)
SNAP = Snapshot(taken_at=1000.0, monotonic=5.0, sockets=SOCKS,
                processes=make_processes({100: NODE, 200: NGINX}))


def ports(q: str, me: str | None = "alice") -> list[tuple[str, int]]:
    return [(s.state, s.lport) for s in parse(q, me=me).filter(SNAP)]


def test_empty_query_matches_all() -> None:
    assert len(ports("")) == len(SOCKS)
    assert len(ports("   ")) == len(SOCKS)


@pytest.mark.parametrize("q", [":3000", "port:3000", "lport:3000", "port:2999-3001",
                               "port:3000,9999"])
def test_port_terms(q: str) -> None:
    assert ports(q) == [("LISTEN", 3000), ("TIME_WAIT", 3000)]


def test_port_matches_remote_too() -> None:
    assert ports(":443") == [("ESTABLISHED", 40000)]
    assert ports("rport:443") == [("ESTABLISHED", 40000)]
    assert ports("lport:443") == []


def test_state_proto_pid_user_proc_addr() -> None:
    assert ports("state:tw") == [("TIME_WAIT", 3000)]
    assert ports("state:listen,none") == [("LISTEN", 3000), ("LISTEN", 8080), ("NONE", 5353)]
    assert ports("state:time-wait") == [("TIME_WAIT", 3000)]
    assert ports("proto:udp") == [("NONE", 5353)]
    assert ports("proto:tcp6") == [("LISTEN", 8080)]
    assert ports("pid:201") == [("LISTEN", 8080)]  # any holder, not only the main one
    assert ports("user:me") == [("LISTEN", 3000), ("ESTABLISHED", 40000)]
    assert ports("user:root") == [("LISTEN", 8080), ("NONE", 5353)]
    assert ports("proc:ngi") == [("LISTEN", 8080)]
    assert ports("addr:10.0.0.0/8") == [("ESTABLISHED", 40000)]
    assert ports("addr:::") == [("LISTEN", 8080)]
    assert ports("addr:93.184.216.34") == [("ESTABLISHED", 40000)]


def test_free_text_searches_name_cmdline_address_user() -> None:
    assert ports("NODE") == [("LISTEN", 3000), ("ESTABLISHED", 40000)]
    assert ports("server.js") == [("LISTEN", 3000), ("ESTABLISHED", 40000)]
    assert ports("10.1.2") == [("ESTABLISHED", 40000)]
    assert ports('"server.js --port"') == [("LISTEN", 3000), ("ESTABLISHED", 40000)]


def test_negation_and_conjunction() -> None:
    assert ports("-state:tw :3000") == [("LISTEN", 3000)]
    assert ports("!proto:tcp") == [("NONE", 5353)]
    assert ports("user:alice state:listen") == [("LISTEN", 3000)]
    # The same kind twice: either one. Different kinds, negations and text: all.
    assert ports(":3000 :8080 state:listen") == [("LISTEN", 3000), ("LISTEN", 8080)]
    assert ports("state:tw state:none") == [("TIME_WAIT", 3000), ("NONE", 5353)]
    assert ports("-:3000 -:8080 proto:tcp") == [("ESTABLISHED", 40000)]
    assert ports("node server.js") == [("LISTEN", 3000), ("ESTABLISHED", 40000)]
    assert ports("node nginx") == []


def test_argv_words_are_read_as_the_same_text_typed() -> None:
    # Quoted for the filter, a phrase with a space is one term, as typed in the dashboard.
    q = parse(["proc:node", '"server.js --port"'])
    assert [t.text for t in q.terms] == ["proc:node", "server.js --port"]
    typed = parse('proc:node "server.js --port"')
    assert [t.text for t in q.terms] == [t.text for t in typed.terms]
    assert [s.lport for s in q.filter(SNAP)] == [3000, 40000]
    # A word with a space but no quotes is two terms, as typed.
    assert [t.text for t in parse(["server.js --port"]).terms] == ["server.js", "--port"]


@pytest.mark.parametrize(
    ("q", "bad"),
    [("port:abc", "port:abc"), ("port:70000", "port:70000"), ("port:5-3", "port:5-3"),
     ("state:bogus", "state:bogus"), (":0", ":0"), ("pid:x", "pid:x"), ("foo:1", "foo:1"),
     ("proto:sctp", "proto:sctp"), ("addr:nothost", "addr:nothost"), ("user:", "user:"),
     ("-", "-"), ("port:", "port:")],
)
def test_invalid_terms_name_the_term(q: str, bad: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(f"proc:node {q}", me="alice")
    assert bad in str(err.value)


def test_unclosed_quote_and_too_long() -> None:
    with pytest.raises(QueryError, match="unclosed quote"):
        parse('proc:node "server')
    with pytest.raises(QueryError, match="too long"):
        parse("x" * 257)
    parse("x" * 256)


def test_user_me_needs_a_user() -> None:
    with pytest.raises(QueryError, match="current user"):
        parse("user:me", me=None)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_string_parses_or_raises_query_error(text: str) -> None:
    try:
        q = parse(text, me="alice")
    except QueryError:
        return
    q.filter(SNAP)  # and a parsed query can always be matched


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["port:", ":", "-", "!", "state:", "tw", "3000", "-3", ",",
                                 "proto:", "udp", "pid:", "addr:", "::1", '"', "user:", "me",
                                 " ", "x"]), max_size=12))
def test_query_like_strings_parse_or_raise_query_error(parts: list[str]) -> None:
    try:
        parse("".join(parts), me="alice").filter(SNAP)
    except QueryError:
        pass


def test_sort_keys() -> None:
    by_port = sorted(SOCKS, key=sort_key("port", SNAP))
    assert [s.lport for s in by_port] == [3000, 3000, 5353, 8080, 40000]
    by_proc = sorted(SOCKS, key=sort_key("process", SNAP))
    assert [s.pid for s in by_proc][:3] == [200, 100, 100]  # nginx < node < unknown
    by_addr = sorted(SOCKS, key=sort_key("address", SNAP))
    assert by_addr[-1].laddr == "::"  # IPv6 after IPv4
    for col in ("proto", "state", "pid", "user", "time"):
        assert len(sorted(SOCKS, key=sort_key(col, SNAP))) == len(SOCKS)
    with pytest.raises(ValueError):
        sort_key("bogus", SNAP)
