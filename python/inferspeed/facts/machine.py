"""Facts about the machine read around a run: CPU time other processes used (/proc/stat) and
the cpufreq governor. Linux-only; None elsewhere."""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

__all__ = ["CpuSnapshot", "cpu_snapshot", "other_load", "read_governor", "steal"]


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time counters at one moment (see :func:`cpu_snapshot`), all in seconds.

    ``busy_s`` and ``idle_s``: the whole machine's busy and idle CPU time since boot, summed
    over all CPUs (from /proc/stat), steal time not counted in either. ``steal_s``: time the
    hypervisor ran something else while this machine's CPUs wanted to run (a VM's steal time,
    the 8th field). ``own_s``: this process's user + system time (all its
    threads, ONNX Runtime's included). ``monotonic_s``: time.monotonic() when taken.
    """

    busy_s: float
    idle_s: float
    own_s: float
    monotonic_s: float
    steal_s: float = 0.0


def cpu_snapshot(proc_stat: str = "/proc/stat") -> CpuSnapshot | None:
    """CPU time counters now, to compare with another snapshot (:func:`other_load`).

    Returns
    -------
    CpuSnapshot or None
        None where ``proc_stat`` cannot be read or parsed (not Linux).
    """
    try:
        with open(proc_stat, encoding="ascii") as f:
            line = f.readline()
        fields = line.split()
        if fields[0] != "cpu":
            return None
        # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is already
        # counted in user and nice. Steal (a hypervisor running other guests) is its own figure:
        # no process of this machine used that time, so it is not "other load".
        j = [int(v) for v in fields[1:9]]
        tick = float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
    if len(j) < 4:
        return None
    j += [0] * (8 - len(j))
    user, nice, system, idle, iowait, irq, softirq, steal = j
    t = os.times()
    return CpuSnapshot(
        busy_s=(user + nice + system + irq + softirq) / tick,
        idle_s=(idle + iowait) / tick,
        own_s=t.user + t.system,
        monotonic_s=time.monotonic(),
        steal_s=steal / tick,
    )


def other_load(before: CpuSnapshot, after: CpuSnapshot) -> float | None:
    """Average number of CPU cores other processes used between two snapshots.

    (machine busy CPU-seconds - this process's CPU-seconds) / wall seconds, at least 0 (the
    kernel's tick accounting and the process's own accounting can disagree by a tick or two).

    Returns
    -------
    float or None
        None when (almost) no time passed between the snapshots.
    """
    wall = after.monotonic_s - before.monotonic_s
    if wall < 1e-3:
        return None
    busy = after.busy_s - before.busy_s
    own = after.own_s - before.own_s
    return max((busy - own) / wall, 0.0)


def steal(before: CpuSnapshot, after: CpuSnapshot) -> float | None:
    """Average number of CPU cores' worth of time the hypervisor gave to others between two
    snapshots (steal time / wall seconds); None when (almost) no time passed."""
    wall = after.monotonic_s - before.monotonic_s
    if wall < 1e-3:
        return None
    return max((after.steal_s - before.steal_s) / wall, 0.0)


def read_governor(cpu_dir: str = "/sys/devices/system/cpu") -> str | None:
    """The cpufreq scaling governor of the CPUs: e.g. "performance", or "mixed: performance,
    powersave" when they differ; None when there is none to read (VMs often have no cpufreq)."""
    found: set[str] = set()
    for path in glob.glob(os.path.join(cpu_dir, "cpu[0-9]*", "cpufreq", "scaling_governor")):
        try:
            with open(path, encoding="ascii") as f:
                value = f.read().strip()
        except (OSError, ValueError):
            continue
        if value:
            found.add(value)
    if not found:
        return None
    if len(found) == 1:
        return found.pop()
    return "mixed: " + ", ".join(sorted(found))
