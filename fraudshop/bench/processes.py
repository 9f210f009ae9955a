"""CPU time and peak memory of the benchmark's processes, read from /proc (Linux)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    # Fields after the command name, which may itself contain spaces and parentheses.
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM), in MiB."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def group_members(group: int) -> dict[int, str]:
    """pid → command name of every live process in a process group."""
    members = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            if int(text.rsplit(")", 1)[1].split()[2]) == group:
                members[int(stat.parent.name)] = text.split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return members


def job_processes(group: int) -> dict[str, list[int]]:
    """A spark-submit job's processes: its JVM, and its Python driver (with any Python workers)."""
    roles: dict[str, list[int]] = {"job_jvm": [], "python_driver": []}
    for pid, name in group_members(group).items():
        if name == "java":
            roles["job_jvm"].append(pid)
        elif name.startswith("python"):
            roles["python_driver"].append(pid)
    return roles


def cpu_snapshot(processes: Mapping[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each role's processes."""
    return {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in processes.items()}


def cores_used(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Average cores each role kept busy between two snapshots ``seconds`` apart."""
    return {role: round((after[role] - before.get(role, 0.0)) / seconds, 2) for role in after}


def machine() -> dict[str, float | int | None]:
    """The machine's size: CPUs and memory (GiB)."""
    total_kib = next(
        int(line.split()[1]) for line in (PROC / "meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    return {"cpus": os.cpu_count(), "memory_gib": round(total_kib / 1024**2, 1)}
