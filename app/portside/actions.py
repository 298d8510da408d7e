"""What a confirmed action targets, and how its outcome is judged: no Textual, no psutil.

The rule that keeps it safe: SIGKILL is only ever offered to processes this action already
sent SIGTERM to and that still hold a targeted socket; any other holder (a worker that
was never signalled, a process that took the port meanwhile) is named and needs a new
confirmation.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, Literal, NamedTuple

from .fmt import manager_title, safe_text, signal_name
from .model import (
    DENIED,
    GONE,
    REFUSED,
    SENT,
    Manager,
    SignalResult,
    Snapshot,
    Socket,
    Target,
    holder_pids,
    listeners_on,
)

GRACE: Final = 5.0
"""Seconds a SIGTERM gets before its outcome is judged (dashboard and `kill --grace`)."""
KILL_GRACE: Final = 2.0
"""Seconds a SIGKILL gets: the kernel ends the process at once; closing takes a moment."""
FIRST_WAIT: Final = 1.0
"""Seconds the processes that restart a holder get to end it, before it is signalled too."""
SETTLE: Final = 3.0
"""Seconds a freed port must stay free to count as freed (a restarter may take it again)."""

if TYPE_CHECKING:
    from .backend import PortHolders

ActionKind = Literal["terminate", "kill", "free"]
Severity = Literal["success", "warning", "error"]

class SocketAddr(NamedTuple):
    """A socket an action targets."""

    proto: str
    address: str
    port: int


def addr_of(sock: Socket) -> SocketAddr:
    """The address an action on this socket targets."""
    return SocketAddr(sock.proto, sock.laddr, sock.lport)


class Request(NamedTuple):
    """A manager asked to stop what it runs: supervisord over XML-RPC, `pm2 stop`, Docker's
    Engine API (`docker stop`) or `systemctl stop`."""

    via: Literal["supervisord", "pm2", "docker", "systemd"]
    name: str  # supervisord's "group:name", the pm2 app, the container id, the units
    url: str  # supervisord's server URL
    home: str  # PM2_HOME
    tool: str  # the pm2 executable, when known
    command: str  # the same, as a command a person would type
    holders: tuple[int, ...]  # the holders it stops
    scope: str = ""  # Docker's API socket; where systemctl runs (Manager.scope)
    label: str = ""  # what is stopped, as a person names it (the container's name)


REQUEST_HOW: Final = {"supervisord": "over XML-RPC", "pm2": "with pm2",
                      "docker": "through Docker's Engine API", "systemd": "with systemctl"}


def request_label(req: Request) -> str:
    """What a request stops, as a person names it: "container web", "ps.service"."""
    if req.via == "docker":
        return f"container {req.label or req.name[:12]}"
    return req.name


class ActionPlan(NamedTuple):
    """What the user is asked to confirm, frozen when the dialog opens."""

    kind: ActionKind
    sig: int
    targets: tuple[Target, ...]  # what confirming signals
    holders: tuple[Target, ...]  # every process holding the targeted sockets
    port: int | None  # success is the targeted sockets gone; None: the targets exiting
    sockets: tuple[SocketAddr, ...]  # the targeted sockets
    socket: str  # the socket the action came from, as shown to the user
    operator: str = ""  # whose processes need no typed PID
    grace: float = GRACE
    # Freeing for good: managers asked to stop their program, and the processes that
    # restart a holder (signalled first; then only the targets still holding are).
    requests: tuple[Request, ...] = ()
    first: tuple[Target, ...] = ()
    cautions: tuple[str, ...] = ()  # "PID X is restarted by Y: signalling it frees ..."
    stop: str = ""  # the command that frees the port for good, when a manager is involved
    # "systemd restarts X after SIGKILL ...": said in any SIGKILL dialog for these targets.
    kill_cautions: tuple[str, ...] = ()

    @property
    def for_good(self) -> bool:
        """True when the plan stops what restarts the holders, not only the holders."""
        return bool(self.requests or self.first)

    @property
    def typed_pid(self) -> int | None:
        """The PID the user must type: the first target that is not the operator's."""
        for t in (*self.first, *self.targets):
            if t.username != self.operator:
                return t.pid
        return None

    @property
    def others(self) -> tuple[Target, ...]:
        """Holders that confirming would neither signal nor have their manager stop."""
        chosen = {t.pid for t in self.targets} | {p for r in self.requests for p in r.holders}
        return tuple(h for h in self.holders if h.pid not in chosen)

    def every_holder(self) -> ActionPlan:
        """The same action on every holder of the socket."""
        return self._replace(targets=self.holders)

    def follow_up(self, targets: tuple[Target, ...]) -> ActionPlan:
        """A new plan (a new confirmation) for holders the first one did not signal."""
        return self._replace(kind="terminate" if self.sig != signal.SIGKILL else "kill",
                             targets=targets, requests=(), first=())

    def escalation(self, targets: tuple[Target, ...], grace: float) -> ActionPlan:
        """SIGKILL for exactly these targets (they got SIGTERM and still hold on)."""
        return self._replace(kind="kill", sig=signal.SIGKILL, targets=targets, grace=grace,
                             requests=(), first=(),
                             cautions=tuple(dict.fromkeys((*self.cautions,
                                                           *self.kill_cautions))))

    @property
    def verb(self) -> str:
        """The confirm button's word."""
        if self.sig == signal.SIGKILL:
            return "SIGKILL"
        return "Free port" if self.kind == "free" else "SIGTERM"

    @property
    def choice(self) -> str:
        """This plan as an alternative to another: what choosing it does."""
        if self.for_good:
            return "Free for good"
        return f"{signal_name(self.sig)} all {len(self.targets)}: PID {pid_list(self.targets)}"

    @property
    def title(self) -> str:
        """The dialog's question (plain text: names are never markup)."""
        if self.kind == "free" and self.requests and not (self.first or self.targets):
            # Only managers asked (a container, a unit, a pm2 app): no process is signalled.
            what = ", ".join(safe_text(request_label(r)) for r in self.requests)
            return f"Free port {self.port} for good: stop {what}?"
        if self.kind == "free" and self.for_good:
            return f"Free port {self.port} for good: stop what restarts it, then its holders?"
        if self.kind == "free":
            return f"Free port {self.port}: SIGTERM every holder ({len(self.targets)})?"
        verb = "Kill (SIGKILL)" if self.sig == signal.SIGKILL else "Terminate (SIGTERM)"
        if len(self.targets) == 1:
            t = self.targets[0]
            return f"{verb} {safe_text(t.name)}, PID {t.pid}?"
        return f"{verb} {len(self.targets)} processes: PID {pid_list(self.targets)}?"


