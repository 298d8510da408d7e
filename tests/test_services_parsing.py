"""Containers and units judged from made-up /proc trees and made-up daemon answers: cgroup
v1 and v2 paths (docker, podman, CRI, kubepods, nspawn payloads, user units), docker-proxy's
arguments, and what is said when Docker or systemctl cannot be asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portside.daemons import daemon_kind, manager_refusal
from portside.model import ProcessInfo
from portside.system.services import (
    Services,
    Unreachable,
    _gid_of,
    container_id,
    docker_hosts,
    proxy_args,
    systemctl_argv,
    unit_of,
)

CID = "8583a5cb81f44f4b3561a4ede15090078bde7ab84f3b10c49f80a3e0f59a1283"


@pytest.mark.parametrize(("cgroup", "want"), [
    (f"0::/docker/{CID}\n", ("docker", CID)),  # cgroupfs driver, v2
    (f"9:name=systemd:/docker/{CID}\n4:memory:/docker/{CID}\n", ("docker", CID)),  # v1
    (f"0::/system.slice/docker-{CID}.scope\n", ("docker", CID)),  # systemd driver
    (f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope/"
     "container\n", ("podman", CID)),
    (f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/"
     f"cri-containerd-{CID}.scope\n", ("containerd", CID)),
    (f"0::/kubepods/besteffort/pod1/{CID}\n", ("kubernetes", CID)),
    ("0::/system.slice/nginx.service\n", None),
    ("0::/\n", None),
])
def test_container_id(cgroup: str, want: tuple[str, str] | None) -> None:
    assert container_id(cgroup) == want


@pytest.mark.parametrize(("cgroup", "want"), [
    ("0::/system.slice/web.service\n", ("web.service", "")),
    ("9:name=systemd:/system.slice/web.service\n4:memory:/other.service\n",
     ("web.service", "")),
    ("0::/payload/system.slice/ps-always.service\n", ("ps-always.service", "")),  # nspawn
    ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/dev.service\n",
     ("dev.service", "user@1000.service")),
    ("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n", None),  # the manager
    ("0::/user.slice/user-1000.slice/session-3.scope\n", None),  # a login session
    ("4:memory:/system.slice/web.service\n0::/\n", None),  # a v1 controller alone
])
def test_unit_of(cgroup: str, want: tuple[str, str] | None) -> None:
    assert unit_of(cgroup) == want


def test_proxy_args_and_hosts() -> None:
    argv = ["/usr/sbin/docker-proxy", "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port",
            "8080", "-container-ip", "172.17.0.2", "-container-port", "80", "-use-listen-fd"]
    args = proxy_args(argv)
    assert (args["host-port"], args["container-ip"], args["container-port"]) == \
        ("8080", "172.17.0.2", "80")
    hosts = docker_hosts([["dockerd", "-H", "unix:///tmp/a.sock", "--host=tcp://x:1",
                           "-Hunix:///tmp/b.sock"]])
    assert hosts[:2] == ["/tmp/a.sock", "/tmp/b.sock"] and hosts[-1] == "/var/run/docker.sock"
    assert systemctl_argv("ns:42", "stop", "a.service") == ["nsenter", "-t", "42", "-a",
                                                            "systemctl", "stop", "a.service"]
    # A user's manager, on its private socket as that user (no D-Bus): as root...
    assert systemctl_argv("user:1000", "stop", "a", euid=0) == [
        "setpriv", "--reuid=1000", f"--regid={_gid_of(1000)}", "--init-groups", "env",
        "XDG_RUNTIME_DIR=/run/user/1000", "systemctl", "--user", "stop", "a"]
    # ... as that user, and inside a container.
    assert systemctl_argv("user:1000", "stop", "a", euid=1000) == ["systemctl", "--user",
                                                                   "stop", "a"]
    argv = systemctl_argv("ns:42:user:1000", "stop", "a", euid=0)
    assert argv[:6] == ["nsenter", "-t", "42", "-a", "-S", "1000"] and argv[-4:] == [
        "systemctl", "--user", "stop", "a"]


@pytest.mark.parametrize(("name", "cmdline", "kind"), [
    ("dockerd", ["/usr/bin/dockerd", "-H", "fd://"], "engine"),
    ("containerd", ["containerd"], "engine"),
    ("containerd-shim", ["/usr/bin/containerd-shim-runc-v2", "-id", "x"], "shim"),
    ("podman", ["podman", "system", "service"], "engine"),
    ("systemd", ["/lib/systemd/systemd", "--user"], "init"),
    ("systemd", ["/sbin/init"], "init"),
    ("python3", ["python3", "-m", "http.server"], None),
    ("docker-proxy", ["docker-proxy"], None),  # signalled only with --holder-only
])
def test_daemons_are_refused(name: str, cmdline: list[str], kind: str | None) -> None:
    assert daemon_kind(name, cmdline) == kind
    assert (manager_refusal(4242, name, cmdline) is not None) == (kind is not None)


def _proc(tmp: Path, pid: int, cgroup: str, nspid: str | None = None, comm: str = "x") -> None:
    d = tmp / str(pid)
    d.mkdir()
    (d / "cgroup").write_text(cgroup)
    (d / "status").write_text(f"Name:\t{comm}\nNSpid:\t{nspid or pid}\n")
    (d / "comm").write_text(comm + "\n")


def _info(pid: int, name: str, ppid: int = 1, cmdline: tuple[str, ...] = ()) -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=ppid, name=name, create_time=1.0, username="root",
                       cmdline=cmdline or (name,))


def test_unreachable_docker_api_keeps_the_refusals_and_says_what_to_run(
        tmp_path: Path) -> None:
    _proc(tmp_path, 300, f"0::/docker/{CID}\n", "300\t1", "httpd")

    def denied(path: str, method: str, url: str, **_: Any) -> tuple[int, Any]:
        raise Unreachable(f"the Docker API at {path} refused this user (Permission denied)")

    svc = Services(str(tmp_path), docker=denied)
    m = svc.runs([_info(300, "httpd", 299)])
    assert m is not None and m.kind == "docker" and m.via == "none"
    assert "docker ps" in m.stop and "refused this user" in " ".join(m.evidence)
    assert m.caution is not None and "ignores SIGTERM" in m.caution  # still said


def test_container_from_the_api(tmp_path: Path) -> None:
    _proc(tmp_path, 300, f"0::/system.slice/docker-{CID}.scope\n", "300\t7", "node")
    asked: list[str] = []

    def api(path: str, method: str, url: str, **_: Any) -> tuple[int, Any]:
        asked.append(url)
        return 200, {"Id": CID, "Name": "/shop", "Config": {"Image": "node:20"},
                     "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}},
                     "State": {"Pid": 290}}

    svc = Services(str(tmp_path), docker=api)
    m = svc.runs([_info(300, "node", 290)])
    assert m is not None and (m.kind, m.name, m.via, m.target) == ("docker", "shop", "docker", CID)
    assert m.restarts == "always" and m.no_kill is not None and "docker stop shop" in m.stop
    assert m.caution is None  # not the container's init
    svc.runs([_info(300, "node", 290)])
    assert asked == [f"/containers/{CID}/json"]  # cached


def test_unit_started_from_a_shell_is_not_its_manager(tmp_path: Path) -> None:
    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")
    _proc(tmp_path, 400, "0::/system.slice/ssh.service\n", comm="python3")
    _proc(tmp_path, 401, "0::/system.slice/ssh.service\n", comm="python3")
    shown: list[tuple[str, ...]] = []

    def systemctl(scope: str, *args: str, **_: Any) -> str:
        shown.append(args)
        return "Restart=always\nNRestarts=2\nMainPID=10\n"

    svc = Services(str(tmp_path), systemctl=systemctl)
    chain = [_info(400, "python3", 399), _info(399, "bash", 398), _info(398, "sshd", 10)]
    inside = svc.runs(chain)
    assert inside is not None and not shown
    assert (inside.via, inside.stop, inside.pid) == ("holders", "", None)
    assert "started from a shell inside it (PID 399 bash)" in inside.evidence[0]
    direct = svc.runs([_info(401, "python3", 1)])
    assert direct is not None and direct.kind == "systemd" and direct.restarts == "always"
    assert direct.stop == "systemctl stop ssh.service"


def test_systemctl_unreachable(tmp_path: Path) -> None:
    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")
    _proc(tmp_path, 400, "0::/system.slice/web.service\n", comm="python3")

    def fails(scope: str, *args: str, **_: Any) -> str:
        raise Unreachable("systemctl show exited 1: Failed to connect to bus")

    m = Services(str(tmp_path), systemctl=fails).runs([_info(400, "python3", 1)])
    assert m is not None and m.via == "none" and m.restarts == "unknown"
    assert m.stop == "systemctl status web.service"
    assert "Failed to connect to bus" in " ".join(m.evidence)


def test_no_systemd_no_unit(tmp_path: Path) -> None:
    """On a machine systemd does not run, a cgroup named like a unit is no manager."""
    _proc(tmp_path, 1, "0::/\n", comm="tini")
    _proc(tmp_path, 400, "0::/system.slice/web.service\n", comm="python3")
    assert Services(str(tmp_path)).runs([_info(400, "python3", 1)]) is None


def test_never_proposes_stopping_the_unit_portside_runs_in(tmp_path: Path) -> None:
    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")
    _proc(tmp_path, 400, "0::/system.slice/dev.service\n", comm="python3")
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "cgroup").write_text("0::/system.slice/dev.service\n")

    def systemctl(scope: str, *args: str, **_: Any) -> str:
        return "Restart=always\n"

    m = Services(str(tmp_path), systemctl=systemctl).runs([_info(400, "python3", 1)])
    assert m is not None and m.via == "holders" and m.stop == ""
    assert "portside itself runs in this unit" in " ".join(m.evidence)


def test_systemd_holding_two_socket_units_plans_each_port_for_its_own(tmp_path: Path) -> None:
    """PID 1 holds the listeners of several socket units: each port is freed by stopping
    its own unit, never another's (the holder's one manager names none)."""
    from types import MappingProxyType

    from portside.actions import for_good
    from portside.model import Snapshot, Socket
    from portside.system.managers import ManagerIndex

    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")

    def systemctl(scope: str, *args: str, **_: Any) -> str:
        if args[0] == "list-sockets":
            return ("127.0.0.1:8080 web.socket web.service\n"
                    "[::]:631 cups.socket cups.service\n")
        unit = args[-1]
        return f"Triggers={unit.removesuffix('.socket')}.service\n"

    index = ManagerIndex(str(tmp_path), Services(str(tmp_path), systemctl=systemctl))
    init = _info(1, "systemd", 0, ("/sbin/init",))
    socks = [Socket("tcp", "ipv4", "127.0.0.1", 8080, None, None, "LISTEN", 11, 0, (1,), 1),
             Socket("tcp", "ipv6", "::", 631, None, None, "LISTEN", 12, 0, (1,), 1)]
    managers = index.judge({1: {1}}, {1: init}, socks)
    assert managers[1].via == "none" and managers[1].name == "2 units"
    snap = Snapshot(0.0, 0.0, tuple(socks), MappingProxyType({1: init}),
                    managers=MappingProxyType(managers),
                    port_managers=MappingProxyType(dict(index.port_managers)))
    first = snap.manager(socks[0])
    assert first is not None and first.name == "web.socket"
    web = for_good(8080, snap)
    assert [r.name for r in web.requests] == ["web.socket web.service"] and not web.holders
    cups = for_good(631, snap)
    assert [r.name for r in cups.requests] == ["cups.socket cups.service"]


def test_one_systemctl_show_for_every_unit_of_a_sample(tmp_path: Path) -> None:
    from portside.system.managers import ManagerIndex

    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")
    units = {500: "a.service", 501: "b.service", 502: "gone.service"}
    for pid, unit in units.items():
        _proc(tmp_path, pid, f"0::/system.slice/{unit}\n", comm="srv")
    calls: list[tuple[str, ...]] = []

    def systemctl(scope: str, *args: str, **_: Any) -> str:
        calls.append(args)
        asked = args[args.index("--") + 1:]
        return "\n\n".join(
            f"Id={u}\nLoadState=not-found\nRestart=no" if u == "gone.service" else
            f"Id={u}\nLoadState=loaded\nRestart={'always' if u == 'a.service' else 'no'}"
            for u in asked) + "\n"

    index = ManagerIndex(str(tmp_path), Services(str(tmp_path), systemctl=systemctl))
    procs = {pid: _info(pid, "srv", 1) for pid in units}
    managers = index.judge({pid: {pid} for pid in units}, procs)
    assert len(calls) == 1 and calls[0][-3:] == ("a.service", "b.service", "gone.service")
    assert managers[500].restarts == "always" and managers[501].restarts == "never"
    assert managers[502].via == "none" and "systemd has no unit gone.service" in \
        " ".join(managers[502].evidence)
    index.judge({pid: {pid} for pid in units}, procs)
    assert len(calls) == 1  # judged again from the cache


def test_a_user_unit_is_stopped_through_that_users_manager(tmp_path: Path) -> None:
    _proc(tmp_path, 1, "0::/init.scope\n", comm="systemd")
    cg = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/dev.service\n"
    _proc(tmp_path, 700, "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
          comm="systemd")
    _proc(tmp_path, 701, cg, comm="node")
    asked: list[str] = []

    def systemctl(scope: str, *args: str, **_: Any) -> str:
        asked.append(scope)
        return "Id=dev.service\nLoadState=loaded\nRestart=on-failure\n"

    chain = [_info(701, "node", 700), _info(700, "systemd", 1, ("/lib/systemd/systemd",
                                                                  "--user"))]
    m = Services(str(tmp_path), systemctl=systemctl).runs(chain)
    assert m is not None and (m.kind, m.name, m.via, m.scope) == (
        "systemd", "dev.service", "systemd", "user:1000")
    assert asked == ["user:1000"] and m.restarts == "on failure" and m.no_kill is not None
    assert m.stop.startswith("systemctl --user stop dev.service  (as ")


def test_a_proxy_is_never_matched_by_its_port_alone(tmp_path: Path) -> None:
    def api(path: str, method: str, url: str, **_: Any) -> tuple[int, Any]:
        return 200, [{"Id": CID, "Names": ["/web"], "Ports": [
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.9"}}}}]

    svc = Services(str(tmp_path), docker=api)
    engine = _info(50, "dockerd", 1, ("dockerd", "-H", "unix:///tmp/d.sock"))
    for pid, argv in ((60, ("docker-proxy", "-proto", "tcp", "-host-port", "8080",
                            "-container-port", "80")),
                      (61, ("docker-proxy", "-proto", "tcp", "-host-ip", "127.0.0.1",
                            "-host-port", "8080", "-container-ip", "172.17.0.2",
                            "-container-port", "80"))):
        proxy = _info(pid, "docker-proxy", 50, argv)
        found = svc.daemon(proxy, {50: engine}, [("tcp", "127.0.0.1", 8080, (pid,))],
                           lambda p: None)
        assert found[8080].via == "none" and found[8080].name == "", found
        assert found[8080].stop == "docker ps --filter publish=8080"
    right = _info(62, "docker-proxy", 50, ("docker-proxy", "-proto", "tcp", "-host-ip",
                                            "127.0.0.1", "-host-port", "8080", "-container-ip",
                                            "172.17.0.9", "-container-port", "80"))
    found = svc.daemon(right, {50: engine}, [("tcp", "127.0.0.1", 8080, (62,))], lambda p: None)
    assert (found[8080].name, found[8080].via, found[8080].scope) == ("web", "docker",
                                                                       "/tmp/d.sock")
