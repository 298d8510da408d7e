"""Made-up, deterministic data: a developer's machine, for snapshot tests and screenshots.

DemoBackend behaves like the live one (signals end processes, ports get freed) without
touching the machine, so the whole dashboard can be driven headless.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from types import MappingProxyType

from .actions import Request
from .backend import Identity, PortHolders
from .model import (
    DENIED,
    GONE,
    GONE_MESSAGE,
    HIDDEN_AS_USER,
    SENT,
    BindResult,
    Diagnosis,
    Family,
    Gaps,
    Manager,
    ProcessInfo,
    Proto,
    SignalResult,
    Snapshot,
    Socket,
    State,
    Target,
    listeners_on,
    make_processes,
)
from .report import diagnose

# 2026-11-21 09:30:00 UTC; the demo clock stands still at the moment of the sample.
DEMO_TIME = 1795253400.0
DEMO_MONOTONIC = 5000.0
DEMO_IDENTITY = Identity(hostname="devbox", user="alice", is_root=False, pid=4000,
                         protected=frozenset({4000, 1204, 812}))

_P = ProcessInfo


def _procs() -> dict[int, ProcessInfo]:
    t = DEMO_TIME
    procs = [
        _P(1, 0, "systemd", t - 86400 * 3, "root", "/usr/lib/systemd/systemd", ("/sbin/init",),
           "sleeping", "/", 12 << 20, 0.0),
        _P(812, 1, "sshd", t - 86400 * 3, "root", "/usr/sbin/sshd", ("sshd: alice [priv]",),
           "sleeping", "/", 9 << 20, 0.0, "ssh.service"),
        _P(1204, 812, "bash", t - 7200, "alice", "/usr/bin/bash", ("-bash",), "sleeping",
           "/home/alice", 5 << 20, 0.0),
        _P(2000, 1204, "npm run dev", t - 3726, "alice", "/usr/bin/node", ("npm run dev",),
           "sleeping", "/home/alice/shop", 52 << 20, 0.0),
        _P(2001, 2000, "node", t - 3725, "alice", "/usr/bin/node",
           ("node", "/home/alice/shop/node_modules/.bin/next", "dev", "-p", "3000"),
           "sleeping", "/home/alice/shop", 412 << 20, 3.5),
        _P(2044, 1204, "node", t - 1520, "alice", "/usr/bin/node",
           ("node", "/home/alice/admin/node_modules/.bin/vite", "--port", "5173"),
           "sleeping", "/home/alice/admin", 188 << 20, 0.7),
        _P(2300, 1204, "sh", t - 4000, "alice", "/usr/bin/dash",
           ("sh", "-c", "while true; do python3 -m http.server 8000; sleep 1; done"),
           "sleeping", "/home/alice/site", 1 << 20, 0.0),
        _P(2301, 2300, "python3", t - 95, "alice", "/usr/bin/python3.11",
           ("python3", "-m", "http.server", "8000"), "sleeping", "/home/alice/site",
           21 << 20, 0.0),
        _P(1500, 1, "postgres", t - 86400 * 3, "postgres", "/usr/lib/postgresql/15/bin/postgres",
           ("/usr/lib/postgresql/15/bin/postgres", "-D", "/var/lib/postgresql/15/main"),
           "sleeping", "/var/lib/postgresql/15/main", 33 << 20, 0.1,
           "postgresql@15-main.service"),
        _P(990, 1, "nginx", t - 86400 * 3, "root", "/usr/sbin/nginx",
           ("nginx: master process /usr/sbin/nginx",), "sleeping", "/", 6 << 20, 0.0,
           "nginx.service"),
        _P(991, 990, "nginx", t - 86400 * 3, "www-data", "/usr/sbin/nginx",
           ("nginx: worker process",), "sleeping", "/", 8 << 20, 0.2, "nginx.service"),
        _P(992, 990, "nginx", t - 86400 * 3, "www-data", "/usr/sbin/nginx",
           ("nginx: worker process",), "sleeping", "/", 8 << 20, 0.1, "nginx.service"),
        _P(1100, 1, "redis-server", t - 86400 * 2, "redis", "/usr/bin/redis-server",
           ("/usr/bin/redis-server", "127.0.0.1:6379"), "sleeping", "/var/lib/redis",
           11 << 20, 0.3, "redis-server.service"),
        _P(3100, 1204, "gunicorn", t - 600, "alice", "/home/alice/api/.venv/bin/python3",
           ("gunicorn: master [api:app]",), "sleeping", "/home/alice/api", 48 << 20, 0.0),
        _P(3101, 3100, "gunicorn", t - 598, "alice", "/home/alice/api/.venv/bin/python3",
           ("gunicorn: worker [api:app]",), "sleeping", "/home/alice/api", 61 << 20, 1.2),
        _P(3102, 3100, "gunicorn", t - 598, "alice", "/home/alice/api/.venv/bin/python3",
           ("gunicorn: worker [api:app]",), "sleeping", "/home/alice/api", 60 << 20, 0.9),
        _P(700, 1, "avahi-daemon", t - 86400 * 3, "avahi", "/usr/sbin/avahi-daemon",
           ("avahi-daemon: running [devbox.local]",), "sleeping", "/", 4 << 20, 0.0,
           "avahi-daemon.service"),
        _P(1700, 1, "dockerd", t - 86400 * 3, "root", "/usr/sbin/dockerd",
           ("/usr/sbin/dockerd", "-H", "fd://"), "sleeping", "/", 80 << 20, 0.2,
           "docker.service"),
        _P(1801, 1700, "docker-proxy", t - 5400, "root", "/usr/sbin/docker-proxy",
           ("/usr/sbin/docker-proxy", "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port",
            "8025", "-container-ip", "172.17.0.3", "-container-port", "8025"), "sleeping", "/",
           3 << 20, 0.0, "docker.service"),
        _P(4242, 1204, "[red]evil\x1b[2J\u202eexe", t - 30, "alice", "/tmp/x",
           ("/tmp/x", "--title", "[bold]hi[/bold]\x07"), "sleeping", "/tmp", 2 << 20, 0.0),
    ]
    return {p.pid: p for p in procs}


def _listen(family: Family, addr: str, port: int, pids: tuple[int, ...], user: str,
            inode: int, uid: int = 1000, proto: Proto = "tcp") -> Socket:
    state: State = "LISTEN" if proto == "tcp" else "NONE"
    return Socket(proto, family, addr, port, None, None, state, inode, uid, pids,
                  pids[0] if pids else None, user)


def _sockets(mono: float) -> list[Socket]:
    s = [
        _listen("ipv6", "::", 3000, (2001,), "alice", 51001),
        _listen("ipv4", "127.0.0.1", 5173, (2044,), "alice", 51002),
        _listen("ipv6", "::1", 5173, (2044,), "alice", 51003),
        _listen("ipv4", "0.0.0.0", 8000, (2301,), "alice", 51004),
        _listen("ipv4", "127.0.0.1", 5432, (1500,), "postgres", 41001, 115),
        _listen("ipv6", "::1", 5432, (1500,), "postgres", 41002, 115),
        _listen("ipv4", "0.0.0.0", 80, (990, 991, 992), "root", 31001, 0),
        _listen("ipv4", "0.0.0.0", 443, (990, 991, 992), "root", 31002, 0),
        _listen("ipv4", "127.0.0.1", 6379, (1100,), "redis", 31003, 110),
        _listen("ipv4", "127.0.0.1", 8080, (3100, 3101, 3102), "alice", 51005),
        _listen("ipv4", "0.0.0.0", 2024, (), "root", 1146, 0),
        _listen("ipv4", "0.0.0.0", 22, (), "root", 1150, 0),
        _listen("ipv4", "127.0.0.1", 9999, (4242,), "alice", 51006),
        _listen("ipv4", "0.0.0.0", 5353, (700,), "avahi", 21001, 108, "udp"),
        _listen("ipv4", "127.0.0.1", 8025, (1801,), "root", 31004, 0),
    ]
    # A dev server restarted a moment ago: its old connections drain on port 3000.
    for i in range(24):
        left = 58.4 - i * 2.45
        s.append(Socket("tcp", "ipv6", "::ffff:127.0.0.1", 3000, "::ffff:127.0.0.1",
                        50110 + i * 7, "TIME_WAIT", ends=mono + left, time_left_exact=True))
    # A test suite's client connections to postgres, closed by the client side.
    for i in range(5):
        s.append(Socket("tcp", "ipv4", "127.0.0.1", 41822 + i, "127.0.0.1", 5432, "TIME_WAIT",
                        ends=mono + 12.0 + i, time_left_exact=True))
    return s


def _established() -> list[Socket]:
    out = []
    for i, (port, pid, user) in enumerate([(3000, 2001, "alice"), (5432, 1500, "postgres"),
                                           (443, 991, "www-data"), (6379, 1100, "redis")]):
        out.append(Socket("tcp", "ipv4", "127.0.0.1", port, "127.0.0.1", 44000 + i,
                          "ESTABLISHED", 60000 + i, 1000, (pid,), pid, user))
    out.append(Socket("tcp", "ipv4", "10.0.2.15", 51234, "140.82.112.3", 443, "CLOSE_WAIT",
                      60100, 1000, (2044,), 2044, "alice"))
    return out


CONNECTIONS = {3000: 4, 5432: 6, 80: 12, 443: 31, 6379: 2, 8080: 3}


def _managers() -> dict[int, Manager]:
    """Who manages the demo's holders, as the live detection would judge them."""
    loop = ("sh -c 'while true; do python3 -m http.server 8000; sleep 1; done'")
    npm = Manager("script", "npm run dev", 2000, "'npm run dev'", "never", "kill 2000 2001",
                  ("PID 2000 is npm ('npm run dev')", "npm_lifecycle_event=dev",
                   "signal npm and the server together: npm alone leaves the server running"))
    shell = Manager("loop", "sh", 2300, loop, "always", "kill 2300 2301",
                    (f"PID 2300 is a shell running a restart loop: {loop[7:-1]}",),
                    "PID 2301 is restarted by the shell loop PID 2300: signalling it frees "
                    "the port only until the shell loop restarts it")

    def master(name: str, pid: int, workers: tuple[int, ...], command: str) -> Manager:
        return Manager("prefork", name, pid, command, "always", f"kill {pid}",
                       (f"PID {pid} holds the socket and its children (PID "
                        f"{', '.join(map(str, workers))}) hold it too",
                        f"{name} starts a new worker when one dies"))

    gunicorn = master("gunicorn", 3100, (3101, 3102), "'gunicorn: master [api:app]'")
    nginx = master("nginx", 990, (991, 992), "'nginx: master process /usr/sbin/nginx'")
    proxy = Manager(
        "docker", "mailpit", 1700, "/usr/sbin/dockerd -H fd://", "always",
        "docker stop mailpit",
        ("PID 1801 is docker-proxy (/usr/sbin/docker-proxy -proto tcp -host-ip 127.0.0.1 "
         "-host-port 8025 -container-ip 172.17.0.3 -container-port 8025)",
         "its parent PID 1700 is dockerd",
         "Docker's API: container 172.17.0.3:8025 publishes 127.0.0.1:8025",
         "container mailpit (3f9c2a1b7d04), image axllent/mailpit, restart policy "
         "unless-stopped"),
        "PID 1801 is docker-proxy: signalling it frees the port but leaves the container "
        "running with a broken port mapping (docker ps still shows it); stop the container "
        "instead", via="docker", target="3f9c2a1b7d04" + "0" * 52,
        scope="/var/run/docker.sock",
        no_kill="docker restarts container mailpit when its process is killed (restart "
        "policy unless-stopped): stop it instead: docker stop mailpit")
    redis = Manager(
        "systemd", "redis-server.service", 1, "/sbin/init", "always",
        "systemctl stop redis-server.service",
        ("PID 1100 runs in systemd unit redis-server.service (its cgroup), with no shell "
         "between it and the unit", "the unit's manager is PID 1 (/sbin/init)",
         "Restart=always, restarted 0 time(s), main PID 1100 (systemctl show)"),
        "PID 1100 is restarted by systemd (unit redis-server.service): signalling it frees "
        "the port only until systemd restarts it", via="systemd",
        target="redis-server.service",
        no_kill="systemd restarts redis-server.service after SIGKILL (Restart=always): stop "
        "the unit instead: systemctl stop redis-server.service")
    out = {2001: npm, 2301: shell, 1801: proxy, 1100: redis}
    for pid in (3100, 3101, 3102):
        out[pid] = gunicorn if pid == 3100 else gunicorn._replace(
            caution=f"PID {pid} serves under the master PID 3100, which holds the port too, "
            f"and starts a new one: signalling PID {pid} alone does not free it")
    for pid in (990, 991, 992):
        out[pid] = nginx
    return out


