"""Who manages each holder: reloaders, prefork masters, npm scripts, supervisord, pm2, shell
loops and orphans, judged from what Linux shows: the parent chain, command lines,
/proc/PID/stat (process group, session, terminal) and environment markers.

The environment is read once per (pid, start time), and only the markers are kept. An
environment that cannot be read makes a manager "unknown", never "none".
"""

# No `from __future__ import annotations`: a NamedTuple compiles each of its string
# annotations at import, which was ~2 ms of every command's start.

import json
import os
import re
import shlex
import stat
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import NamedTuple

from ..daemons import daemon_kind, manager_refusal, pm2_daemon_home
from ..fmt import join_cmdline, manager_title, safe_text
from ..model import LISTEN, Manager, ProcessInfo, Restarts, Socket
from .procinfo import stat_fields
from .services import Addr, Services, is_docker_proxy

# The environment variables that tell who started a process; every other one is dropped.
_KEYS = frozenset({
    "WERKZEUG_RUN_MAIN", "RUN_MAIN", "SUPERVISOR_ENABLED", "SUPERVISOR_PROCESS_NAME",
    "SUPERVISOR_GROUP_NAME", "SUPERVISOR_SERVER_URL", "pm_id", "name", "PM2_HOME",
    "autorestart", "exec_mode", "npm_lifecycle_event", "npm_config_user_agent", "_",
    "LISTEN_FDNAMES",
})
_KEYS_B = tuple(k.encode() + b"=" for k in _KEYS)
_PM2_ENV = b"pm2_env="  # a pm2 cluster worker's settings, as JSON
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"})
# A shell's reserved words where a command may start (after a line break, ; & | ( { or
# another reserved word): a `while` inside a quoted Python program or an echo is not one.
_WORD = re.compile(r"(?:^|(?<=[\n;&|({])|(?<=\bdo)|(?<=\bthen)|(?<=\belse))[ \t]*"
                   r"(while|until|for|select|do|done)(?=[\s;&|)]|$)")
_LOOP_TEXT = 120  # characters of a loop shown as evidence
_SCRIPTS = frozenset({"npm", "npx", "pnpm", "pnpx", "yarn"})
_SCRIPT_JS = {"npm-cli.js": "npm", "npx-cli.js": "npx", "pnpm.cjs": "pnpm", "pnpm.js": "pnpm",
              "yarn.js": "yarn", "yarn.cjs": "yarn"}
# Masters that start a new worker when one dies.
_PREFORK = frozenset({"gunicorn", "nginx", "php-fpm", "apache2", "httpd", "unicorn", "puma",
                      "hypercorn", "uwsgi"})
_SCRIPT_LIMIT = 64 * 1024  # a shell script file is read for a loop only up to this size
_STDIO = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
CHILDREN_TTL = 5.0  # seconds a pm2 daemon's list of children is reused


class Markers(NamedTuple):
    """What one process's environment and script say about who started it."""

    env: Mapping[str, str] | None  # the markers found; None: the environment is unreadable
    script: str | None = None  # a shell's script file, when it runs one


class Stat(NamedTuple):
    """A process's group, session and terminal (from /proc/PID/stat)."""

    pgid: int
    sid: int
    tty: int


