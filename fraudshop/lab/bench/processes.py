"""CPU time and peak memory of the benchmark's processes (psutil; peak memory is Linux's VmHWM)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import psutil

from fraudshop.jobs.launcher import job_processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (Linux's VmHWM), in MiB; None if it is gone."""
    try:
        # psutil has no peak RSS on Linux (only Windows' peak_wset): Linux's high-water mark,
        # VmHWM, is read from the process's status file.
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def job_roles(group: int) -> dict[str, list[int]]:
    """A spark-submit job's processes: its JVM, and its Python driver (with any Python workers)."""
    roles: dict[str, list[int]] = {"job_jvm": [], "python_driver": []}
    for process in job_processes(group):
        try:
            name = process.name()
        except psutil.Error:
            continue
        if name == "java":
            roles["job_jvm"].append(process.pid)
        elif name.startswith("python"):
            roles["python_driver"].append(process.pid)
    return roles


def cpu_snapshot(processes: Mapping[str, list[int]]) -> dict[int, float]:
    """CPU seconds used so far by each of the roles' processes, by pid."""
    return {pid: cpu_seconds(pid) for pids in processes.values() for pid in pids}


def cores_used(before: Mapping[int, float], processes: Mapping[str, list[int]], seconds: float) -> dict[str, float]:
    """Average cores each role's ``processes`` kept busy since the ``before`` snapshot, ``seconds``
    ago; a process started since counts from zero, one that ended since is not counted."""
    return {
        role: round(sum(cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids) / seconds, 2)
        for role, pids in processes.items()
    }


def machine() -> dict[str, float | int]:
    """The machine's size: the CPUs this process may use (what ``nproc`` says) and memory (GiB)."""
    return {"nproc": len(os.sched_getaffinity(0)), "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1)}