def pid_list(targets: tuple[Target, ...] | list[Target]) -> str:
    """"3100, 3101"."""
    return ", ".join(str(t.pid) for t in targets)


def who(targets: tuple[Target, ...] | list[Target]) -> str:
    """"3100 (gunicorn), 3101 (gunicorn)"."""
    return ", ".join(f"{t.pid} ({safe_text(t.name)})" for t in targets)


class Outcome(NamedTuple):
    """How an action ended, for the dialog and its toast."""

    lines: tuple[str, ...]
    severity: Severity
    escalate: tuple[Target, ...] = ()  # may be offered SIGKILL: sent SIGTERM, still holding
    more: tuple[Target, ...] = ()  # still holding, never signalled: a new confirmation


def _refusals(results: list[SignalResult]) -> list[str]:
    lines = []
    for r in results:
        if r.outcome == DENIED:
            lines.append(f"PID {r.target.pid}: permission denied: it belongs to another user. "
                         "Run portside with sudo to stop it.")
        elif r.outcome == GONE:
            lines.append(f"PID {r.target.pid}: already exited or PID reused: nothing sent.")
        elif r.outcome == REFUSED:
            lines.append(f"PID {r.target.pid}: refused: {r.message}.")
    return lines


def _where(addrs: Iterable[str]) -> str:
    return " and ".join(sorted(set(addrs)))


def origin(pid: int, managers: Mapping[int, Manager], parent: str | None) -> str | None:
    """Where a process came from: "restarted by supervisord (PID 7, program web)" when a
    manager runs it, else "started by PID 12 (sh)" (its parent), else None."""
    m = managers.get(pid)
    if m is not None and m.pid is not None and m.pid != pid and m.kind != "unknown":
        return f"{'started' if m.restarts == 'never' else 'restarted'} by {manager_title(m)}"
    return f"started by {safe_text(parent)}" if parent else None


def newcomers(holders: PortHolders, started_by: Mapping[int, str] | None = None) -> str:
    """Who took a freed port: "PID 4242 (node), restarted by a sh restart loop (PID
    4100)"; the CLI and the dashboard say it alike (started_by: each one's parent)."""
    started_by = started_by or {}
    return "; ".join(
        f"PID {t.pid} ({safe_text(t.name)})"
        + (f", {how}" if (how := origin(t.pid, holders.managers, started_by.get(t.pid)))
           else "")
        for t in holders.targets) or "a process portside cannot see"


def retaken(plan: ActionPlan, results: list[SignalResult], holders: PortHolders,
            after: float, started_by: Mapping[int, str]) -> Outcome:
    """A port freed by the action and taken again within the settle time: who took it and
    who started that; the newcomer is offered nothing (it was never confirmed)."""
    sent = [r.target for r in results if r.outcome == SENT]
    name = signal_name(results[0].signal) if results else "signal"
    head = (f"{name} sent to PID {pid_list(sent)}. Port {holders.port} was freed, then taken "
            f"again {after:.1f}s later by {newcomers(holders, started_by)}: something "
            "restarts it.")
    return Outcome((head, "The newcomer was not signalled.", *_refusals(results)), "warning")