def read_env(pid: int, root: str = "/proc") -> dict[str, str] | None:
    """The marker variables of a process's environment; None when it cannot be read."""
    try:
        with open(f"{root}/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        if item.startswith(_KEYS_B):
            key, _, value = item.decode("utf-8", "replace").partition("=")
            out[key] = value
        elif item.startswith(_PM2_ENV):
            try:
                conf = json.loads(item[len(_PM2_ENV):])
            except ValueError:
                continue
            if isinstance(conf, dict):
                for key in ("pm_id", "name", "exec_mode", "autorestart"):
                    if key in conf and key not in out:
                        out[key] = str(conf[key]).lower() if key == "autorestart" \
                            else str(conf[key])
    if "pm_id" not in out:
        out.pop("name", None)  # "name" is pm2's only with pm_id beside it
    return out


def read_stat(pid: int, root: str = "/proc") -> Stat | None:
    """Process group, session and controlling terminal; None when the process is gone."""
    fields = stat_fields(pid, root) or []
    try:
        return Stat(int(fields[2]), int(fields[3]), int(fields[4]))
    except (IndexError, ValueError):
        return None


def _base(arg: str) -> str:
    return os.path.basename(arg.split(" ", 1)[0]) if arg else ""


def read_theirs(info: ProcessInfo, path: str, limit: int = _SCRIPT_LIMIT,
                root: str = "/proc") -> str | None:
    """A file a process names (its script, its configuration), as that process sees it:
    relative to its working directory, /dev/fd/N its own descriptor (both read through
    /proc/PID). Only a regular file is read: a pipe (process substitution) or a terminal
    could block, or take what the process was meant to read."""
    for mine in ("/dev/fd/", "/proc/self/fd/"):
        if path.startswith(mine):
            path = f"{root}/{info.pid}/fd/{path[len(mine):]}"
    if path in _STDIO:
        path = f"{root}/{info.pid}/fd/{_STDIO[path]}"
    if not os.path.isabs(path):
        path = f"{root}/{info.pid}/cwd/{path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _script_text(info: ProcessInfo, root: str = "/proc") -> str | None:
    """A shell's script file (sh FILE), when it is a small regular file we may read."""
    argv = info.cmdline or ()
    if len(argv) < 2 or _base(argv[0]) not in _SHELLS or argv[1].startswith("-"):
        return None
    return read_theirs(info, argv[1], root=root)


def _cmd(info: ProcessInfo) -> str:
    return join_cmdline(info.cmdline) or info.name


def shell_loops(text: str) -> list[tuple[str, str, str]]:
    """Each `while`/`until` loop in a shell's script, as (word, condition, body), nested loops
    too. Reserved words are only taken where a command may start; quoting is not parsed,
    so this is a judgement, not a shell."""
    words = [(m.group(1), m.start(1), m.end(1)) for m in _WORD.finditer(text)]
    loops = []
    for i, (word, _start, end) in enumerate(words):
        if word not in ("while", "until"):
            continue
        depth, do_at = 0, None
        for other, start, after in words[i + 1:]:
            if other == "do":
                depth += 1
                if do_at is None:
                    do_at = (start, after)
            elif other == "done":
                depth -= 1
                if depth == 0 and do_at is not None:
                    loops.append((word, text[end:do_at[0]].strip(" \t\n;"),
                                  text[do_at[1]:start].strip(" \t\n;")))
                    break
                if depth < 0:
                    break
    return loops


def _programs(info: ProcessInfo) -> set[str]:
    """The names a script would start this process by: its program, the script an
    interpreter runs (`node server.js`), or the tool (`npm`, run by node as npm-cli.js)."""
    argv = info.cmdline or ()
    names = {_base(argv[0])} if argv else set()
    if len(argv) > 1 and not argv[1].startswith("-"):
        names.add(_base(argv[1]))
    if (tool := _script_tool(info)) is not None:
        names.add(tool)
    return {n for n in names if n}


# Words that start a command without being its program.
_PREFIXES = frozenset({"exec", "nohup", "env", "command", "setsid", "time", "!", "nice", "{",
                       "}"})
_COMMANDS = re.compile(r"[;&|\n()`]|(?<![\w.-])(?:do|then|else|elif|while|until)(?![\w.-])")
_REDIRECT = re.compile(r"^\d*(?:[<>]|&>)")


def _literal(word: str) -> bool:
    return not any(c in word for c in "$`*?[")


def _runs_it(command: str, child: ProcessInfo, names: Collection[str]) -> bool:
    """True when one shell command starts this process: its program is one of the names
    (or an expansion, `"$PY" app.py`), and its first argument, when literal, is one of
    the process's (`timeout 1 curl` did not start `timeout 5400 bash run`)."""
    try:
        words = shlex.split(command)
    except ValueError:  # a quote opened in another command of the split
        words = command.split()
    words = [w for i, w in enumerate(words)
             if not _REDIRECT.match(w) and not (i and words[i - 1] in (">", ">>", "<"))]
    while words and (words[0] in _PREFIXES or re.match(r"^\w+=", words[0])):
        words = words[1:]
    if not words:
        return False
    expanded = not _literal(words[0])
    if not expanded and _base(words[0]) not in names:
        return False
    args = (child.cmdline or ())[1:]
    if len(words) < 2 or not _literal(words[1]):
        return not expanded
    return any(words[1] == a or _base(words[1]) == _base(a) for a in args)


def _loop_of(info: ProcessInfo, marks: Markers, below: ProcessInfo | None) -> str | None:
    """The restart loop in which a shell runs the process below it ("while true; do
    server; done", "until server; do sleep 1; done"), or None. A loop elsewhere in the
    script (one that waits for a database, reads lines, or is another language's, or
    runs another command) restarts nothing."""
    argv = info.cmdline or ()
    if below is None or not argv or _base(argv[0]).lstrip("-") not in _SHELLS:
        return None
    if "-c" in argv[1:]:
        i = argv.index("-c", 1)
        text = argv[i + 1] if i + 1 < len(argv) else ""
    else:
        text = marks.script or ""
    names = _programs(below)
    for word, cond, body in shell_loops(text):
        if cond.startswith("read") or not any(
                _runs_it(c, below, names) for c in _COMMANDS.split(f"{cond}\n{body}")):
            continue
        return f"{word} {cond}; do {body}; done"
    return None


def _script_tool(info: ProcessInfo) -> str | None:
    """npm, npx, pnpm or yarn, when this process is one."""
    argv = info.cmdline or ()
    if not argv:
        return None
    first = _base(argv[0])
    if first in _SCRIPTS:
        return first
    if first.startswith("node") and len(argv) > 1:
        return _SCRIPT_JS.get(os.path.basename(argv[1]))
    return None


def _has(argv: Collection[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in argv for f in flags)


def _runs(argv: tuple[str, ...], program: str) -> bool:
    """True when the command line runs this program: `program ...`, `python
    .../program ...` or `python -m program ...`."""
    return any(_base(a) == program for a in argv[:2]) or (
        len(argv) > 2 and argv[1] == "-m" and argv[2] == program)


def _uvicorn(info: ProcessInfo) -> str | None:
    """"reload" or "workers" for a uvicorn supervisor, else None."""
    argv = info.cmdline or ()
    if not _runs(argv, "uvicorn"):
        return None
    if _has(argv, "--reload"):
        return "reload"
    if _has(argv, "--workers"):
        return "workers"
    return None


class _Chain(NamedTuple):
    """A holder and its ancestors, nearest first, with their markers."""

    procs: list[ProcessInfo]
    marks: list[Markers]


class ManagerIndex:
    """Judges who manages each holder; keeps each process's markers per (pid, start
    time) and forgets processes no longer seen."""

    def __init__(self, root: str = "/proc", services: Services | None = None) -> None:
        self.root = root
        # (holder, port) -> manager, for a daemon holding ports for several (last judge()).
        self.port_managers: dict[tuple[int, int], Manager] = {}
        self.services = services or Services(root)
        self._marks: dict[tuple[int, float], Markers] = {}
        self._children: dict[tuple[int, float], tuple[float, list[Markers]]] = {}

    def markers(self, info: ProcessInfo) -> Markers:
        """The markers of one process, read the first time it is seen."""
        ident = (info.pid, info.create_time)
        found = self._marks.get(ident)
        if found is None:
            found = Markers(read_env(info.pid, self.root), _script_text(info, self.root))
            self._marks[ident] = found
        return found

    def judge(self, holders: Mapping[int, Collection[int]],
              procs: Mapping[int, ProcessInfo], socks: Iterable[Socket] = ()
              ) -> dict[int, Manager]:
        """holder PID -> its manager, for every holder that has (or may have) one.

        `holders` maps each holder to every PID holding a socket it holds; `socks` (the
        sample's sockets) tell which ports a daemon (dockerd, systemd) holds.
        """
        out: dict[int, Manager] = {}
        self.port_managers = {}
        seen: set[tuple[int, float]] = set()
        listening: dict[int, list[Addr]] | None = None

        def addrs(pid: int) -> list[Addr]:
            # A pass over the sample, made once and only when a daemon holds a socket.
            nonlocal listening
            if listening is None:
                listening = {}
                for s in socks:
                    if s.holders and (s.state == LISTEN or s.proto == "udp"):
                        for p in s.holders:
                            listening.setdefault(p, []).append(
                                (s.proto, s.laddr, s.lport, s.holders))
            return listening.get(pid, [])

        later: list[tuple[int, _Chain]] = []
        for pid in holders:
            info = procs.get(pid)
            if info is None:
                continue
            chain = self._chain(info, procs)
            seen.update((p.pid, p.create_time) for p in chain.procs)
            decided, found = self._near(chain, holders[pid], procs, addrs)
            if not decided:
                later.append((pid, chain))
            elif found is not None:
                out[pid] = found
        # Nothing nearer restarts these: the container or unit they run in, if any (a
        # supervisord in a unit stops its own program, not the whole unit), with one
        # `systemctl show` for all their units.
        self.services.prefetch(chain.procs for _, chain in later)
        for pid, chain in later:
            found = self.services.runs(chain.procs) or self._far(chain)
            if found is not None:
                out[pid] = found
        for ident in set(self._marks) - seen:
            del self._marks[ident]
        return out

    def _chain(self, info: ProcessInfo, procs: Mapping[int, ProcessInfo]) -> _Chain:
        chain = [info]
        for _ in range(64):  # the bound guards against a cycle in made-up data
            parent = procs.get(chain[-1].ppid) if chain[-1].ppid else None
            if parent is None or parent.pid <= 1:
                break
            chain.append(parent)
        return _Chain(chain, [self.markers(p) for p in chain])

    # The rules -------------------------------------------------------------------------

    def _near(self, chain: _Chain, together: Collection[int],
              procs: Mapping[int, ProcessInfo], addrs: Callable[[int], list[Addr]]
              ) -> tuple[bool, Manager | None]:
        """(decided, manager) from the holder and its parent chain; undecided when no
        manager is near (the container or unit it runs in is asked next)."""
        holder, env = chain.procs[0], chain.marks[0].env
        if pm2_daemon_home(holder.cmdline, holder.name) is not None:
            return True, self._pm2_daemon(holder, procs)
        if daemon_kind(holder.name, holder.cmdline) is not None or is_docker_proxy(holder):
            # dockerd, docker-proxy or systemd holds the port for a container or a unit.
            return True, self._daemon(holder, procs, addrs(holder.pid))
        if env is not None and "pm_id" in env:
            return True, _pm2_app(chain)
        if env is not None and env.get("SUPERVISOR_ENABLED"):
            return True, _supervised(chain)
        found = _outermost(chain, together, procs, self)
        return found is not None, found

    def _far(self, chain: _Chain) -> Manager | None:
        """An orphan, or a manager that cannot be known; None for nobody."""
        holder, env = chain.procs[0], chain.marks[0].env
        orphan = self._orphan(chain)
        if orphan is not None:
            return orphan
        if env is None:
            return Manager(
                "unknown", "", None, "", "unknown", "",
                (f"the environment of PID {holder.pid} cannot be read (another user's "
                 "process): run with sudo to see who manages it",
                 "its parent chain shows no manager"), via="holders")
        return None

    def _daemon(self, holder: ProcessInfo, procs: Mapping[int, ProcessInfo],
                addrs: list[Addr]) -> Manager | None:
        """A daemon's manager: the container or unit, when every port it holds is for the
        same one; else one that names none (each port's is in port_managers)."""
        per_port = self.services.daemon(holder, procs, addrs, self._env_of(procs))
        if not per_port:
            return None
        kinds = {(m.kind, m.target, m.via, m.name) for m in per_port.values()}
        first = next(iter(per_port.values()))
        if len(kinds) == 1:
            return first
        self.port_managers.update(((holder.pid, p), m) for p, m in per_port.items())
        what = "containers" if first.kind == "docker" else "units"
        return Manager(first.kind, f"{len(per_port)} {what}", holder.pid, _cmd(holder),
                       "unknown", "", tuple(f"port {p}: {manager_title(m)}"
                                            for p, m in per_port.items()),
                       first.caution, via="none")

    def _env_of(self, procs: Mapping[int, ProcessInfo]
                ) -> Callable[[int], Mapping[str, str] | None]:
        def env(pid: int) -> Mapping[str, str] | None:
            info = procs.get(pid)
            return self.markers(info).env if info is not None else read_env(pid, self.root)
        return env

    def _pm2_daemon(self, daemon: ProcessInfo, procs: Mapping[int, ProcessInfo]) -> Manager:
        """The pm2 daemon holds the port itself (cluster mode): name the cluster app."""
        home = pm2_daemon_home(daemon.cmdline, daemon.name) or ""
        apps = sorted({m.env["name"] for m in self._children_marks(daemon)
                       if m.env and m.env.get("exec_mode") == "cluster_mode"
                       and m.env.get("name")})
        env = f"PM2_HOME={shlex.quote(home)} " if home else ""
        name = apps[0] if len(apps) == 1 else ""
        evidence = [f"PID {daemon.pid} is the pm2 daemon ({safe_text(_cmd(daemon))})",
                    "in cluster mode the daemon holds the listening socket for its workers"]
        if len(apps) == 1:
            evidence.append(f"its cluster workers belong to the app {safe_text(name)!r}")
        elif apps:
            evidence.append("its cluster apps: " + ", ".join(map(safe_text, apps)))
        stop = f"{env}pm2 stop {shlex.quote(name) if name else 'NAME'}"
        return Manager("pm2", name, daemon.pid, _cmd(daemon), "always", stop, tuple(evidence),
                       manager_refusal(daemon.pid, daemon.name, daemon.cmdline),
                       via="pm2" if name else "none", target=name, home=home,
                       tool=self._pm2_tool(daemon))

    def _children_marks(self, parent: ProcessInfo) -> list[Markers]:
        ident = (parent.pid, parent.create_time)
        now = time.monotonic()
        cached = self._children.get(ident)
        if cached is None or now - cached[0] > CHILDREN_TTL:
            cached = (now, [Markers(read_env(pid, self.root))
                            for pid in _children(parent.pid, self.root)])
            self._children = {ident: cached}
        return cached[1]

    def _pm2_tool(self, daemon: ProcessInfo) -> str:
        return _pm2_exe(self.markers(daemon).env or {})

    def _orphan(self, chain: _Chain) -> Manager | None:
        """A holder whose starter is gone: evidence beyond "its parent is PID 1" (a setsid
        start looks the same)."""
        holder, env = chain.procs[0], chain.marks[0].env or {}
        parent = chain.procs[1] if len(chain.procs) > 1 else None
        # Adopted by init, or by a subreaper that takes orphans in its place (a desktop's
        # `systemd --user`); a parent that cannot be read at all counts too.
        if parent is not None and holder.ppid not in (None, 0, 1) and parent.name != "systemd":
            return None
        evidence = []
        reloader = _reloaded(chain.marks[0])
        if reloader is not None:
            marker = "WERKZEUG_RUN_MAIN" if reloader == "werkzeug" else "RUN_MAIN"
            evidence.append(f"it is a {reloader.capitalize()} reloader's child ({marker}=true), "
                            "and no reloader is above it any more")
        if env.get("npm_lifecycle_event"):
            evidence.append(f"it was started by a package script "
                            f"(npm_lifecycle_event={safe_text(env['npm_lifecycle_event'])}), "
                            "and no npm is above it any more")
        if "--multiprocessing-fork" in (holder.cmdline or ()):
            evidence.append("it is a multiprocessing worker, and the process that started it "
                            "is gone")
        group = read_stat(holder.pid, self.root)
        if group is not None and group.pgid != holder.pid and \
                (group.pgid != group.sid or group.tty) and \
                not os.path.exists(f"{self.root}/{group.pgid}"):
            evidence.append(f"its process group {group.pgid} has lost its leader: the job that "
                            "started it has ended")
        if not evidence:
            return None
        adopter = safe_text(parent.name) if parent is not None else "init"
        evidence.append(f"its parent is PID {holder.ppid or 1} ({adopter}), which adopted it")
        return Manager("orphan", holder.name, None, "", "never", f"kill {holder.pid}",
                       tuple(evidence), via="holders")


def _children(pid: int, root: str) -> list[int]:
    """The PIDs whose parent is pid (a scan of /proc)."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit() and _ppid(int(name), root) == pid]


def _ppid(pid: int, root: str) -> int | None:
    fields = stat_fields(pid, root) or []
    return int(fields[1]) if len(fields) > 1 else None


def _pm2_exe(env: Mapping[str, str]) -> str:
    """The pm2 executable a pm2 process was started with ($_ of its environment)."""
    tool = env.get("_", "")
    return tool if os.path.basename(tool).startswith("pm2") else ""


def _pm2_app(chain: _Chain) -> Manager:
    """An app pm2 runs (fork mode, or a cluster worker)."""
    holder, env = chain.procs[0], chain.marks[0].env or {}
    name, home = env.get("name", ""), env.get("PM2_HOME", "")
    daemon = next((p for p in chain.procs[1:] if pm2_daemon_home(p.cmdline, p.name) is not None),
                  None)
    if not home and daemon is not None:
        home = pm2_daemon_home(daemon.cmdline, daemon.name) or ""
    restarts: Restarts = "never" if env.get("autorestart") == "false" else "always"
    prefix = f"PM2_HOME={shlex.quote(home)} " if home else ""
    evidence = [f"PID {holder.pid} has pm2's markers (pm_id={safe_text(env.get('pm_id', ''))}, "
                f"name={safe_text(name)})"]
    if daemon is not None:
        evidence.append(f"its parent PID {daemon.pid} is the pm2 daemon")
    evidence.append(f"autorestart={safe_text(env.get('autorestart', 'true'))}")
    caution = caution_for(holder.pid, f"pm2 (PID {daemon.pid})" if daemon else "pm2", "pm2",
                          restarts)
    return Manager("pm2", name, daemon.pid if daemon else None,
                   _cmd(daemon) if daemon else "", restarts,
                   f"{prefix}pm2 stop {shlex.quote(name)}", tuple(evidence), caution,
                   via="pm2", target=name, home=home, tool=_pm2_exe(env))


def _supervisord_conf(info: ProcessInfo) -> str | None:
    """supervisord's configuration file, as it named it (-c), else the usual places."""
    argv = info.cmdline or ()
    for i, arg in enumerate(argv):
        if arg in ("-c", "--configuration") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--configuration="):
            return arg.partition("=")[2]
    for path in ("/etc/supervisor/supervisord.conf", "/etc/supervisord.conf"):
        if os.path.exists(path):
            return path
    return None


def _autorestart(daemon: ProcessInfo, program: str) -> str | None:
    """A supervisord program's autorestart setting, from supervisord's configuration."""
    conf = _supervisord_conf(daemon)
    text = read_theirs(daemon, conf, 1 << 20) if conf is not None else None
    if text is None:
        return None
    import configparser  # only for a supervisord's config: off the listing's path

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    section = f"program:{program}"
    if not parser.has_section(section):
        return None
    return parser.get(section, "autorestart", fallback="unexpected").strip().lower()


def _is_supervisord(info: ProcessInfo) -> bool:
    argv = info.cmdline or ()
    return _runs(argv, "supervisord") or _runs(argv, "supervisor.supervisord")


def _supervised(chain: _Chain) -> Manager:
    """A program supervisord runs."""
    holder, env = chain.procs[0], chain.marks[0].env or {}
    name = env.get("SUPERVISOR_PROCESS_NAME", "")
    group = env.get("SUPERVISOR_GROUP_NAME", name)
    target = name if group == name else f"{group}:{name}"
    url = env.get("SUPERVISOR_SERVER_URL", "")
    daemon = next((p for p in chain.procs[1:] if _is_supervisord(p)), None)
    setting = _autorestart(daemon, group) if daemon else None
    restarts: Restarts = "never" if setting == "false" else "always"
    evidence = [f"PID {holder.pid} has supervisord's markers (SUPERVISOR_PROCESS_NAME="
                f"{safe_text(name)}, SUPERVISOR_SERVER_URL={safe_text(url)})"]
    if daemon is not None:
        evidence.append(f"supervisord is PID {daemon.pid}")
    evidence.append(f"autorestart={setting}" if setting else
                    "autorestart is supervisord's default (unexpected): an exit by a signal "
                    "is unexpected, so it restarts")
    caution = caution_for(holder.pid, f"supervisord (PID {daemon.pid})" if daemon else
                          "supervisord", "supervisord", restarts)
    stop = f"supervisorctl -s {shlex.quote(url)} stop {shlex.quote(target)}" if url else \
        f"supervisorctl stop {shlex.quote(target)}"
    return Manager("supervisord", target, daemon.pid if daemon else None,
                   _cmd(daemon) if daemon else "", restarts, stop, tuple(evidence), caution,
                   via="supervisord" if url else "none", target=target, url=url)


def _outermost(chain: _Chain, together: Collection[int],
               procs: Mapping[int, ProcessInfo], index: ManagerIndex) -> Manager | None:
    """The outermost restarter above the holder (stopping it stops all below), with the
    restart behaviour of whatever restarts the holder first."""
    holder = chain.procs[0]
    found: list[Manager] = []
    for i, (info, marks) in enumerate(zip(chain.procs, chain.marks, strict=True)):
        below = chain.procs[i - 1] if i else None
        one = _member(info, marks, below, chain.marks[i - 1] if i else None, holder,
                      together, procs, i, index)
        if one is not None:
            found.append(one)
    if not found:
        return None
    outer = found[-1]
    if outer.kind == "script":
        inner = next((m for m in found[:-1] if m.restarts != "never"), None)
        if inner is not None:
            outer = outer._replace(
                restarts=inner.restarts,
                evidence=(*outer.evidence, f"below it, {inner.kind} PID {inner.pid} restarts "
                          f"the server ({inner.restarts})"))
    if holder.pid != outer.pid and outer.caution is None:
        label = _label(outer)
        if outer.pid in together:
            # It holds the socket too: signalling the child alone frees nothing.
            again = {"always": ", and starts a new one", "on file change":
                     ", and starts a new one on the next file change"}.get(outer.restarts, "")
            caution: str | None = (
                f"PID {holder.pid} serves under {label} PID {outer.pid}, which holds the "
                f"port too{again}: signalling PID {holder.pid} alone does not free it")
        else:
            caution = caution_for(holder.pid, f"{label} PID {outer.pid}", label, outer.restarts)
        outer = outer._replace(caution=caution)
    return outer


def caution_for(pid: int, who: str, short: str, restarts: Restarts) -> str | None:
    """"PID X is restarted by Y: signalling it frees the port only until Y restarts it"
    (None when Y does not restart it)."""
    if restarts == "always":
        return (f"PID {pid} is restarted by {who}: signalling it frees the port only until "
                f"{short} restarts it")
    if restarts == "on file change":
        return (f"PID {pid} is restarted by {who}: signalling it frees the port only until "
                f"the next file change, when {short} starts it again")
    return None


def _label(m: Manager) -> str:
    return {"reloader": "the reloader", "prefork": "the master", "loop": "the shell loop",
            "script": f"{m.name.split(' ')[0] or 'the script'}"}.get(m.kind, m.kind)


def _member(info: ProcessInfo, marks: Markers, below: ProcessInfo | None,
            below_marks: Markers | None, holder: ProcessInfo, together: Collection[int],
            procs: Mapping[int, ProcessInfo], depth: int, index: ManagerIndex
            ) -> Manager | None:
    """What this member of the holder's chain is, if it manages the holder."""
    argv = info.cmdline or ()
    if depth and daemon_kind(info.name, argv) is not None:
        return None  # systemd or dockerd above: the unit or container, judged apart
    cmd = _cmd(info)
    holds = info.pid in together
    kill_both = f"kill {info.pid} {holder.pid}" if info.pid != holder.pid else \
        f"kill {info.pid}"
    if depth and _is_supervisord(info):
        # Seen from its command line alone (the holder's environment, which names the
        # program, is unreadable): the program's name is not known.
        return Manager("supervisord", "", info.pid, cmd, "always",
                       "supervisorctl status (to name the program), then supervisorctl stop "
                       "NAME", (f"PID {info.pid} is supervisord, above the holder",
                                "the holder's environment, which names the program, cannot "
                                "be read"), via="none")
    loop = _loop_of(info, marks, below) if depth else None
    if loop is not None:
        return Manager("loop", _base(argv[0]), info.pid, cmd, "always", kill_both,
                       (f"PID {info.pid} is a shell running a restart loop: "
                        f"{safe_text(loop[:_LOOP_TEXT])}",))
    tool = _script_tool(info) if depth else None
    if tool is not None:
        event = (below_marks.env or {}).get("npm_lifecycle_event") if below_marks else None
        words = [a for a in argv[1:] if not a.startswith("-")]
        if _base(argv[0]).startswith("node"):
            words = words[1:]
        name = f"{tool} {' '.join(words[:2])}".strip() if not event else \
            f"{tool} run {event}" if tool != "npx" else f"npx {' '.join(words[:1])}".strip()
        ev = [f"PID {info.pid} is {tool} ({safe_text(cmd)})"]
        if event:
            ev.append(f"npm_lifecycle_event={safe_text(event)}")
        ev.append(f"signal {tool} and the server together: {tool} alone leaves the server "
                  "running")
        return Manager("script", name, info.pid, cmd, "never", kill_both, tuple(ev))
    uv = _uvicorn(info)
    if uv == "reload":
        return Manager("reloader", "uvicorn --reload", info.pid, cmd, "on file change",
                       f"kill {info.pid}",
                       (f"PID {info.pid} is uvicorn's reloader (--reload): it starts a new "
                        "worker on the next file change, and ends its worker when signalled",
                        *(("it holds the listening socket itself",) if holds else ())))
    if uv == "workers":
        return Manager("prefork", "uvicorn --workers", info.pid, cmd, "always",
                       f"kill {info.pid}",
                       (f"PID {info.pid} is uvicorn's process manager (--workers): it "
                        "starts a new worker when one dies",))
    # A reloader runs its serving child with its own arguments (the interpreter may be
    # named otherwise: `python3 app.py` runs `/usr/bin/python3 app.py`); a parent with
    # other ones (a subreaper that adopted the child) is not it.
    reloader = _reloaded(below_marks) if depth and below is not None and \
        _same_args(below, info) else None
    if reloader is not None and below is not None:
        marker = "WERKZEUG_RUN_MAIN" if reloader == "werkzeug" else "RUN_MAIN"
        return Manager("reloader", reloader, info.pid, cmd, "on file change",
                       f"kill {info.pid}",
                       (f"PID {below.pid} has {marker}=true: it is the serving child of "
                        f"{reloader}'s reloader, PID {info.pid}",
                        "the reloader starts it again on the next file change, and ends it "
                        "when signalled"))
    if depth == 0:
        kids = [p for p in together if (c := procs.get(p)) is not None and c.ppid == info.pid]
        same = [k for k in kids if _same_args(procs[k], info)]
        reloader = _reloaded_child(same, procs, index) if same else None
        if reloader is not None:
            return Manager("reloader", reloader, info.pid, cmd, "on file change",
                           f"kill {info.pid}",
                           (f"PID {info.pid} is {reloader}'s reloader: its child serves the "
                            "port, and it holds the socket too",))
        if kids:
            return _prefork(info, kids)
        return None
    if holds:
        return _prefork(info, [holder.pid])
    if _has(argv, "--reload") or any(_base(a) == "nodemon" for a in argv[:2]):
        return Manager("reloader", _base(argv[1] if _base(argv[0]).startswith(("node", "python"))
                                        and len(argv) > 1 else argv[0]),
                       info.pid, cmd, "on file change", f"kill {info.pid}",
                       (f"PID {info.pid} runs with a reloader ({safe_text(cmd[:80])})",))
    return None


def _same_args(a: ProcessInfo, b: ProcessInfo) -> bool:
    """True when two processes run with the same arguments after the program's name."""
    return a.cmdline is not None and b.cmdline is not None and a.cmdline[1:] == b.cmdline[1:]


def _reloaded(marks: Markers | None) -> str | None:
    """"werkzeug" or "django" when these are the markers of a reloader's serving child."""
    env = (marks.env if marks is not None else None) or {}
    if env.get("WERKZEUG_RUN_MAIN") == "true":
        return "werkzeug"
    if env.get("RUN_MAIN") == "true":
        return "django"
    return None


def _reloaded_child(kids: Iterable[int], procs: Mapping[int, ProcessInfo],
                    index: ManagerIndex) -> str | None:
    """The reloader whose serving child is among these holders (werkzeug, django)."""
    for pid in kids:
        found = _reloaded(index.markers(procs[pid]))
        if found:
            return found
    return None


def _prefork(master: ProcessInfo, workers: Collection[int]) -> Manager:
    argv = master.cmdline or ()
    name = next((p for p in _PREFORK if any(_base(a).startswith(p) or a.startswith(p + ":")
                                            for a in argv[:2])), "") or master.name
    known = name in _PREFORK
    return Manager("prefork", name, master.pid, _cmd(master),
                   "always" if known else "unknown", f"kill {master.pid}",
                   (f"PID {master.pid} holds the socket and its children "
                    f"(PID {', '.join(map(str, sorted(workers)))}) hold it too",
                    f"{name} starts a new worker when one dies" if known else
                    "whether it starts a new worker when one dies is not known"))
