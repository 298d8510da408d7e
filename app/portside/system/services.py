"""Containers and services: who runs a holder when it is a container (Docker's Engine API
over its unix socket) or a systemd unit (`systemctl show`), and how to stop it for good.

Everything asked of a daemon has a short timeout and is cached for a few seconds, per
container or unit: the sampler asks on every sample. What cannot be asked (no socket,
permission denied, a timeout) is said, with the next command to try.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import re
import shlex
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

from ..daemons import daemon_kind
from ..fmt import join_cmdline, safe_text
from ..model import Manager, PortClaim, ProcessInfo, Restarts

API_TIMEOUT = 2.0  # seconds one question to dockerd or systemctl may take
TTL = 5.0  # seconds an answer from a daemon is reused
# Seconds a holder's verdict is reused (a unit's Restart= or a container's policy seldom
# changes; a restart is a new process): the sampler asks for every holder, every sample.
JUDGED_TTL = 30.0
DEFAULT_DOCKER = "/var/run/docker.sock"
_PROPS = "Id,LoadState,Restart,NRestarts,MainPID,ActiveState,Triggers,TriggeredBy"
# Processes that stand between a unit's main process and a holder a person started by
# hand: the holder is "in" the unit, not run by it.
_INTERACTIVE = frozenset({"sh", "bash", "dash", "zsh", "ksh", "fish", "ash", "mksh", "sshd",
                          "tmux", "tmux: server", "screen", "SCREEN", "su", "sudo", "login"})
# cgroup path components that name a container: docker, podman (libpod), containerd/CRI.
_CONTAINER = re.compile(r"^(?:docker-|libpod-|cri-containerd-|crio-)?([0-9a-f]{64})(?:\.scope)?$")
_RUNTIMES = (("libpod", "podman"), ("crio", "cri-o"), ("cri-containerd", "containerd"),
             ("kubepods", "kubernetes"), ("docker", "docker"))


class Unreachable(Exception):
    """A daemon that could not be asked: the reason, as a person would read it."""


# Docker ---------------------------------------------------------------------------------


def docker_call(path: str, method: str, url: str, timeout: float = API_TIMEOUT
                ) -> tuple[int, Any]:
    """One request to the Engine API (dockerapi, imported only when Docker is asked:
    http.client costs a one-shot `portside list` ~15 ms)."""
    from .dockerapi import request

    return request(path, method, url, timeout)


def docker_hosts(engines: Iterable[Sequence[str]]) -> list[str]:
    """The unix sockets to ask, in order: $DOCKER_HOST, each running dockerd's -H, the
    default one."""
    out = []
    env = os.environ.get("DOCKER_HOST", "")
    if env.startswith("unix://"):
        out.append(env[len("unix://"):])
    for argv in engines:
        for i, arg in enumerate(argv):
            value = None
            if arg in ("-H", "--host") and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(("-H=", "--host=")):
                value = arg.partition("=")[2]
            elif arg.startswith("-H") and len(arg) > 2:
                value = arg[2:]
            if value and value.startswith("unix://"):
                out.append(value[len("unix://"):])
    out.append(DEFAULT_DOCKER)
    return list(dict.fromkeys(out))


def docker_env(path: str) -> str:
    """"DOCKER_HOST=unix://PATH " when the socket is not the default one."""
    return "" if path == DEFAULT_DOCKER else f"DOCKER_HOST={shlex.quote('unix://' + path)} "


def container_id(cgroup: str) -> tuple[str, str] | None:
    """(runtime, container id) from a process's /proc/PID/cgroup text, or None."""
    for line in cgroup.splitlines():
        parts = [p for p in line.split(":", 2)[-1].split("/") if p]
        for part in reversed(parts):
            found = _CONTAINER.match(part)
            if found is None:
                continue
            runtime = next((name for key, name in _RUNTIMES
                            if part.startswith(key) or any(p.startswith(key) for p in parts)),
                           "container")
            return runtime, found.group(1)
    return None


def is_docker_proxy(info: ProcessInfo) -> bool:
    """True for Docker's userland proxy (it holds a published port for a container)."""
    argv = info.cmdline or ()
    return info.name == "docker-proxy" or (bool(argv) and os.path.basename(argv[0]) == \
        "docker-proxy")


