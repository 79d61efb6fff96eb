"""How many cores this process may really use.

``os.cpu_count()`` is the machine's count: in a container limited to 2 CPUs on a
64-core node it says 64, and sizing render slots or worker pools by it holds 32
times the images in memory that the quota can process. The usable count is the
smallest of the CPUs the process may run on (its affinity) and the cgroup's CPU
quota rounded up (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` over
``cpu.cfs_period_us`` in v1), as Kubernetes and Docker set it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _quota(cgroup: Path) -> float | None:
    """CPUs the cgroup's quota allows, or None when it sets none (or cannot be read)."""
    try:
        text = (cgroup / "cpu.max").read_text().split()  # "max 100000" or "200000 100000"
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
        if text:
            return None
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores(cgroup: Path = CGROUP) -> int:
    """At least 1: the affinity, capped by the cgroup's CPU quota (rounded up)."""
    cores = _affinity()
    quota = _quota(cgroup)
    if quota is not None and quota > 0:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)
