"""What a benchmark ran on, printed next to its figures: a ratio or a "pairs per core" means
little without the CPU, the cores it could use and how busy the machine was.

Imported by the benchmarks (run them with the project's Python, see their docstrings).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (its affinity; a container's cpuset shows here)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def describe() -> str:
    """One line: CPU model, cores, load average (1/5/15 min), Python, OS."""
    cores = usable_cores()
    total = os.cpu_count() or cores
    shown = f"{cores} cores" if cores == total else f"{cores} of {total} cores"
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine: {cpu_model()}, {shown} ({platform.machine()}), load average {load}; "
        f"Python {platform.python_version()} on {platform.system()}"
    )


if __name__ == "__main__":
    print(describe())