def proxy_args(argv: Sequence[str]) -> dict[str, str]:
    """docker-proxy's -proto, -host-ip, -host-port, -container-ip, -container-port."""
    out = {}
    for i, arg in enumerate(argv):
        if arg.startswith("-") and i + 1 < len(argv):
            key = arg.lstrip("-")
            if "=" in key:
                key, _, value = key.partition("=")
                out[key] = value
            else:
                out[key] = argv[i + 1]
    return out


def _restarts(policy: str) -> Restarts:
    # on-failure restarts a container whose main process a signal ended (a non-zero exit).
    return "never" if policy in ("", "no") else "always"


# systemd --------------------------------------------------------------------------------


def unit_of(cgroup: str) -> tuple[str, str] | None:
    """(unit, user manager unit or "") of a process's cgroup: the service it runs in, and
    user@UID.service when that is a user's manager; None outside any service."""
    for line in cgroup.splitlines():
        hier, _, path = line.partition(":")[2].partition(":")
        if hier not in ("", "name=systemd"):
            continue
        parts = [p for p in path.split("/") if p]
        user = next((p for p in parts if p.startswith("user@") and p.endswith(".service")), "")
        tail = parts[parts.index(user) + 1:] if user else parts
        unit = next((p for p in reversed(tail) if p.endswith(".service")), None)
        if unit is not None and unit != user:
            return unit, user
    return None


def systemctl_argv(scope: str, *args: str, euid: int | None = None) -> list[str]:
    """systemctl with these arguments, run where the unit's manager is: the machine's
    ("") , a container's ("ns:PID"), a user's ("user:UID"), a user's in a container
    ("ns:PID:user:UID"). A user's manager is reached on its private socket, as that user
    (no D-Bus needed)."""
    euid = os.geteuid() if euid is None else euid
    ns, _, user = scope.partition("user:")
    pid = ns.removeprefix("ns:").rstrip(":")
    if not user:
        return ["nsenter", "-t", pid, "-a", "systemctl", *args] if pid else \
            ["systemctl", *args]
    mine = ["env", f"XDG_RUNTIME_DIR=/run/user/{user}", "systemctl", "--user", *args]
    if pid:
        gid = (_status(int(pid), "/proc", "Gid") or ["0"])[0]  # the user's group
        return ["nsenter", "-t", pid, "-a", "-S", user, "-G", gid, *mine]
    if int(user) == euid:
        return ["systemctl", "--user", *args]
    return ["setpriv", f"--reuid={user}", f"--regid={_gid_of(int(user))}", "--init-groups",
            *mine]


