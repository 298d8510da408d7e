"""Processes that hold sockets for the programs they run (the pm2 daemon, dockerd, systemd):
never signalled.

Light on purpose: the one-shot commands and the sampler import it.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence

from .fmt import safe_text

__all__ = ["daemon_kind", "manager_refusal", "pm2_daemon_home"]

# The title pm2's daemon gives itself; the home may be cut short (the title only gets the
# space of the original argv), so its closing parenthesis is optional.
_PM2_DAEMON = re.compile(r"PM2 v[\w.-]+: God Daemon(?: \((?P<home>[^)]*)\)?)?")


def pm2_daemon_home(cmdline: Sequence[str] | None, name: str) -> str | None:
    """The PM2_HOME of a pm2 daemon, from its title ("" when cut off); None when this is
    not a pm2 daemon."""
    title = (cmdline[0] if cmdline else "") or name
    found = _PM2_DAEMON.match(title.strip())
    return None if found is None else found.group("home") or ""


# Container engines and init systems: each runs (and may hold ports for) many others.
_ENGINES = {"dockerd": "Docker's daemon", "containerd": "containerd, Docker's runtime",
            "podman": "podman", "conmon": "podman's container monitor"}
_INITS = frozenset({"systemd", "init"})


def _names(name: str, cmdline: Sequence[str] | None) -> set[str]:
    """A process's name and its program's (argv[0]'s base name)."""
    first = os.path.basename(cmdline[0].split(" ", 1)[0]) if cmdline and cmdline[0] else ""
    return {name, first}


def daemon_kind(name: str, cmdline: Sequence[str] | None) -> str | None:
    """"engine", "shim" or "init" when this process is a container engine, a container's
    shim or an init system (systemd), else None."""
    names = _names(name, cmdline)
    if names & _ENGINES.keys():
        return "engine"
    if any(n.startswith("containerd-shim") for n in names):
        return "shim"
    if names & _INITS:
        return "init"
    return None


def manager_refusal(pid: int, name: str, cmdline: Sequence[str] | None) -> str | None:
    """Why this process, a manager that holds sockets for the programs it runs, must not
    be signalled (stopping it stops all of them), or None."""
    kind = daemon_kind(name, cmdline)
    if kind == "engine":
        what = next(v for k, v in _ENGINES.items() if k in _names(name, cmdline))
        return (f"PID {pid} is {what}: it runs every container (and may hold their ports), "
                "and stopping it stops all of them; stop the container instead: docker stop "
                "NAME (portside free :PORT finds it)")
    if kind == "shim":
        return (f"PID {pid} is a container's shim (containerd-shim): signalling it can leave "
                "the container running unmanaged; stop the container instead: docker stop NAME")
    if kind == "init":
        return (f"PID {pid} is an init system ({safe_text(name)}): it runs every service (and "
                "holds the listeners of socket-activated ones); stop the unit instead: "
                "systemctl stop UNIT (portside free :PORT finds it)")
    home = pm2_daemon_home(cmdline, name)
    if home is not None:
        env = f"PM2_HOME={shlex.quote(home)} " if home else ""
        return (f"PID {pid} is the pm2 daemon ({safe_text(home or 'pm2')}): it holds the port "
                "for its cluster apps, and stopping it stops every pm2 app; stop the app "
                f"instead: {safe_text(env)}pm2 stop NAME (pm2 list names it)")
    return None
