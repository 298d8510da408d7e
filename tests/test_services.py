"""Containers and services, for real: dockerd (with and without its userland proxy, and a
host-network container) in a network namespace of its own, and systemd booted in
systemd-nspawn with Restart=always, Restart=on-failure and socket-activated units. A daemon
is never signalled: each test checks its PID and start time are unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import psutil

from conftest import Tmux, alive, portside_cmd, run_cli, terminate, wait_for
from managed import free_port
from services import Dockerd, Machine, connect, identity, wait_listening


def _managed(row: dict[str, object]) -> dict[str, object]:
    m = row["managed_by"]
    assert isinstance(m, dict), row
    return m


# Docker ---------------------------------------------------------------------------------


def test_published_port_is_freed_by_stopping_the_container(dockerd: Dockerd) -> None:
    port = free_port()
    cid = dockerd.run("web", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], port)
    daemon = identity(dockerd.pid)
    try:
        row = dockerd.listening(port)
        assert row["process"] == "docker-proxy"
        m = _managed(row)
        assert m["kind"] == "docker" and m["name"] == "web", m
        assert m["pid"] == dockerd.pid
        assert "docker stop web" in str(m["stop"]) and dockerd.sock in str(m["stop"])
        assert "broken port mapping" in str(m["caution"])
        why = dockerd.cli("why", str(port))
        assert "container web" in why.stdout and "docker stop web" in why.stdout, why.stdout
        # kill on the proxy alone: refused without --holder-only, nothing sent.
        kill = dockerd.cli("kill", f":{port}", "--yes")
        assert kill.returncode == 1, kill.stdout + kill.stderr
        assert "--holder-only" in kill.stderr and "docker-proxy" in kill.stderr
        assert alive(row["pid"])
        # dockerd itself: refused by name, whatever is asked.
        refused = dockerd.cli("kill", str(dockerd.pid), "--yes")
        assert refused.returncode == 1 and "Docker's daemon" in refused.stderr, refused.stderr
        free = dockerd.cli("free", f":{port}", "--yes", "--grace", "2")
        assert free.returncode == 0, free.stdout + free.stderr
        assert "through Docker's Engine API" in free.stdout
        assert "docker stopped container web" in free.stdout
        assert f"port {port}: freed for good" in free.stdout
        state = dockerd.state(cid)
        assert state["Running"] is False, state
        assert dockerd.free(port)
        assert identity(dockerd.pid) == daemon
    finally:
        dockerd.remove(cid)


def test_dockerd_holding_the_port_is_never_signalled(dockerd_noproxy: Dockerd) -> None:
    d = dockerd_noproxy
    port = free_port()
    cid = d.run("api", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], port)
    daemon = identity(d.pid)
    try:
        row = d.listening(port)
        assert row["pid"] == d.pid and row["process"] == "dockerd", row
        m = _managed(row)
        assert m["kind"] == "docker" and m["name"] == "api", m
        kill = d.cli("kill", f":{port}", "--yes", "--force")
        assert kill.returncode == 1 and "Docker's daemon" in kill.stderr, kill.stderr
        why = d.cli("why", str(port))
        assert "Do not signal it" in why.stdout and "docker stop api" in why.stdout, why.stdout
        free = d.cli("free", f":{port}", "--yes", "--grace", "2")
        assert free.returncode == 0, free.stdout + free.stderr
        assert "portside signals no process" in free.stdout
        assert d.state(cid)["Running"] is False
        assert d.free(port)
        assert identity(d.pid) == daemon
    finally:
        d.remove(cid)


def test_host_network_init_with_a_restart_policy(dockerd: Dockerd) -> None:
    port = free_port()
    cid = dockerd.run("hostweb", ["/bin/httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
                      host_net=True, restart="always")
    try:
        row = dockerd.listening(port)
        holder = row["pid"]
        assert isinstance(holder, int)
        m = _managed(row)
        assert m["kind"] == "docker" and m["name"] == "hostweb" and m["restarts"] == "always"
        assert any("init" in e for e in m["evidence"]), m  # type: ignore[attr-defined]
        assert "ignores SIGTERM" in str(m["caution"])
        refused = dockerd.cli("kill", f":{port}", "--yes")
        assert refused.returncode == 1 and "--holder-only" in refused.stderr, refused.stderr
        # With --holder-only: SIGTERM is ignored by the namespace init, and --force does
        # not SIGKILL it (the restart policy would start it again).
        kill = dockerd.cli("kill", f":{port}", "--yes", "--holder-only", "--force",
                           "--grace", "1", "--settle", "0")
        assert kill.returncode == 1, kill.stdout + kill.stderr
        assert "not sent SIGKILL" in kill.stderr and "restart policy always" in kill.stderr
        assert alive(holder)
        free = dockerd.cli("free", f":{port}", "--yes", "--grace", "1")
        assert free.returncode == 0, free.stdout + free.stderr
        assert dockerd.state(cid)["Running"] is False
        assert dockerd.free(port)
    finally:
        dockerd.remove(cid)


def test_as_an_ordinary_user_the_container_is_not_signalled(dockerd: Dockerd) -> None:
    port = free_port()
    cid = dockerd.run("userweb", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], port)
    try:
        dockerd.listening(port)
        res = dockerd.cli("list", "--json", f":{port}", user="nobody")
        assert res.returncode == 0, res.stderr
        rows = json.loads(res.stdout)
        assert rows and rows[0]["pid"] is None  # root's proxy: unseen, not guessed
        why = dockerd.cli("why", str(port), user="nobody")
        assert "Traceback" not in why.stderr and "sudo" in why.stdout, why.stdout
        kill = dockerd.cli("kill", f":{port}", "--yes", user="nobody")
        assert kill.returncode == 1 and "Traceback" not in kill.stderr, kill.stderr
        assert dockerd.state(cid)["Running"] is True
    finally:
        dockerd.remove(cid)


# systemd --------------------------------------------------------------------------------


def test_restart_always_unit_is_stopped_not_signalled(machine: Machine) -> None:
    port = machine.ports["always"]
    manager = identity(machine.systemd)
    row = next(r for r in json.loads(run_cli("list", "--json", f":{port}").stdout)
           if r["state"] == "LISTEN")
    m = _managed(row)
    assert m["kind"] == "systemd" and m["name"] == "ps-always.service", m
    assert m["restarts"] == "always" and m["pid"] == machine.systemd
    assert "systemctl stop ps-always.service" in str(m["stop"])
    listed = run_cli("list", f":{port}")
    assert "systemd ps-always " in listed.stdout, listed.stdout
    # SIGTERM to the server: systemd starts it again within RestartSec.
    kill = run_cli("kill", f":{port}", "--yes", "--settle", "5")
    assert kill.returncode == 4, kill.stdout + kill.stderr
    assert "restarted by systemd" in kill.stdout and "ps-always.service" in kill.stdout
    assert "portside free" in kill.stderr  # the note before it acted
    wait_listening(port)
    free = run_cli("free", f":{port}", "--yes")
    assert free.returncode == 0, free.stdout + free.stderr
    assert "ask systemd to stop ps-always.service (with systemctl)" in free.stdout
    assert machine.systemctl("is-active", "ps-always.service").stdout.strip() == "inactive"
    assert not [r for r in json.loads(run_cli("list", "--json", f":{port}").stdout)
                if r["state"] == "LISTEN"]
    assert identity(machine.systemd) == manager


def test_force_never_sigkills_a_unit_that_restarts_after_sigkill(machine: Machine) -> None:
    port = machine.ports["failure"]
    row = next(r for r in json.loads(run_cli("list", "--json", f":{port}").stdout)
           if r["state"] == "LISTEN")
    holder = row["pid"]
    m = _managed(row)
    assert m["restarts"] == "on failure", m
    kill = run_cli("kill", f":{port}", "--yes", "--force", "--grace", "1", "--settle", "0")
    assert kill.returncode == 1, kill.stdout + kill.stderr
    assert "not sent SIGKILL" in kill.stderr and "Restart=on-failure" in kill.stderr
    assert "systemctl stop ps-failure.service" in kill.stderr
    assert alive(holder) and psutil.Process(holder).status() != psutil.STATUS_ZOMBIE
    free = run_cli("free", f":{port}", "--yes")
    assert free.returncode == 0, free.stdout + free.stderr
    assert machine.systemctl("is-active", "ps-failure.service").stdout.strip() in (
        "inactive", "failed")


def test_socket_activation_stops_the_socket_unit(machine: Machine) -> None:
    port = machine.ports["socket"]
    manager = identity(machine.systemd)
    connect(port)  # the service starts and holds the listener too
    def both() -> dict[str, object] | None:
        rows = [r for r in json.loads(run_cli("list", "--json", f":{port}").stdout)
                if r["state"] == "LISTEN" and len(r["holders"]) >= 2]
        return rows[0] if rows else None
    row = wait_for(both, timeout=30, poll=0.3)
    assert row["pid"] == machine.systemd
    m = _managed(row)
    assert m["kind"] == "systemd" and m["name"] == "ps-sock.socket", m
    assert any("LISTEN_FDNAMES" in e for e in m["evidence"]), m  # type: ignore[attr-defined]
    kill = run_cli("kill", str(machine.systemd), "--yes")
    assert kill.returncode == 1 and "init system" in kill.stderr, kill.stderr
    why = run_cli("why", str(port))
    assert "Do not signal it" in why.stdout and "ps-sock.socket" in why.stdout, why.stdout
    free = run_cli("free", f":{port}", "--yes")
    assert free.returncode == 0, free.stdout + free.stderr
    assert "systemd stopped ps-sock.socket ps-sock.service" in free.stdout
    assert machine.systemctl("is-active", "ps-sock.socket").stdout.strip() == "inactive"
    assert identity(machine.systemd) == manager


def test_a_dead_proxy_leaves_a_claim_that_why_shows(dockerd: Dockerd) -> None:
    """After its docker-proxy dies (signalled with --holder-only), Docker still says the
    container publishes the port; another process may take it: `why` says so."""
    port = free_port()
    cid = dockerd.run("stale", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], port)
    server = None
    try:
        proxy = dockerd.listening(port)["pid"]
        kill = dockerd.cli("kill", f":{port}", "--yes", "--holder-only", "--settle", "0")
        assert kill.returncode == 0, kill.stdout + kill.stderr
        wait_for(lambda: not alive(proxy), timeout=20)
        why = dockerd.cli("why", str(port))
        assert "Docker says container stale (127.0.0.1) publishes" in why.stdout, why.stdout
        assert "nothing listens" in why.stdout
        server = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{dockerd.ns}", sys.executable, "-m",
             "http.server", str(port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        row = dockerd.listening(port)
        assert row["pid"] == server.pid and row["managed_by"] is None, row
        why = dockerd.cli("why", str(port), "--json")
        data = json.loads(why.stdout)
        assert data["docker_claims"] == [{"container": "stale", "address": "127.0.0.1",
                                          "proto": "tcp"}]
        assert any(f"but PID {server.pid} (python" in v and "docker restart stale" in v
                   for v in data["verdict"]), data["verdict"]
    finally:
        if server is not None:
            terminate(server.pid)
            server.wait(10)
        dockerd.remove(cid)


def test_the_dashboard_in_a_terminal_frees_a_unit_with_systemctl(
        machine: Machine, tmux: Callable[..., Tmux]) -> None:
    port = machine.ports["always"]
    assert machine.systemctl("start", "ps-always.service").returncode == 0
    wait_listening(port)
    manager = identity(machine.systemd)
    term = tmux([*portside_cmd(), f":{port}", "--settle", "2"], size=(180, 45))
    screen = term.wait_text("systemd ps-always ", timeout=30)
    assert "MANAGER" in screen
    screen = term.wait_text("systemd unit (ps-always.service)")
    assert "Restart=always" in screen and "restarts always" in screen
    term.send("k")
    screen = term.wait_text("systemd restarts ps-always.service after SIGKILL")
    term.wait_text("Ready: press y")
    term.send("n")  # cancelled: nothing sent
    term.send("f")
    screen = term.wait_text("First, ask systemd to stop ps-always.service")
    assert f"nsenter -t {machine.systemd} -a systemctl stop" in screen
    term.wait_text("Ready: press y")
    term.send("y")
    term.wait_text(f"Port {port} is free", timeout=30)
    assert machine.systemctl("is-active", "ps-always.service").stdout.strip() == "inactive"
    term.send("q")
    assert term.exit_code() == 0
    assert identity(machine.systemd) == manager


def test_dockerd_holding_ports_for_two_containers_stops_only_the_ports_own(
        dockerd_noproxy: Dockerd) -> None:
    d = dockerd_noproxy
    one, two = free_port(), free_port()
    first = d.run("one", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], one)
    second = d.run("two", ["/bin/httpd", "-f", "-p", "80", "-h", "/www"], two)
    try:
        assert _managed(d.listening(one))["name"] == "one"
        assert _managed(d.listening(two))["name"] == "two"
        listed = d.cli("list", f":{one}", f":{two}")
        assert "docker one" in listed.stdout and "docker two" in listed.stdout, listed.stdout
        free = d.cli("free", f":{two}", "--yes", "--grace", "1")
        assert free.returncode == 0, free.stdout + free.stderr
        assert "container two" in free.stdout and "container one" not in free.stdout
        assert d.state(second)["Running"] is False
        assert d.state(first)["Running"] is True
        assert d.free(two) and not d.free(one)
    finally:
        d.remove(first)
        d.remove(second)


def test_a_wrapper_script_unit_manages_a_shell_started_server_does_not(machine: Machine) -> None:
    rows = {r["local_port"]: r for r in json.loads(run_cli(
        "list", "--json", f":{machine.ports['wrap']}", f":{machine.ports['shell']}").stdout)
        if r["state"] == "LISTEN"}
    wrap = _managed(rows[machine.ports["wrap"]])
    assert (wrap["kind"], wrap["name"], wrap["restarts"]) == ("systemd", "ps-wrap.service",
                                                              "always")
    shell = _managed(rows[machine.ports["shell"]])
    assert shell["kind"] == "systemd" and not shell["stop"] and shell["pid"] is None
    assert "started from a shell inside it" in shell["evidence"][0]  # type: ignore[index]
    listed = run_cli("list", f":{machine.ports['shell']}")
    assert "in ps-shell" in listed.stdout, listed.stdout
    why = run_cli("why", str(machine.ports["shell"]))
    assert "the unit does not run it" in why.stdout and "portside kill" in why.stdout
    assert "systemctl stop" not in why.stdout, why.stdout
