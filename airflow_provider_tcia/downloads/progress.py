"""Progress of a download in the task log: bytes, MB/s, files, ETA every so often, and a summary at the end.

One :class:`DownloadProgress` is shared by every series of a task (several may download at once, so it is
thread-safe). It logs at most once per ``interval`` seconds, from whichever thread crosses the interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class TaskLog(Protocol):
    """What the download engines log through: a :class:`logging.Logger`, or a task's ``self.log`` (Airflow 3's
    is not a ``logging.Logger``)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


def human_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """``125`` → ``"2m05s"``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class DownloadProgress:
    """Counters of a running download, logged every ``interval`` seconds.

    :param log: the task's logger.
    :param total_series: how many series the task handles.
    :param expected_bytes: the uncompressed size of everything to download (the sum of getSeries'
        FileSize), if known: it gives the ETA. Otherwise the ETA is estimated from the series left.
    :param interval: seconds between progress lines (0 logs at every chance: for tests).
    :param noun: what is counted in the log lines (``series``, ``images``).
    """

    def __init__(
        self,
        log: TaskLog,
        *,
        total_series: int,
        expected_bytes: int | None = None,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        noun: str = "series",
    ) -> None:
        self.log = log
        self.noun = noun
        self.total_series = total_series
        self.expected_bytes = expected_bytes
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self.started = clock()
        self._last_log = self.started
        self.received = 0
        """Bytes of zip received."""
        self.data = 0
        """Uncompressed bytes of files checked."""
        self.files = 0
        self.done = 0
        self.skipped = 0
        self.failed = 0
        self.unverified = 0
        """Stored (or found) but not verified: what could not be checked, said as such."""

    def add(self, *, received: int = 0, data: int = 0, files: int = 0) -> None:
        with self._lock:
            self.received += received
            self.data += data
            self.files += files
            now = self._clock()
            if now - self._last_log < self.interval:
                return
            self._last_log = now
            line = self._line(now)
        self.log.info("%s", line)

    def series_finished(self, *, skipped: bool = False, failed: bool = False, unverified: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.unverified += unverified
            self.skipped += skipped and not unverified
            self.failed += failed

    def elapsed(self, now: float | None = None) -> float:
        return max((self._clock() if now is None else now) - self.started, 1e-9)

    def _line(self, now: float) -> str:
        elapsed = self.elapsed(now)
        eta = self._eta(elapsed)
        return (
            f"progress: {self.done}/{self.total_series} {self.noun} done"
            + (f" ({self.skipped} skipped)" if self.skipped else "")
            + f", {human_bytes(self.received)} received at {self.received / elapsed / 1e6:.1f} MB/s"
            + f", {self.files:,} files verified"
            + (f", ETA {human_duration(eta)}" if eta is not None else "")
        )

    def _eta(self, elapsed: float) -> float | None:
        if self.expected_bytes and self.data:
            left = max(self.expected_bytes - self.data, 0)
            return left / (self.data / elapsed)
        worked = self.done - self.skipped
        if self.total_series > 1 and worked > 0:
            return (self.total_series - self.done) * elapsed / worked
        return None

    def summary(self) -> str:
        elapsed = self.elapsed()
        return (
            f"{self.total_series} {self.noun}: {self.done - self.skipped - self.failed - self.unverified} downloaded "
            f"and verified, {self.skipped} skipped (already present and verified), "
            + (f"{self.unverified} stored but NOT verified, " if self.unverified else "")
            + f"{self.failed} failed; "
            f"{human_bytes(self.received)} in {human_duration(elapsed)} ({self.received / elapsed / 1e6:.1f} MB/s), "
            f"{self.files:,} files"
        )
