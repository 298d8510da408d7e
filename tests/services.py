"""Real container engines and init systems for the tests: dockerd in a network namespace of
its own (nothing reaches the host's network), and systemd booted in systemd-nspawn on a
root `make test` builds once under ~/.cache/portside-test. Every daemon is started by the
fixture and ended by its PID at teardown, with everything it started.

A pytest plugin (conftest's pytest_plugins): its fixtures are everyone's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import installed, portside_cmd, wait_for
from managed import free_port
from portside.system.dockerapi import UnixConnection

NSPAWN_ROOT = Path(os.environ.get("PORTSIDE_NSPAWN_ROOT",
                                  Path.home() / ".cache/portside-test/nspawn-root"))
BUSYBOX = "/bin/busybox"


def need(*tools: str) -> None:
    """Fail (not skip) when make test did not install a tool: the tests are the evidence."""
    missing = [t for t in tools if shutil.which(t) is None]
    if os.geteuid() != 0:
        pytest.skip("the real daemons need root")
    assert not missing, f"make test installs these: {missing}"


def end_tree(pid: int, timeout: float = 20) -> None:
    """SIGTERM a daemon by its PID, wait, then SIGKILL it and anything left under it."""
    try:
        root = psutil.Process(pid)
        kids = root.children(recursive=True)
        root.terminate()
        root.wait(timeout)
    except psutil.NoSuchProcess:
        kids = []
    except psutil.TimeoutExpired:
        root.kill()
    for k in kids:
        try:
            k.kill()
        except psutil.NoSuchProcess:
            pass


# Docker -----------------------------------------------------------------------------


@dataclass
class Dockerd:
    """One dockerd, in its own network namespace, with its own roots and API socket."""

    ns: str
    sock: str
    proc: subprocess.Popen[bytes]
    tmp: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def api(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """One Engine API request (as the docker client would make it)."""
        conn = UnixConnection(self.sock, 60)
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, url, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(raw) if raw.strip() else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")  # /_ping says OK

    def run(self, name: str, cmd: list[str], port: int | None = None, cport: int = 80,
            host_net: bool = False, restart: str = "no") -> str:
        """Create and start a container from the busybox image; its id."""
        hostconf: dict[str, Any] = {"RestartPolicy": {"Name": restart}}
        spec: dict[str, Any] = {"Image": "bbox:local", "Cmd": cmd, "HostConfig": hostconf}
        if host_net:
            hostconf["NetworkMode"] = "host"
        elif port is not None:
            spec["ExposedPorts"] = {f"{cport}/tcp": {}}
            hostconf["PortBindings"] = {f"{cport}/tcp": [{"HostIp": "127.0.0.1",
                                                          "HostPort": str(port)}]}
        status, made = self.api("POST", f"/containers/create?name={name}", spec)
        assert status == 201, made
        status, said = self.api("POST", f"/containers/{made['Id']}/start")
        assert status == 204, said
        cid: str = made["Id"]
        return cid

    def state(self, cid: str) -> dict[str, Any]:
        status, info = self.api("GET", f"/containers/{cid}/json")
        assert status == 200, info
        state: dict[str, Any] = info["State"]
        return state

    def remove(self, cid: str) -> None:
        self.api("DELETE", f"/containers/{cid}?force=true")

    def cli(self, *args: str, user: str | None = None, timeout: float = 90
            ) -> subprocess.CompletedProcess[str]:
        """The installed portside, run inside this dockerd's network namespace."""
        env = {**os.environ, "DOCKER_HOST": ""} if user is None else \
            {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
        return subprocess.run(["nsenter", f"--net=/var/run/netns/{self.ns}",
                               *portside_cmd(user), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL,
                              cwd=installed().root, env=env)

    def listening(self, port: int, timeout: float = 30) -> dict[str, Any]:
        """The port's LISTEN row, read by portside in the namespace, once it is there."""
        def row() -> dict[str, Any] | None:
            res = self.cli("list", "--json", f":{port}")
            assert res.returncode == 0, res.stderr
            rows = [r for r in json.loads(res.stdout) if r["state"] == "LISTEN"]
            return rows[0] if rows else None
        found: dict[str, Any] = wait_for(row, timeout=timeout, poll=0.3)
        return found

    def free(self, port: int) -> bool:
        res = self.cli("list", "--json", f":{port}")
        return not [r for r in json.loads(res.stdout) if r["state"] == "LISTEN"]


def _image(tmp: Path) -> Path:
    """A tar of a root with busybox, sh and httpd: `docker import` makes it an image."""
    tar = tmp / "bb.tar"
    with tarfile.open(tar, "w") as t:
        t.add(BUSYBOX, "bin/busybox")
        for name in ("sh", "httpd"):
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(info)
        page = tmp / "index.html"
        page.write_text("hi\n")
        t.add(page, "www/index.html")
    return tar


def start_dockerd(tag: str, *extra: str) -> Dockerd:
    """dockerd in a new network namespace (nsenter --net: `ip netns exec` remounts /sys,
    which dockerd cannot use), with the busybox image imported."""
    tmp = Path(tempfile.mkdtemp(prefix=f"psd{tag}-", dir="/tmp"))
    ns = f"portside-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
    sock = str(tmp / "docker.sock")
    log = open(tmp / "log", "wb")  # noqa: SIM115 - closed with the daemon
    proc = subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{ns}", "dockerd", "--data-root", str(tmp / "data"),
         "--exec-root", str(tmp / "x"), "--pidfile", str(tmp / "pid"), "-H", f"unix://{sock}",
         "--iptables=true", *extra],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    d = Dockerd(ns, sock, proc, tmp)
    try:
        _ready(d)
    except BaseException:
        stop_dockerd(d)
        raise
    return d


def _ready(d: Dockerd) -> None:
    """Until the API answers; then the busybox image imported."""
    proc, tmp, sock = d.proc, d.tmp, d.sock

    def up() -> bool:
        assert proc.poll() is None, (tmp / "log").read_text()[-3000:]
        try:
            return d.api("GET", "/_ping")[0] == 200
        except (OSError, ValueError):
            return False
    wait_for(up, timeout=60, poll=0.2)
    # nsenter execs dockerd: the PID is dockerd's.
    assert psutil.Process(proc.pid).name() == "dockerd"
    tar = _image(tmp)
    conn = UnixConnection(sock, 60)
    conn.request("POST", "/images/create?fromSrc=-&repo=bbox&tag=local", body=tar.read_bytes(),
                 headers={"Content-Type": "application/x-tar"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200


def stop_dockerd(d: Dockerd) -> None:
    try:
        _, listing = d.api("GET", "/containers/json?all=true")
        for c in listing or []:
            d.remove(c["Id"])
    except OSError:
        pass
    end_tree(d.pid)
    d.proc.wait(30)
    # Shims are not dockerd's children: end those of this daemon's runtime, by PID.
    for p in psutil.process_iter(["cmdline"]):
        if str(d.tmp) in " ".join(p.info["cmdline"] or ()):
            end_tree(p.pid, 5)
    subprocess.run(["ip", "netns", "del", d.ns], check=False)
    unmount_under(d.tmp)
    shutil.rmtree(d.tmp, ignore_errors=True)


def unmount_under(path: Path) -> None:
    """Lazily unmount what a daemon left mounted below its roots (its netns file, overlay
    layers), deepest first: a daemon that did not shut down cleanly leaves them."""
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [line.split()[4] for line in fh]
    for point in sorted((p for p in points if p.startswith(f"{path}/")), key=len,
                        reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A dockerd with its userland proxy (docker-proxy holds published ports)."""
    need("dockerd", "containerd", "nsenter", "ip", "iptables")
    d = start_dockerd("a")
    try:
        yield d
    finally:
        stop_dockerd(d)


@pytest.fixture(scope="session")
def dockerd_noproxy() -> Iterator[Dockerd]:
    """A dockerd with --userland-proxy=false: it holds published ports itself."""
    need("dockerd", "containerd", "nsenter", "ip", "iptables")
    d = start_dockerd("b", "--userland-proxy=false")
    try:
        yield d
    finally:
        stop_dockerd(d)


# systemd ----------------------------------------------------------------------------


@dataclass
class Machine:
    """systemd booted in systemd-nspawn, sharing the host's network (its listeners are
    the host's), with the test's units."""

    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    units: Path

    @property
    def systemd(self) -> int:
        """The container's systemd, as the host sees it."""
        kids = psutil.Process(self.proc.pid).children()
        assert kids, "systemd-nspawn has not started systemd"
        return kids[0].pid

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", "-t", str(self.systemd), "-a", "systemctl", *args],
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)


# A server that ignores SIGTERM (so that only SIGKILL would end it).
_STUBBORN = ("import signal,http.server as h; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "h.HTTPServer(('127.0.0.1', {port}), h.SimpleHTTPRequestHandler).serve_forever()")
_ACTIVATED = ("import socket,http.server as h; s=h.HTTPServer(('127.0.0.1',0),"
              "h.SimpleHTTPRequestHandler,bind_and_activate=False); "
              "s.socket=socket.fromfd(3,socket.AF_INET,socket.SOCK_STREAM); s.serve_forever()")


def _units(where: Path, ports: dict[str, int]) -> None:
    wants = where / "multi-user.target.wants"
    socks = where / "sockets.target.wants"
    wants.mkdir(parents=True)
    socks.mkdir()
    units = {
        "ps-always.service": "[Service]\nExecStart=/usr/bin/python3 -m http.server "
                             f"{ports['always']} --bind 127.0.0.1\nRestart=always\n"
                             "RestartSec=1\n",
        "ps-failure.service": "[Service]\nExecStart=/usr/bin/python3 -c \""
                              f"{_STUBBORN.format(port=ports['failure'])}\"\n"
                              "Restart=on-failure\nRestartSec=1\nTimeoutStopSec=3\n",
        "ps-sock.socket": f"[Socket]\nListenStream=127.0.0.1:{ports['socket']}\n",
        # A wrapper script as the main process: the unit runs the server.
        "ps-wrap.service": "[Service]\nExecStart=/bin/bash -c 'python3 -m http.server "
                           f"{ports['wrap']} --bind 127.0.0.1; exit 1'\nRestart=always\n",
        # A shell the unit runs starts another shell (as a login would): only "in" the unit.
        "ps-shell.service": "[Service]\nExecStart=/bin/bash -c \"bash -c 'python3 -m "
                            f"http.server {ports['shell']} --bind 127.0.0.1; true'; true\"\n",
        "ps-sock.service": f"[Service]\nExecStart=/usr/bin/python3 -c \"{_ACTIVATED}\"\n",
    }
    for name, text in units.items():
        (where / name).write_text(text)
    for name in ("ps-always.service", "ps-failure.service", "ps-wrap.service",
                 "ps-shell.service"):
        (wants / name).symlink_to(f"../{name}")
    (socks / "ps-sock.socket").symlink_to("../ps-sock.socket")


@pytest.fixture(scope="session")
def machine() -> Iterator[Machine]:
    """systemd in systemd-nspawn, booted on the cached root with three test units."""
    need("systemd-nspawn", "nsenter")
    assert (NSPAWN_ROOT / "usr/lib/systemd/systemd").exists(), \
        f"make test builds the root at {NSPAWN_ROOT}"
    tmp = Path(tempfile.mkdtemp(prefix="portside-units-"))
    ports = {name: free_port() for name in ("always", "failure", "socket", "wrap", "shell")}
    _units(tmp / "units", ports)
    log = open(tmp / "log", "wb")  # noqa: SIM115 - closed with the machine
    proc = subprocess.Popen(
        ["systemd-nspawn", "--keep-unit", "--register=no", "-q", "-D", str(NSPAWN_ROOT),
         "-M", f"pstest{os.getpid()}", f"--bind-ro={tmp / 'units'}:/etc/systemd/system.control",
         "-b"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    m = Machine(proc, ports, tmp / "units")
    try:
        def up() -> bool:
            assert proc.poll() is None, (tmp / "log").read_text()[-3000:]
            listening = {c.laddr.port for c in psutil.net_connections("tcp")
                         if c.laddr and c.status == psutil.CONN_LISTEN}
            return set(ports.values()) <= listening
        wait_for(up, timeout=90, poll=0.3)
        yield m
    finally:
        try:
            os.kill(proc.pid, signal.SIGTERM)  # nspawn asks the container to power off
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            end_tree(proc.pid, 5)
        shutil.rmtree(tmp, ignore_errors=True)


def wait_listening(port: int, timeout: float = 30) -> None:
    """Until something listens on the port (a unit restarted, a socket re-opened)."""
    def up() -> bool:
        return any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in psutil.net_connections("tcp"))
    wait_for(up, timeout=timeout, poll=0.2)


def connect(port: int) -> None:
    """One connection to a loopback port (starts a socket-activated service)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.recv(64)


def identity(pid: int) -> tuple[int, float]:
    """A daemon's PID and start time: the same after a test means it was never ended."""
    return pid, psutil.Process(pid).create_time()
