"""CPU time of processes so far, for the benchmarks' CPU-per-update figures."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes have used so far (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        # After "pid (comm) ": comm may hold spaces; utime and stime are fields 14 and 15.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
