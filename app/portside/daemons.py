"""Processes that hold sockets for the programs they run (the pm2 daemon): never signalled.

Light on purpose: the one-shot commands and the sampler import it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from .fmt import safe_text

__all__ = ["manager_refusal", "pm2_daemon_home"]

# The title pm2's daemon gives itself; the home may be cut short (the title only gets the
# space of the original argv), so its closing parenthesis is optional.
_PM2_DAEMON = re.compile(r"PM2 v[\w.-]+: God Daemon(?: \((?P<home>[^)]*)\)?)?")


def pm2_daemon_home(cmdline: Sequence[str] | None, name: str) -> str | None:
    """The PM2_HOME of a pm2 daemon, from its title ("" when cut off); None when this is
    not a pm2 daemon."""
    title = (cmdline[0] if cmdline else "") or name
    found = _PM2_DAEMON.match(title.strip())
    return None if found is None else found.group("home") or ""


def manager_refusal(pid: int, name: str, cmdline: Sequence[str] | None) -> str | None:
    """Why this process, a manager that holds sockets for the programs it runs, must not
    be signalled (stopping it stops all of them), or None."""
    home = pm2_daemon_home(cmdline, name)
    if home is not None:
        env = f"PM2_HOME={shlex.quote(home)} " if home else ""
        return (f"PID {pid} is the pm2 daemon ({safe_text(home or 'pm2')}): it holds the port "
                "for its cluster apps, and stopping it stops every pm2 app; stop the app "
                f"instead: {safe_text(env)}pm2 stop NAME (pm2 list names it)")
    return None