def demo_snapshot(all_states: bool = False, gone: frozenset[int] = frozenset(),
                  taken_at: float = DEMO_TIME, monotonic: float = DEMO_MONOTONIC) -> Snapshot:
    """The demo machine; processes in `gone` have exited (their sockets with them)."""
    procs = {pid: p for pid, p in _procs().items() if pid not in gone}
    socks = [s for s in _sockets(monotonic) + (_established() if all_states else [])
             if not s.holders or any(p not in gone for p in s.holders)]
    socks = [s._replace(holders=tuple(p for p in s.holders if p not in gone),
                        pid=next((p for p in s.holders if p not in gone), None)) if s.holders else s
             for s in socks]
    unknown = sum(1 for s in socks if not s.holders and s.state != "TIME_WAIT")
    gaps = Gaps(is_root=False, unreadable_pids=3, unknown_owner=unknown,
                unknown_reason=HIDDEN_AS_USER)
    managers = {pid: m for pid, m in _managers().items()
                if pid not in gone and (m.pid is None or m.pid not in gone)}
    return Snapshot(taken_at=taken_at, monotonic=monotonic, sockets=tuple(socks),
                    processes=make_processes(procs), gaps=gaps, source="demo",
                    all_states=all_states, duration=0.012,
                    connections=MappingProxyType(dict(CONNECTIONS)),
                    managers=MappingProxyType(managers))


