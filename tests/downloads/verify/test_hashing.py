"""Hashing on worker threads (one series at a time): the same report as inline, whatever the timing and
whoever hashes each entry (a worker, or the caller when the workers are behind); a bad CRC caught; where
``md5hashes.csv`` vouches for a file, its CRC-32 is not computed; an entry goes to the worker with the least
waiting; the workers run below the priority of the thread that receives the body."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from airflow_provider_tcia.downloads.verify.contents import check_contents
from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.downloads.verify.zipstream import StreamingZipVerifier
from airflow_provider_tcia.exceptions import ZipVerificationError
from tests.downloads.verify.zips import (
    BIG_FILES,
    SHAPES,
    MemorySink,
    central_offset,
    covered_report,
    feed,
    feed_reusing_buffers,
    make_zip,
    md5_listing,
)


@pytest.fixture(params=["fast", "slow"])
def worker_speed(request, monkeypatch):
    """Slow workers (a pause before each piece) make the verifier wait for them, whatever the timing."""
    if request.param == "slow":
        import time

        from airflow_provider_tcia.downloads.verify import hashing

        init = hashing._Hashing.__init__

        def slow_init(self, *args, **kwargs):
            init(self, *args, **kwargs)
            fast = self.feed

            def slow_feed(data):
                time.sleep(0.002)
                fast(data)

            self.feed = slow_feed

        monkeypatch.setattr(hashing._Hashing, "__init__", slow_init)
    return request.param


@pytest.mark.parametrize("chunk", [4096, 100_003, 1 << 20, "central"])
@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+descriptor", "stored+zip64"])
def test_hash_workers_give_the_inline_report(shape, chunk, worker_speed):
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    data = make_zip(files, **SHAPES[shape])
    if chunk == "central":  # the central directory starts a chunk: the entries' hashes may still be running
        chunk = central_offset(data)
    inline = feed(data, chunk).finish()
    sink = MemorySink()
    with HashWorkers(2) as workers:
        report = feed_reusing_buffers(data, chunk, workers, sink=sink).finish()
    assert report.entries == inline.entries
    assert {e.name: e.md5 for e in report.entries if e.is_dicom} == {
        n: hashlib.md5(d).hexdigest() for n, d in BIG_FILES.items() if n.endswith(".dcm")
    }
    assert sink.files == files
    check_contents(report, expected_count=6, require_md5=True)


@pytest.fixture
def counted_starts(monkeypatch):
    """How many entries :meth:`HashWorkers.start` gave a worker, and how many it left to the caller."""
    counts = {"worker": 0, "caller": 0}
    start = HashWorkers.start

    def counting_start(self, *args, **kwargs):
        hashing = start(self, *args, **kwargs)
        counts["worker" if hashing is not None else "caller"] += 1
        return hashing

    monkeypatch.setattr(HashWorkers, "start", counting_start)
    return counts


@pytest.mark.parametrize(("backlog", "on_worker"), [(-1, 0), (0, 1), (300_000, 3)])
@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+zip64"])
def test_entries_the_caller_hashes_give_the_same_report(shape, backlog, on_worker, monkeypatch, counted_starts):
    """Whoever hashes an entry — the worker, or the caller once the worker has more than BACKLOG bytes waiting
    (-1: the caller hashes every entry) — the report is the inline one, and no DICOM file's CRC-32 is computed
    where md5hashes.csv vouches for it. The worker is held until the whole zip is fed, so what waits for it is
    known: the five large entries are 139, 147, 155, 163 and 171 kB, up to the central directory."""
    monkeypatch.setattr(HashWorkers, "BACKLOG", backlog)
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    data = make_zip(files, **SHAPES[shape])
    inline = feed(data, 65536, crc_covered_by_md5=True).finish()
    gate = threading.Event()
    with HashWorkers(1) as workers:
        workers._queues[0].put((threading.Event.wait, gate, 0))
        verifier = StreamingZipVerifier(what="getImage('1.2.3')", hash_workers=workers, crc_covered_by_md5=True)
        central = central_offset(data)  # (before the central directory the verifier waits for the worker)
        verifier.feed(data[:central])
        gate.set()
        verifier.feed(data[central:])
        report = verifier.finish()
    assert counted_starts == {"worker": on_worker, "caller": 5 - on_worker}
    assert report.entries == inline.entries
    assert report.checks == inline.checks
    dicom = [e for e in report.entries if e.is_dicom]
    assert len(dicom) == 6 and not any(e.crc_checked for e in dicom)
    assert all(e.crc_checked for e in report.entries if not e.is_dicom)  # LICENSE, md5hashes.csv: CRC-32 as ever
    check_contents(report, expected_count=6, require_md5=True)


def test_an_entry_goes_to_the_worker_with_the_least_waiting(monkeypatch):
    """Least waiting first (in turn where they tie); none once every worker has more than BACKLOG waiting."""
    monkeypatch.setattr(HashWorkers, "BACKLOG", 4000)
    gates = [threading.Event(), threading.Event()]
    with HashWorkers(2) as workers:
        for queue_, gate in zip(
            workers._queues, gates, strict=True
        ):  # (hold both workers: nothing they get is hashed yet)
            queue_.put((threading.Event.wait, gate, 0))
        first, second = workers.start(True, crc=False), workers.start(True, crc=False)
        assert (first.worker, second.worker) == (0, 1)  # a tie: in turn
        workers.update(first, b"x" * 5000)
        assert workers.start(True, crc=False).worker == 1  # worker 0 has 5,000 bytes waiting, worker 1 none
        workers.update(second, b"y" * 3000)
        assert workers.start(True, crc=False).worker == 1  # 3,000 < 5,000
        workers.update(second, b"y" * 2000)
        assert workers.start(True, crc=False) is None  # both above 4,000: the caller hashes this one
        for gate in gates:
            gate.set()
        workers.drain()
        assert workers.start(True, crc=False) is not None  # all hashed: nothing waits any more
    assert first.md5.hexdigest() == hashlib.md5(b"x" * 5000).hexdigest()
    assert second.md5.hexdigest() == hashlib.md5(b"y" * 5000).hexdigest()


@pytest.mark.parametrize("where", ["00000002.dcm", "00000005.dcm"])
def test_hash_workers_catch_a_bad_crc(where, worker_speed):
    data = bytearray(make_zip(BIG_FILES))
    data[data.index(where.encode()) + 12 + 5000] ^= 0xFF
    with HashWorkers(2) as workers, pytest.raises(ZipVerificationError, match=f"entry '{where}' fails its CRC"):
        feed_reusing_buffers(bytes(data), 65536, workers).finish()


@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+zip64"])
def test_where_md5hashes_csv_vouches_for_a_file_its_crc_is_not_computed(shape, worker_speed):
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    with HashWorkers(2) as workers:
        report = covered_report(make_zip(files, **SHAPES[shape]), workers)
    dicom = [e for e in report.entries if e.is_dicom]
    assert len(dicom) == 6 and not any(e.crc_checked for e in dicom)  # the zip's own CRC kept, not recorded as computed
    assert all(e.crc_checked for e in report.entries if e not in dicom)  # sidecar files: CRC-32 as ever
    assert any("except the" in check and "md5hashes.csv instead" in check for check in report.checks)
    check_contents(report, expected_count=6, require_md5=True)


def _nice(thread_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, thread_id)


def test_hash_workers_run_below_the_receiving_threads_priority():
    """On Linux the nice value is a thread's own: the workers raise theirs by NICENESS, nothing else changes."""
    assert HashWorkers.NICENESS == 5
    here = threading.get_native_id()
    before = _nice(here)
    with HashWorkers(2) as workers:
        workers.drain()  # (past it, each worker has started, and set its priority first)
        niceness = [_nice(thread.native_id) for thread in workers._threads]
    assert niceness == [min(19, before + 5)] * 2
    assert _nice(here) == before  # the receiving thread, and so the process, keep theirs
    assert _nice(os.getpid()) == _nice(here)


def test_hash_workers_keep_their_priority_with_niceness_0(monkeypatch):
    monkeypatch.setattr(HashWorkers, "NICENESS", 0)
    before = _nice(threading.get_native_id())
    with HashWorkers(2) as workers:
        workers.drain()
        assert [_nice(thread.native_id) for thread in workers._threads] == [before] * 2


def test_the_md5_alone_is_fed_without_a_python_frame():
    """Where only the MD5 is computed (md5hashes.csv vouches for the file), the worker calls the digest's own
    update; the digest is the same as computing both."""
    data = os.urandom(300_000)
    with HashWorkers(2) as workers:
        alone, both = workers.start(True, crc=False), workers.start(True, crc=True)
    assert alone.feed == alone.md5.update and both.feed == both.update
    for hashing in (alone, both):
        hashing.feed(data[:100_000])
        hashing.feed(memoryview(data)[100_000:])
    assert alone.md5.hexdigest() == both.md5.hexdigest() == hashlib.md5(data).hexdigest()
