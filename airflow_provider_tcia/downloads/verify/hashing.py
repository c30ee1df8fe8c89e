"""The hash worker pool: CRC-32 and MD5 of a zip's large entries on worker threads, so one download keeps both
cores busy (:class:`HashWorkers`, handed to
:class:`~airflow_provider_tcia.downloads.verify.zipstream.StreamingZipVerifier`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import sys
import threading
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_tcia.downloads.verify.zipstream import ZipEntry


class HashWorkers:
    """Computes the CRC-32 and MD5 of large entries on worker threads while the caller receives the body, so one
    download keeps both cores busy (zlib and hashlib release the GIL on large buffers): both are sequential
    within a file, but the files of a series are independent, so each entry goes to one worker — the one with
    the least left to hash — or, when every worker has more than :attr:`BACKLOG` bytes waiting, to nobody:
    :meth:`start` returns None and the caller hashes that entry itself. The caller then does its share of the
    hashing instead of waiting for the workers to free its buffers, and the work spreads over the cores by
    itself, whatever else runs on them. The worker that finishes an entry checks its CRC-32 against the zip's;
    the verifier waits for the workers (and raises what they found) before it reads the central directory and
    in :meth:`~airflow_provider_tcia.downloads.verify.zipstream.StreamingZipVerifier.finish`.

    The verifier hands over slices of the chunks it is fed; a caller that reuses its buffers calls
    :meth:`after` once a chunk is fed, with what gives the buffer back: it runs once every slice handed over so
    far is hashed (so the caller's buffers bound the memory in flight). Call :meth:`close` in any case.
    Entries under :attr:`MIN_ENTRY` bytes are hashed inline: a hand-over costs more.
    """

    MIN_ENTRY = 128 << 10
    #: How much lower than the thread that starts them the workers' priority is (their nice value above it),
    #: on Linux, where the nice value is a thread's own. The thread receiving the body is the one the
    #: server's pace waits on: when both cores are busy it should get one at once, and the hashing catch up —
    #: the caller's buffers bound how far it can fall behind. Measured on two shared cores (docs/downloads.md,
    #: "Benchmarks"): a 1 GiB verified download goes faster, and uses less CPU, than at the same priority.
    #: 0 leaves them as they are.
    NICENESS = 5

    #: Bytes handed to a worker and not yet hashed above which :meth:`start` leaves the next entry to the
    #: caller. About one and a half of the download's read buffers: the worker always has the next buffer's
    #: slices waiting, and the caller hashes rather than waits for a buffer. Measured on two shared cores
    #: (docs/downloads.md, "Benchmarks"): one worker with this share goes faster than two that hash everything.
    BACKLOG = 3 << 20

    def __init__(self, workers: int = 1) -> None:
        self._queued = [0] * workers
        """Bytes handed to each worker (written by the caller's thread only)."""
        self._hashed = [0] * workers
        """Bytes each worker has hashed (written by that worker only)."""
        self._queues: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(workers)]
        self._pending = [False] * workers
        self._turn = 0
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, args=(i, q), name=f"tcia-hash-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def start(self, compute_md5: bool, crc: bool = True) -> _Hashing | None:
        """The running digests of the next entry (its CRC-32 only if ``crc``), and the worker that computes
        them: the one with the least waiting (in turn where they tie); None if each has more than
        :attr:`BACKLOG` bytes waiting — the caller then hashes the entry itself."""
        count = len(self._queues)
        waiting = [queued - hashed for queued, hashed in zip(self._queued, self._hashed, strict=True)]
        worker = min(range(count), key=lambda i: (waiting[i], (i - self._turn) % count))
        if waiting[worker] > self.BACKLOG:
            return None
        self._turn = (worker + 1) % count
        return _Hashing(worker, hashlib.md5(usedforsecurity=False) if compute_md5 else None, crc)

    def update(self, hashing: _Hashing, data: bytes | memoryview) -> None:
        size = len(data)
        self._queues[hashing.worker].put((hashing.feed, data, size))
        self._queued[hashing.worker] += size
        self._pending[hashing.worker] = True

    def finish(self, hashing: _Hashing, entry: ZipEntry, check: Callable[[int], None]) -> None:
        """Once the worker has hashed everything before: set ``entry.crc32`` and ``entry.md5``, and call
        ``check`` with the CRC-32 (it raises if it is not the zip's)."""
        self._queues[hashing.worker].put((hashing.finish, (entry, check), 0))
        self._pending[hashing.worker] = True

    def after(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` (on a worker thread, or here if nothing is pending) once everything handed over so
        far is hashed. Raises what a worker raised (a CRC that does not match) as soon as it is known."""
        self.raise_error()
        busy = [i for i, pending in enumerate(self._pending) if pending]
        if not busy:
            callback()
            return
        countdown = _Countdown(len(busy), callback)
        for i in busy:
            self._queues[i].put((_Countdown.arrive, countdown, 0))
            self._pending[i] = False

    def drain(self) -> None:
        """Wait until everything handed over is hashed and checked; raise what a worker raised."""
        done = threading.Event()
        countdown = _Countdown(len(self._queues), done.set)
        for i, q in enumerate(self._queues):  # (each queue is in order: past its marker, it is done)
            q.put((_Countdown.arrive, countdown, 0))
            self._pending[i] = False
        done.wait()
        self.raise_error()

    def raise_error(self) -> None:
        if self._errors:
            raise self._errors[0]

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> HashWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self, index: int, jobs: queue.SimpleQueue) -> None:
        _lower_own_priority(self.NICENESS)
        hashed = self._hashed
        while (job := jobs.get()) is not None:
            function, argument, size = job
            try:
                function(argument)
            except BaseException as err:  # (raised on the verifier's thread; countdowns must still arrive)
                self._errors.append(err)
            hashed[index] += size


def _lower_own_priority(step: int) -> None:
    """Raise the calling thread's nice value by ``step`` (at most to 19), on Linux only: there the nice value
    belongs to the thread (``setpriority`` of its thread id); elsewhere it would be the whole process's."""
    if step <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):  # (a sandbox that forbids it: the workers keep the priority they have)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + step))


class _Hashing:
    """One entry's running CRC-32 and MD5, updated by its worker."""

    __slots__ = ("crc", "feed", "md5", "wants_crc", "worker")

    def __init__(self, worker: int, md5: Any, crc: bool = True) -> None:
        self.worker = worker
        self.md5 = md5
        self.crc = 0
        self.wants_crc = crc
        self.feed: Callable[[bytes | memoryview], object] = self.update
        """What the worker calls with each piece: :meth:`update`, or the MD5's own ``update`` when that is all
        there is to compute (no Python frame per piece on the worker)."""
        if md5 is not None and not crc:
            self.feed = md5.update

    def update(self, data: bytes | memoryview) -> None:
        if self.wants_crc:
            self.crc = zlib.crc32(data, self.crc)
        if self.md5 is not None:
            self.md5.update(data)

    def finish(self, job: tuple[ZipEntry, Callable[[int], None]]) -> None:
        entry, check = job
        if self.md5 is not None:
            entry.md5 = self.md5.hexdigest()
        if self.wants_crc:
            entry.crc32 = self.crc
            check(self.crc)


class _Countdown:
    __slots__ = ("_callback", "_left", "_lock")

    def __init__(self, count: int, callback: Callable[[], object]) -> None:
        self._left = count
        self._callback = callback
        self._lock = threading.Lock()

    def arrive(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._callback()