@dataclass
class DemoBackend:
    """A Backend over the demo machine. gunicorn's master ignores SIGTERM, as some do."""

    identity: Identity = DEMO_IDENTITY
    stubborn: frozenset[int] = frozenset({3100})
    gone: set[int] = field(default_factory=set)
    sent: list[tuple[int, int]] = field(default_factory=list)  # (pid, signal) delivered
    samples: int = 0
    asked: list[Request] = field(default_factory=list)  # managers asked to stop a program

    def sample(self, all_states: bool) -> Snapshot:
        """The demo snapshot, minus what was ended."""
        self.samples += 1
        return demo_snapshot(all_states, frozenset(self.gone))

    def release_memory(self) -> None:
        """Nothing to give back: the demo's snapshots are small."""

    def send_signal(self, target: Target, sig: int) -> SignalResult:
        """Pretend to signal; other users' processes are denied, as for a real user."""
        procs = _procs()
        info = procs.get(target.pid)
        if target.pid in self.gone or info is None or info.create_time != target.create_time:
            return SignalResult(target, sig, GONE, GONE_MESSAGE)
        if info.username != self.identity.user and not self.identity.is_root:
            return SignalResult(target, sig, DENIED,
                                "permission denied: it belongs to another user (try sudo)")
        self.sent.append((target.pid, sig))
        if sig == signal.SIGKILL or target.pid not in self.stubborn:
            self.gone.add(target.pid)
            # Children of a forking server exit with their master.
            self.gone.update(p.pid for p in procs.values() if p.ppid == target.pid)
        return SignalResult(target, sig, SENT, f"{signal.Signals(sig).name} sent")

    def holders(self, port: int) -> PortHolders:
        """Who holds the port in the demo now."""
        return PortHolders.of(port, demo_snapshot(False, frozenset(self.gone)))

    def is_alive(self, target: Target) -> bool:
        """True until the demo process was ended."""
        return target.pid not in self.gone

    def started_by(self, pid: int) -> str | None:
        """The demo process's parent."""
        procs = _procs()
        parent = procs.get(procs[pid].ppid or 0) if pid in procs else None
        return f"PID {parent.pid} ({parent.name})" if parent and parent.pid > 1 else None

    def ask(self, request: Request) -> tuple[bool, str]:
        """Pretend the manager stopped its program: its holders are gone."""
        self.asked.append(request)
        self.gone.update(request.holders)
        return True, f"{request.via} stopped {request.name}"

    def diagnose(self, port: int) -> Diagnosis:
        """The diagnosis with made-up bind() results that match the demo's sockets."""
        snap = demo_snapshot(True, frozenset(self.gone))
        held = bool(listeners_on(snap, port))
        tw = any(s.lport == port and s.state == "TIME_WAIT" for s in snap.sockets)
        binds = []
        for addr in ("0.0.0.0", "::", "127.0.0.1"):
            for reuse in (False, True):
                ok = not held and (reuse or not tw)
                binds.append(BindResult(addr, reuse, ok, None if ok else "EADDRINUSE",
                                        None if ok else "Address already in use"))
        return diagnose(port, snap, binds)