def judge(plan: ActionPlan, results: list[SignalResult], holders: PortHolders | None,
          alive: list[Target]) -> Outcome:
    """The outcome of an action from what was sent and who holds its sockets now."""
    sent = [r.target for r in results if r.outcome == SENT]
    sent_pids = {t.pid for t in sent}
    name = signal_name(results[0].signal) if results else "signal"
    lines = _refusals(results)
    can_kill = plan.sig != signal.SIGKILL and bool(sent)
    if holders is not None:
        targeted = [s for s in holders.sockets if addr_of(s) in plan.sockets]
        untouched = [s for s in holders.sockets if addr_of(s) not in plan.sockets]
        by_pid = {t.pid: t for t in holders.targets}
        also = []
        if untouched:
            pids = sorted({p for s in untouched for p in s.holders})
            owners = who([by_pid[p] for p in pids if p in by_pid]) or "?"
            where = _where(s.laddr for s in untouched)
            also.append(f"Port {holders.port} is also in use on {where} by PID {owners} "
                        "(not touched).")
        if not targeted:
            done = (f"{name} sent to PID {pid_list(sent)}. " if sent else "")
            where = f" on {_where(a.address for a in plan.sockets)}" if untouched else ""
            head = f"{done}Port {holders.port} is free{where}."
            ok = not lines and not also
            return Outcome((head, *lines, *also), "success" if ok else "warning")
        pids = sorted({p for s in targeted for p in s.holders})
        holding = [by_pid[p] for p in pids if p in by_pid]
        unknown = sum(1 for s in targeted if not s.holders)
        escalate = tuple(t for t in holding if t.pid in sent_pids) if can_kill else ()
        more = tuple(t for t in holding if t.pid not in sent_pids)
        held_by = who(holding) + (f"{', ' if holding else ''}{unknown} socket(s) of unknown "
                                  "owner" if unknown else "")
        head = f"Port {holders.port} is still held by PID {held_by}."
        tail = []
        if escalate:
            tail.append(f"PID {pid_list(escalate)} got {name} and still holds it: press k to "
                        "SIGKILL exactly these, or Esc to leave them.")
        if more:
            tail.append(f"PID {pid_list(more)} {'holds' if len(more) == 1 else 'hold'} it too "
                        "and got no signal: they need a confirmation of their own.")
        return Outcome((head, *lines, *tail, *also), "error", escalate, more)
    if not alive:
        exited = [f"PID {pid_list(sent)} exited."] if sent else []
        return Outcome((*exited, *lines), "success" if sent and not lines else "warning")
    escalate = tuple(t for t in alive if t.pid in sent_pids) if can_kill else ()
    tail = ["Press k to SIGKILL it, or Esc to leave it."] if escalate else []
    return Outcome((f"PID {pid_list(alive)} still running after {name}.", *lines, *tail),
                   "error", escalate)


# Freeing a port for good ---------------------------------------------------------------


class ForGood(NamedTuple):
    """What frees a port for good: requests to managers, then signals to the processes
    that restart the holders (the reloader, the loop, npm), then to the holders still
    holding. Frozen when shown, like an ActionPlan."""

    port: int
    requests: tuple[Request, ...]
    managers: tuple[Target, ...]  # signalled first
    holders: tuple[Target, ...]  # then signalled, if they still hold the port
    blocked: tuple[str, ...]  # what cannot be done for good, and why
    managed: tuple[tuple[int, Manager], ...]  # who manages which holder, for the record
    unknown: int = 0  # listening sockets on the port whose holder cannot be seen

    @property
    def empty(self) -> bool:
        """True when there is nothing to do."""
        return not (self.requests or self.managers or self.holders)


def for_good(port: int, snap: Snapshot, socks: Sequence[Socket] | None = None) -> ForGood:
    """The plan that frees a port for good, from who holds it and who manages them
    (`socks`: the port's listening sockets, when the caller has them; else read from the
    snapshot, a pass over every socket)."""
    socks = listeners_on(snap, port) if socks is None else socks
    pids = holder_pids(socks)
    requests: dict[tuple[str, str, str, str, str], list[int]] = {}
    managers: dict[int, Target] = {}
    signalled: list[int] = []
    blocked: list[str] = []
    managed: list[tuple[int, Manager]] = []
    for pid in pids:
        m = snap.manager_at(pid, port)
        if m is not None:
            managed.append((pid, m))
        if m is None or m.via == "holders":
            signalled.append(pid)
        elif m.via in ("supervisord", "pm2", "docker", "systemd"):
            requests.setdefault((m.via, m.target, m.url, m.home, m.scope), []).append(pid)
        elif m.via == "none":
            blocked.append(f"PID {pid}: {safe_text(m.caution or 'its manager cannot be asked')}"
                           f"; stop it yourself: {safe_text(m.stop)}")
        else:  # "signal": the process that restarts it first, then the holder
            if m.pid is not None and m.pid not in pids:
                managers.update((t.pid, t) for t in snap.targets((m.pid,)))
            signalled.append(pid)
    reqs = []
    for (via, name, url, home, scope), held in requests.items():
        m = snap.manager_at(held[0], port)
        assert m is not None
        reqs.append(Request(via, name, url, home, m.tool, m.stop, tuple(held),  # type: ignore[arg-type]
                            scope, m.name))
    return ForGood(port, tuple(reqs), tuple(managers.values()), snap.targets(signalled),
                   tuple(blocked), tuple(managed), sum(1 for s in socks if not s.holders))
