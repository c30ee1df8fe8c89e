"""What the benchmarks measure of a process: its CPU time and its resident memory."""

from __future__ import annotations

import os
import resource


def cpu(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (``RUSAGE_CHILDREN``: of its waited-for children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def rss() -> int:
    """This process's resident set size now, in bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
