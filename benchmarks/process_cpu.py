"""CPU seconds a process tree has used, read from ``/proc`` (Linux only; no psutil needed).

A tree is a process and all its descendants: gunicorn's arbiter and its workers, PostgreSQL's postmaster
and its backends. A descendant that exited between two readings would take its CPU time with it, except
that a reaped child's time is added to its parent's ``cutime``/``cstime``: so a tree's total counts, for
each live process, its own time plus that of the children it has reaped. A gunicorn worker recycled by
``max_requests``, or a backend whose client disconnected, is still counted, by its parent.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces), or None if gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    """Every live process's parent, by process ID."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    return parents


def tree_pids(root: int, parents: dict[int, int] | None = None) -> list[int]:
    """``root`` and its live descendants."""
    parents = _parents() if parents is None else parents
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int, parents: dict[int, int] | None = None) -> float:
    """User plus system CPU of the tree rooted at ``root``, reaped children included; 0.0 if it is gone."""
    ticks = 0
    for pid in tree_pids(root, parents):
        fields = _stat_fields(pid)
        if fields is not None:
            # After the command name: state is field 0, utime 11, stime 12, cutime 13, cstime 14.
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / TICKS_PER_SECOND


def cpu_by_tree(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each named tree, all read from one listing of the processes."""
    parents = _parents()
    return {name: tree_cpu_seconds(pid, parents) for name, pid in roots.items()}


def machine_busy_cpu_seconds() -> float:
    """CPU seconds every core of the machine spent busy (all but idle and iowait), from ``/proc/stat``.

    Beside the trees' sum it shows what else ran meanwhile: another program on the machine makes the
    difference large, and the numbers less trustworthy.
    """
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def own_cpu_seconds() -> float:
    """CPU seconds of this process (the benchmark's own client threads), its children excluded."""
    times = os.times()
    return times.user + times.system