def _gid_of(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


def systemctl_text(scope: str, *args: str) -> str:
    """The same, as a person would type it (a user types --user as that user)."""
    ns, _, user = scope.partition("user:")
    if user and not ns:
        try:
            name = pwd.getpwuid(int(user)).pw_name
        except (KeyError, ValueError):
            name = f"UID {user}"
        return shlex.join(["systemctl", "--user", *args]) + f"  (as {name})"
    return shlex.join(systemctl_argv(scope, *args))


def run_systemctl(scope: str, *args: str, timeout: float = API_TIMEOUT) -> str:
    """systemctl's output; Unreachable when it cannot be run or fails."""
    import subprocess

    # Never a password prompt: polkit's agent would wait on the terminal for an answer.
    argv = systemctl_argv(scope, "--no-ask-password", *args)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise Unreachable(f"{argv[0]} is not installed") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unreachable(f"{shlex.join(argv[:6])} failed: {exc}") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        hint = "; run portside with sudo" if said and "authentication" in said[-1].lower() \
            else ""
        raise Unreachable(f"{shlex.join(argv)} exited {done.returncode}"
                          + (f": {said[-1]}" if said else "") + hint)
    return done.stdout.decode("utf-8", "replace")


def _unit_restarts(restart: str) -> Restarts:
    if restart == "always":
        return "always"
    if restart in ("on-failure", "on-abnormal", "on-abort", "on-watchdog"):
        return "on failure"
    return "never" if restart == "no" else "unknown"


def _status(pid: int, root: str, field: str) -> list[str] | None:
    """One field of /proc/PID/status, split ("NSpid", "Uid", "Gid"); None when absent."""
    prefix = field + ":"
    for line in (_read(f"{root}/{pid}/status") or "").splitlines():
        if line.startswith(prefix):
            return line.split()[1:]
    return None


def _ns_pids(pid: int, root: str) -> list[int]:
    """NSpid: the process's PID in each PID namespace it is in, outermost first."""
    found = _status(pid, root, "NSpid")
    try:
        return [int(x) for x in found] if found else [pid]
    except ValueError:
        return [pid]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(1 << 16)
    except OSError:
        return None


# The judge ------------------------------------------------------------------------------


Addr = tuple[str, str, int, tuple[int, ...]]  # proto, local address, port, its holders


class _Timed:
    """Values by key, each for a number of seconds; the expired are dropped when it grows
    past `limit`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """(fresh, value): fresh is False when the key is missing or expired."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() < hit[0]:
            return True, hit[1]
        return False, None

    def put(self, key: Hashable, value: Any, ttl: float) -> None:
        now = time.monotonic()
        if len(self._items) >= self._limit:
            self._items = {k: v for k, v in self._items.items() if now < v[0]}
        self._items[key] = (now + ttl, value)


class Services:
    """Asks Docker and systemd about holders; caches the answers for TTL seconds."""

    def __init__(self, root: str = "/proc", docker: Callable[..., tuple[int, Any]] = docker_call,
                 systemctl: Callable[..., str] = run_systemctl) -> None:
        self.root = root
        self._docker = docker
        self._systemctl = systemctl
        self._cache = _Timed(256)  # daemons' answers
        self._own: tuple[str, str] | bool | None = False  # our own unit, read once
        self._judged = _Timed(4096)  # verdicts by (pid, start time, port)

    def _memo(self, holder: ProcessInfo, judge: Callable[[], Manager | None], port: int = 0
              ) -> Manager | None:
        """One verdict per process (and port) for JUDGED_TTL seconds; one that could not
        ask a daemon (via "none") is asked again after TTL."""
        key = (holder.pid, holder.create_time, port)
        fresh, found = self._judged.get(key)
        if not fresh:
            found = judge()
            self._judged.put(key, found, TTL if found is not None and found.via == "none"
                             else JUDGED_TTL)
        return found  # type: ignore[no-any-return]

    # Cached questions ---------------------------------------------------------------

    def _cached(self, key: tuple[str, ...], ask: Callable[[], Any]) -> Any:
        """A daemon's answer (or its failure, raised again) for TTL seconds."""
        fresh, value = self._cache.get(key)
        if not fresh:
            try:
                value = ask()
            except Unreachable as exc:
                value = exc
            self._cache.put(key, value, TTL)
        if isinstance(value, Unreachable):
            raise value
        return value

    def _engines(self) -> list[tuple[str, ...]]:
        """The command lines of the running dockerd processes (a scan of /proc)."""
        def scan() -> list[tuple[str, ...]]:
            out: list[tuple[str, ...]] = []
            try:
                names = os.listdir(self.root)
            except OSError:
                return out
            for name in names:
                if name.isdigit() and (_read(f"{self.root}/{name}/comm") or "").strip() == \
                        "dockerd":
                    raw = _read(f"{self.root}/{name}/cmdline") or ""
                    out.append(tuple(raw.split("\0")))
            return out
        found: list[tuple[str, ...]] = self._cached(("engines",), scan)
        return found

    def _api(self, hosts: Sequence[str], url: str) -> tuple[str, Any]:
        """(socket, answer) from the first Docker API that answers 200."""
        errors = []
        for path in hosts:
            try:
                status, data = self._cached(
                    ("docker", path, url), functools.partial(self._docker, path, "GET", url))
            except Unreachable as exc:
                errors.append(str(exc))
                continue
            if status == 200:
                return path, data
            errors.append(f"the Docker API at {path} answered {status} to GET {url}")
        raise Unreachable("; ".join(dict.fromkeys(errors)) or "no Docker API socket")

    def _show(self, scope: str, unit: str) -> dict[str, str]:
        found: dict[str, str] = self._cached(("show", scope, unit),
                                             lambda: self._show_many(scope, [unit])[unit])
        return found

    def _show_many(self, scope: str, units: Sequence[str]) -> dict[str, dict[str, str]]:
        """Each unit's properties, from one `systemctl show` (blocks in the units' order)."""
        text = self._systemctl(scope, "show", "-p", _PROPS, "--", *units)
        blocks = [dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
                  for block in text.split("\n\n")]
        out = {}
        for unit, props in zip(units, [b for b in blocks if b], strict=False):
            if props.get("LoadState") == "not-found":
                props = {**props, "error": f"systemd has no unit {unit}"}
            out[unit] = props
        for unit in units:
            out.setdefault(unit, {"error": f"systemctl show said nothing of {unit}"})
        return out

    def prefetch(self, chains: Iterable[Sequence[ProcessInfo]]) -> None:
        """Ask systemd about every unit these holders run in at once (one systemctl per
        manager), for the holders not judged lately."""
        wanted: dict[str, list[str]] = {}
        for chain in chains:
            holder = chain[0]
            if self._judged.get((holder.pid, holder.create_time, 0))[0]:
                continue
            found = unit_of(_read(f"{self.root}/{holder.pid}/cgroup") or "")
            if found is None:
                continue
            scope = self._scope(self._systemd_above(chain)[1], found[1])
            if not self._cache.get(("show", scope, found[0]))[0]:
                wanted.setdefault(scope, []).append(found[0])
        for scope, units in wanted.items():
            units = list(dict.fromkeys(units))
            if len(units) < 2:
                continue  # asked as before, when judged
            try:
                answers = self._show_many(scope, units)
            except Unreachable:
                continue  # each is asked again, and its own failure said, when judged
            for unit, props in answers.items():
                self._cache.put(("show", scope, unit), props, TTL)

    def claims(self, port: int) -> tuple[list[PortClaim], str]:
        """The containers Docker says publish this port, and why Docker could not be asked
        ("" when it was, or when no dockerd runs here)."""
        engines = self._engines()
        if not engines and not os.environ.get("DOCKER_HOST", "").startswith("unix://"):
            return [], ""
        try:
            _, listing = self._api(docker_hosts(engines), "/containers/json")
        except Unreachable as exc:
            return [], str(exc)
        out = []
        for c in listing if isinstance(listing, list) else []:
            name = str((c.get("Names") or [c.get("Id", "")[:12]])[0]).lstrip("/")
            for p in c.get("Ports") or ():
                if p.get("PublicPort") == port:
                    out.append(PortClaim(name, str(p.get("IP") or "0.0.0.0"),
                                         str(p.get("Type") or "tcp")))
        return list(dict.fromkeys(out)), ""

    # The rules ----------------------------------------------------------------------

    def daemon(self, holder: ProcessInfo, procs: Mapping[int, ProcessInfo],
               addrs: list[Addr], envs: Callable[[int], Mapping[str, str] | None]
               ) -> dict[int, Manager]:
        """Port -> the container or unit a daemon (docker-proxy, dockerd, systemd) holds
        that port for: dockerd and systemd hold ports for several ({} for none)."""
        ports: dict[int, list[Addr]] = {}
        for a in addrs:
            ports.setdefault(a[2], []).append(a)
        out: dict[int, Manager] = {}
        for port, mine in sorted(ports.items()):
            one = self._memo(holder, functools.partial(self._daemon, holder, procs, mine, envs),
                             port)
            if one is not None:
                out[port] = one
        return out

    def _daemon(self, holder: ProcessInfo, procs: Mapping[int, ProcessInfo],
                addrs: list[Addr], envs: Callable[[int], Mapping[str, str] | None]
                ) -> Manager | None:
        if is_docker_proxy(holder):
            return self._proxy(holder, procs)
        kind = daemon_kind(holder.name, holder.cmdline)
        if kind == "engine" and holder.name == "dockerd":
            return self._engine_holds(holder, addrs)
        if kind == "init":
            together = {p for a in addrs for p in a[3]}
            return self._socket_unit(holder, together, addrs, envs)
        return None

    def runs(self, chain: Sequence[ProcessInfo]) -> Manager | None:
        """The container or systemd service that runs the holder (chain[0]), from its
        cgroup; None when it runs in neither."""
        return self._memo(chain[0], lambda: self._runs(chain))

    def _runs(self, chain: Sequence[ProcessInfo]) -> Manager | None:
        holder = chain[0]
        cgroup = _read(f"{self.root}/{holder.pid}/cgroup") or ""
        found = container_id(cgroup)
        if found is not None:
            return self._in_container(holder, *found)
        unit = unit_of(cgroup)
        if unit is not None:
            return self._in_unit(chain, *unit)
        return None

    def _docker_manager(self, holder: ProcessInfo, engine: ProcessInfo | None, path: str,
                        info: Mapping[str, Any], evidence: list[str], caution: str | None
                        ) -> Manager:
        cid = str(info.get("Id", ""))
        name = str(info.get("Name") or (info.get("Names") or [""])[0]).lstrip("/") or cid[:12]
        host = info.get("HostConfig") or {}
        policy = str((host.get("RestartPolicy") or {}).get("Name") or "no")
        image = str((info.get("Config") or {}).get("Image") or info.get("Image") or "")
        restarts = _restarts(policy)
        evidence.append(f"container {safe_text(name)} ({cid[:12]}), image {safe_text(image)}, "
                        f"restart policy {safe_text(policy)}")
        no_kill = None
        if restarts != "never":
            no_kill = (f"docker restarts container {safe_text(name)} when its process is "
                       f"killed (restart policy {safe_text(policy)}): stop it instead: "
                       f"{docker_env(path)}docker stop {shlex.quote(name)}")
        return Manager("docker", name, engine.pid if engine else None,
                       join_cmdline(engine.cmdline) if engine else "", restarts,
                       f"{docker_env(path)}docker stop {shlex.quote(name)}", tuple(evidence),
                       caution, via="docker", target=cid, scope=path, no_kill=no_kill)

    def _unreachable(self, holder: ProcessInfo, engine: ProcessInfo | None, why: str,
                     evidence: list[str], port: int | None, caution: str | None) -> Manager:
        nxt = f"docker ps --filter publish={port}" if port else "docker ps"
        evidence.append(f"{why}: run {nxt} to see the container")
        return Manager("docker", "", engine.pid if engine else None,
                       join_cmdline(engine.cmdline) if engine else "", "unknown", nxt,
                       tuple(evidence), caution, via="none")

    def _proxy(self, holder: ProcessInfo, procs: Mapping[int, ProcessInfo]) -> Manager:
        """docker-proxy holds a published port for a container: match it by the proxy's
        own arguments (container address and port), never by the port alone."""
        args = proxy_args(holder.cmdline or ())
        engine = procs.get(holder.ppid or 0)
        hport = args.get("host-port", "")
        evidence = [f"PID {holder.pid} is docker-proxy ({safe_text(join_cmdline(holder.cmdline))})"]
        if engine is not None:
            evidence.append(f"its parent PID {engine.pid} is {safe_text(engine.name)}")
        caution = (f"PID {holder.pid} is docker-proxy: signalling it frees the port but leaves "
                   "the container running with a broken port mapping (docker ps still shows "
                   "it); stop the container instead")
        port = int(hport) if hport.isdigit() else None
        hosts = docker_hosts([engine.cmdline] if engine and engine.cmdline else self._engines())
        try:
            path, listing = self._api(hosts, "/containers/json")
        except Unreachable as exc:
            return self._unreachable(holder, engine, str(exc), evidence, port, caution)
        cip, cport = args.get("container-ip", ""), args.get("container-port", "")
        proto = args.get("proto", "tcp")
        if not cip or not cport:
            return self._unreachable(holder, engine, "its arguments name no container "
                                     "address, and a port alone does not tell the container",
                                     evidence, port, caution)
        for c in listing if isinstance(listing, list) else []:
            nets = ((c.get("NetworkSettings") or {}).get("Networks") or {}).values()
            if cip not in {n.get("IPAddress") for n in nets if isinstance(n, dict)} \
                    and cip not in {n.get("GlobalIPv6Address") for n in nets
                                    if isinstance(n, dict)}:
                continue
            if any(str(p.get("PrivatePort")) == cport and str(p.get("PublicPort")) == hport
                   and p.get("Type", "tcp") == proto for p in c.get("Ports") or ()):
                evidence.append(f"Docker's API: container {cip}:{cport} publishes "
                                f"{args.get('host-ip', '')}:{hport}")
                return self._docker_manager(holder, engine, path, self._inspect(path, c),
                                            evidence, caution)
        return self._unreachable(holder, engine, f"no running container has {cip}:{cport} "
                                 f"published on {hport} (the proxy outlived it?)", evidence,
                                 port, caution)

    def _inspect(self, path: str, brief: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            _, full = self._api([path], f"/containers/{brief.get('Id', '')}/json")
        except Unreachable:
            return brief
        return full if isinstance(full, dict) else brief

    def _engine_holds(self, engine: ProcessInfo, addrs: list[Addr]) -> Manager | None:
        """dockerd holds the port itself (its userland proxy off): the container that
        publishes it, found through the API's publish filter."""
        ports = sorted({(proto, addr, port) for proto, addr, port, _ in addrs})
        evidence = [f"PID {engine.pid} is dockerd, and holds the listening socket itself "
                    "(userland proxy off) for a container's published port"]
        caution = manager_caution(engine)
        if not ports:
            return None
        proto, addr, port = ports[0]
        hosts = docker_hosts([engine.cmdline] if engine.cmdline else [])
        from urllib.parse import quote

        url = "/containers/json?filters=" + quote(json.dumps(
            {"publish": [f"{port}/{proto}"]}, separators=(",", ":")), safe="")
        try:
            path, listing = self._api(hosts, url)
        except Unreachable as exc:
            return self._unreachable(engine, engine, str(exc), evidence, port, caution)
        wild = ("0.0.0.0", "::", "")
        matches = [c for c in listing if isinstance(c, dict) and any(
            p.get("PublicPort") == port and p.get("Type", "tcp") == proto and
            (p.get("IP", "") == addr or (p.get("IP", "") in wild and addr in wild))
            for p in c.get("Ports") or ())] if isinstance(listing, list) else []
        if len(matches) != 1:
            why = "no running container publishes it" if not matches else \
                f"{len(matches)} containers publish it"
            return self._unreachable(engine, engine, f"Docker's API: port {port}/{proto} on "
                                     f"{addr}: {why}", evidence, port, caution)
        evidence.append(f"Docker's API: the container publishes {addr}:{port}/{proto}")
        return self._docker_manager(engine, engine, path, self._inspect(path, matches[0]),
                                    evidence, caution)

    def _in_container(self, holder: ProcessInfo, runtime: str, cid: str) -> Manager:
        """A process inside a container: the container, from the API; a namespace init
        ignores SIGTERM unless it handles it."""
        nspid = _ns_pids(holder.pid, self.root)
        init = len(nspid) > 1 and nspid[-1] == 1
        evidence = [f"PID {holder.pid} runs in {runtime} container {cid[:12]} (its cgroup)"]
        caution = None
        if init:
            evidence.append("it is the container's init (PID 1 in its namespace): it ignores "
                            "SIGTERM unless it handles it")
            caution = (f"PID {holder.pid} is the init of a container: it ignores SIGTERM unless "
                       "it handles it, and ending it stops the container (whose restart "
                       "policy may start it again); stop the container instead")
        if runtime != "docker":
            cmd = "podman" if runtime == "podman" else "crictl" if runtime in (
                "cri-o", "containerd", "kubernetes") else "docker"
            evidence.append(f"{runtime} is not asked: stop it with {cmd} stop {cid[:12]}")
            return Manager("docker", cid[:12], None, "", "unknown", f"{cmd} stop {cid[:12]}",
                           tuple(evidence), caution, via="none")
        try:
            path, info = self._api(docker_hosts(self._engines()), f"/containers/{cid}/json")
        except Unreachable as exc:
            return self._unreachable(holder, None, str(exc), evidence, None, caution)
        main = ((info.get("State") or {}) if isinstance(info, dict) else {}).get("Pid")
        if not init and main and main != holder.pid:
            evidence.append(f"the container's main process is PID {main}")
        return self._docker_manager(holder, None, path, info, evidence, caution)

    def _own_unit(self) -> tuple[str, str] | None:
        if self._own is False:
            self._own = unit_of(_read(f"{self.root}/self/cgroup") or "")
        return self._own if isinstance(self._own, tuple) else None

    def _systemd_above(self, chain: Sequence[ProcessInfo]) -> tuple[int, ProcessInfo | None]:
        """Where the chain reaches the systemd that runs its units: (index, that systemd);
        the machine's PID 1 when the chain stops below it."""
        for i, info in enumerate(chain[1:], 1):
            if daemon_kind(info.name, info.cmdline) == "init":
                return i, info
        return len(chain), None

    def _scope(self, manager: ProcessInfo | None, user: str) -> str:
        """Where systemctl must run for this manager (systemctl_argv's scopes)."""
        ns = f"ns:{manager.pid}" if manager is not None and \
            len(_ns_pids(manager.pid, self.root)) > 1 else ""
        uid = user.removeprefix("user@").removesuffix(".service")
        if user and uid.isdigit():
            return f"{ns}:user:{uid}" if ns else f"user:{uid}"
        return ns

    def _in_unit(self, chain: Sequence[ProcessInfo], unit: str, user: str) -> Manager | None:
        """A systemd service runs the holder: the unit's manager, only when no shell, sshd,
        tmux or screen stands between (then it is only "in" the unit)."""
        holder = chain[0]
        at, manager = self._systemd_above(chain)
        if manager is None and (_read(f"{self.root}/1/comm") or "").strip() != "systemd":
            return None  # no systemd runs this machine: a cgroup name, not a manager
        # The process systemd started (chain[at - 1]) is the unit's main process, a wrapper
        # script included; a shell below it was started by hand (an ssh login, a tmux).
        between = [p for p in chain[1:at - 1] if p.name in _INTERACTIVE or
                   os.path.basename((p.cmdline or ("",))[0]).lstrip("-") in _INTERACTIVE]
        if between:
            # Started by hand inside the unit: it is in the unit, not run by it; stopping
            # the unit would end the shell too, so it is never proposed.
            shell = between[0]
            return Manager(
                "systemd", unit, None, "", "unknown", "",
                (f"PID {holder.pid} is in systemd unit {safe_text(unit)} (its cgroup), started "
                 f"from a shell inside it (PID {shell.pid} {safe_text(shell.name)})",
                 f"stopping {safe_text(unit)} would end that shell too: not proposed"),
                via="holders", target=unit)
        scope = self._scope(manager, user)
        where = {"": "", "ns": " (in a container)", "user": " (a user's manager)"}[
            scope.partition(":")[0]]
        evidence = [f"PID {holder.pid} runs in systemd unit {safe_text(unit)}{where} (its "
                    "cgroup), with no shell between it and the unit"]
        if manager is not None:
            evidence.append(f"the unit's manager is PID {manager.pid} "
                            f"({safe_text(join_cmdline(manager.cmdline) or manager.name)})")
        mine = self._own_unit()
        if mine is not None and mine == (unit, user) and not scope.startswith("ns:"):
            evidence.append("portside itself runs in this unit: stopping it would stop "
                            "portside too")
            return Manager("systemd", unit, None, "", "unknown", "", tuple(evidence),
                           via="holders", target=unit, scope=scope)
        return self._unit_manager(holder, manager, unit, scope, evidence, (unit,))

    def _unit_manager(self, holder: ProcessInfo, manager: ProcessInfo | None, unit: str,
                      scope: str, evidence: list[str], units: tuple[str, ...]) -> Manager:
        try:
            props = self._show(scope, unit)
        except Unreachable as exc:
            evidence.append(f"systemctl could not be asked: {exc}")
            nxt = systemctl_text(scope, "status", unit)
            return Manager("systemd", unit, manager.pid if manager else 1,
                           join_cmdline(manager.cmdline) if manager else "", "unknown", nxt,
                           tuple(evidence), via="none", target=unit, scope=scope)
        if "error" in props:
            evidence.append(f"systemctl could not be asked: {props['error']}")
            return Manager("systemd", unit, manager.pid if manager else 1,
                           join_cmdline(manager.cmdline) if manager else "", "unknown",
                           systemctl_text(scope, "status", unit), tuple(evidence),
                           via="none", target=unit, scope=scope)
        restart = props.get("Restart", "")
        restarts = _unit_restarts(restart)
        if props.get("TriggeredBy"):
            units = (*units, *props["TriggeredBy"].split())
        evidence.append(f"Restart={safe_text(restart)}, restarted "
                        f"{safe_text(props.get('NRestarts', '?'))} time(s), main PID "
                        f"{safe_text(props.get('MainPID', '?'))} (systemctl show)")
        caution = no_kill = None
        who = f"systemd (unit {safe_text(unit)})"
        if restarts == "always":
            caution = (f"PID {holder.pid} is restarted by {who}: signalling it frees the port "
                       "only until systemd restarts it")
        if restarts in ("always", "on failure"):
            no_kill = (f"systemd restarts {safe_text(unit)} after SIGKILL (Restart="
                       f"{safe_text(restart)}): stop the unit instead: "
                       f"{systemctl_text(scope, 'stop', *units)}")
        return Manager("systemd", unit, manager.pid if manager else 1,
                       join_cmdline(manager.cmdline) if manager else "", restarts,
                       systemctl_text(scope, "stop", *units), tuple(evidence), caution,
                       via="systemd", target=" ".join(units), scope=scope, no_kill=no_kill)

    def _socket_unit(self, init: ProcessInfo, together: Iterable[int], addrs: list[Addr],
                     envs: Callable[[int], Mapping[str, str] | None]) -> Manager | None:
        """systemd holds the listener itself (socket activation): the socket unit, from a
        co-holder's LISTEN_FDNAMES or `systemctl list-sockets`."""
        if not addrs:
            return None
        uid = _status(init.pid, self.root, "Uid") if "--user" in (init.cmdline or ()) else None
        scope = self._scope(init, f"user@{uid[0]}.service" if uid else "")
        evidence = [f"PID {init.pid} is systemd and holds the listening socket itself: socket "
                    "activation"]
        names: list[str] = []
        for pid in together:
            env = envs(pid) if pid != init.pid else None
            for name in (env or {}).get("LISTEN_FDNAMES", "").split(":"):
                if name.endswith(".socket"):
                    names.append(name)
                    evidence.append(f"PID {pid} has LISTEN_FDNAMES={safe_text(name)}")
        if not names:
            try:
                text = self._cached(("sockets", scope), lambda: self._systemctl(
                    scope, "list-sockets", "--all", "--no-legend", "--full"))
            except Unreachable as exc:
                evidence.append(f"systemctl could not be asked: {exc}")
                return Manager("systemd", "", init.pid, join_cmdline(init.cmdline), "unknown",
                               systemctl_text(scope, "list-sockets"), tuple(evidence),
                               manager_caution(init), via="none", scope=scope)
            wanted = {f"{a}:{p}" if ":" not in a else f"[{a}]:{p}" for _, a, p, _ in addrs} | \
                {f"*:{p}" for _, _, p, _ in addrs} | {str(p) for _, _, p, _ in addrs}
            for line in text.splitlines():
                cols = line.split()
                if len(cols) >= 2 and cols[0] in wanted:
                    names.append(cols[1])
                    evidence.append(f"systemctl list-sockets: {safe_text(cols[0])} is "
                                    f"{safe_text(cols[1])}")
        names = list(dict.fromkeys(names))
        if len(names) != 1:
            evidence.append("the socket unit is not known" if not names else
                            "several socket units: " + ", ".join(map(safe_text, names)))
            return Manager("systemd", "", init.pid, join_cmdline(init.cmdline), "unknown",
                           systemctl_text(scope, "list-sockets"), tuple(evidence),
                           manager_caution(init), via="none", scope=scope)
        sock_unit = names[0]
        units: tuple[str, ...] = (sock_unit,)
        try:
            triggers = self._show(scope, sock_unit).get("Triggers", "").split()
        except Unreachable:
            triggers = []
        units = (sock_unit, *triggers)
        stop = systemctl_text(scope, "stop", *units)
        evidence.append(f"stopping {safe_text(sock_unit)} closes the listener; "
                        + (f"{', '.join(map(safe_text, triggers))} serves it" if triggers
                           else "no service is named as its target"))
        return Manager("systemd", sock_unit, init.pid, join_cmdline(init.cmdline), "always",
                       stop, tuple(evidence), manager_caution(init), via="systemd",
                       target=" ".join(units), scope=scope)


def manager_caution(daemon: ProcessInfo) -> str:
    """What signalling a daemon that holds a port for others would do."""
    if daemon_kind(daemon.name, daemon.cmdline) == "init":
        return (f"PID {daemon.pid} is systemd: it holds the port for a socket unit, and "
                "signalling it re-executes or stops every service it runs")
    return (f"PID {daemon.pid} is {safe_text(daemon.name)}: it holds the port for a container, "
            "and signalling it stops every container")


# Acting -----------------------------------------------------------------------------------


def stop_container(path: str, cid: str, grace: float, label: str = "",
                   call: Callable[..., tuple[int, Any]] = docker_call) -> tuple[bool, str]:
    """`docker stop` through the Engine API: SIGTERM, `grace` seconds, then SIGKILL by
    Docker itself, and the restart policy does not apply."""
    t = max(0, round(grace))
    name = safe_text(label or cid[:12])
    try:
        status, data = call(path, "POST", f"/containers/{cid}/stop?t={t}", timeout=grace + 30)
    except Unreachable as exc:
        return False, f"cannot stop container {name}: {safe_text(str(exc))}"
    if status in (204, 304):
        return True, f"docker stopped container {name}" + (
            " (it was not running)" if status == 304 else "")
    said = (data or {}).get("message", "") if isinstance(data, dict) else ""
    return False, f"Docker refused to stop container {name}: HTTP {status} {safe_text(said)}"


def stop_units(scope: str, units: Sequence[str], timeout: float,
               run: Callable[..., str] = run_systemctl) -> tuple[bool, str]:
    """`systemctl stop UNITS` where the units' manager runs (a user's, a container's)."""
    try:
        run(scope, "stop", "--", *units, timeout=timeout)
    except Unreachable as exc:
        return False, f"cannot stop {' '.join(map(safe_text, units))}: {safe_text(str(exc))}"
    return True, f"systemd stopped {' '.join(map(safe_text, units))}"
