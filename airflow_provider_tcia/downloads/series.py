"""The engine behind :class:`~airflow_provider_tcia.operators.download.TciaDownloadSeriesOperator`.

For each series: stream getImage from the socket to a temporary object beside the destination while a
:class:`~airflow_provider_tcia.downloads.verify.zipstream.StreamingZipVerifier` checks it (CRC-32 and MD5 of every entry,
the zip's structure, and — where no ``md5hashes.csv`` vouches for the files — each DICOM file's structure),
compare the files with ImageCount / ObjectCount and ``md5hashes.csv``, move the data into place, compare what
is now stored with what was verified, then write its manifest (:mod:`airflow_provider_tcia.downloads.manifest`).
Memory does not grow with the size of a series: bytes pass through in the hook's chunks.

A body that breaks off or fails verification is downloaded again, a bounded number of times with the
connection's backoff (``max_retries`` and ``retry_backoff`` of the ``tcia`` connection); opening the request
is retried by the hook itself (429, 5xx, connection errors, an HTML page sent with 200). Nothing is left at
the destination by a failed attempt: temporary names start with ``.`` and contain ``.partial-``, and are
removed on failure.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.api.uids import shown
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.downloads.inputs import SeriesRef, text_or_none
from airflow_provider_tcia.downloads.layout import DownloadPlan
from airflow_provider_tcia.downloads.manifest import build_manifest, check_present, listing_mismatch, stored_listing
from airflow_provider_tcia.downloads.pool import gathered_failure, run_in_pool
from airflow_provider_tcia.downloads.progress import DownloadProgress, TaskLog, human_bytes
from airflow_provider_tcia.downloads.verify.contents import check_contents
from airflow_provider_tcia.downloads.verify.fallback import verify_zip_file
from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.downloads.verify.zipstream import StreamingZipVerifier, ZipEntry, ZipReport
from airflow_provider_tcia.exceptions import (
    BodyFailure,
    DownloadStopped,
    TciaCorruptPayloadError,
    TciaError,
    TciaIncompleteResponseError,
    TciaNotFoundError,
    TciaStoredDataError,
)
from airflow_provider_tcia.hooks.tcia import TciaHook, TciaStream
from airflow_provider_tcia.revisions import Revision, revision_change, server_timestamp
from airflow_provider_tcia.storage import (
    FolderSink,
    atomic_writer,
    open_writer,
    publish,
    remove_path,
    replace_tree,
    temporary_sibling,
)

#: Bytes read from the socket at a time (into a reused buffer). Each chunk costs the same Python work however
#: large it is (following the zip, handing slices to the hash workers), so larger chunks cost less per byte:
#: 2 MiB measured faster than 1 MiB, and 256 KiB slower (docs/downloads.md, "Benchmarks").
READ_BUFFER = 2 << 20
#: Read buffers of one download when its hashes are computed on worker threads (bounds the memory in flight:
#: 8 MiB).
PIPELINE_DEPTH = 4
#: Threads computing CRC-32s and MD5s when one series downloads at a time; the receiving thread hashes its share
#: itself (:attr:`HashWorkers.BACKLOG`). One measured faster than two on two shared cores (docs/downloads.md,
#: "Benchmarks").
HASH_WORKERS = 1


@dataclass
class SeriesResult:
    """What happened to one series."""

    series_instance_uid: str
    path: str
    bytes: int
    files: int
    verified: bool
    skipped: bool
    manifest: str
    seconds: float = 0.0
    attempts: int = 0

    def summary(self) -> dict[str, Any]:
        """The small dict pushed to XCom."""
        return {
            "series_instance_uid": self.series_instance_uid,
            "path": self.path,
            "bytes": self.bytes,
            "files": self.files,
            "verified": self.verified,
            "skipped": self.skipped,
        }


@dataclass
class SeriesJob:
    """One series being downloaded: what its attempts share, and how many there were."""

    ref: SeriesRef
    count_source: str
    """Where ``ref.image_count`` came from, for messages."""
    data_path: ObjectStoragePath
    manifest_path: ObjectStoragePath
    extract: bool
    started: float
    attempts: int = 0
    spool: bool = False
    """Download the zip whole, then check (and extract) it: it could not be followed while it streamed."""

    @property
    def uid(self) -> str:
        return self.ref.series_instance_uid

    @property
    def what(self) -> str:
        """How messages name the request."""
        return f"getImage(SeriesInstanceUID={self.uid!r})"

    def temporaries(self) -> tuple[ObjectStoragePath, ObjectStoragePath]:
        """Fresh temporary names for an attempt, beside the data: the data's, and the zip's (the same one unless
        the zip is extracted)."""
        data_tmp = temporary_sibling(self.data_path)
        if not self.extract:
            return data_tmp, data_tmp
        return data_tmp, temporary_sibling(self.data_path.parent / f"{self.uid}.zip")


class _Respool(Exception):
    """The zip cannot be extracted while it streams: download it whole, then check and extract it."""


class SeriesDownloader:
    """Downloads series to a :class:`DownloadPlan`, verified, atomically, skipping those already there.

    :param hook: the TCIA hook (its pooled session is shared by concurrent downloads).
    :param plan: where the series go.
    :param md5: ask for ``md5hashes.csv`` where the API offers it (NBIA) and check every file against it.
    :param check_count: when a series' ImageCount is unknown (a bare UID) and no ``md5hashes.csv`` will list
        its files, ask getSeriesSize for its ObjectCount so the file count can be checked.
    :param check_revisions: tell a copy of an older revision of a series from the current one, and download
        the series again when the server has revised it (a newer DateReleased or submission timestamp, or
        another ImageCount than the copy). Rows carry those; for a bare UID on NBIA the server is asked once
        (getSeries of that series). ``False``: a series already present is always skipped.
    :param check_dicom: check every DICOM file's structure as it streams
        (:mod:`~airflow_provider_tcia.downloads.verify.dicom`); ``None`` (the default): where no ``md5hashes.csv``
        will vouch for the files (the legacy API, or ``md5=False``).
    :param progress_interval: seconds between progress lines in the log.
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: TciaHook,
        plan: DownloadPlan,
        *,
        md5: bool = True,
        check_count: bool = True,
        check_dicom: bool | None = None,
        progress_interval: float = 30.0,
        log: TaskLog | None = None,
        check_revisions: bool = True,
    ) -> None:
        self.hook = hook
        self.plan = plan
        self.md5 = md5
        self.check_count = check_count
        self.check_revisions = check_revisions
        self.check_dicom = check_dicom
        self.progress_interval = progress_interval
        self.log: TaskLog = log or logging.getLogger(__name__)
        self.progress = DownloadProgress(self.log, total_series=0, interval=progress_interval)
        self._stop = threading.Event()
        self._pipelined = True
        self._patients: dict[str | None, str | None] = {}
        self._patients_lock = threading.Lock()

    def stop(self) -> None:
        """Abandon the downloads in flight (their temporary objects are removed) and start no more."""
        self._stop.set()

    # --- many series --------------------------------------------------------------------------------
    def run(self, refs: Sequence[SeriesRef], *, max_concurrency: int = 1) -> list[SeriesResult]:
        """Download every series in ``refs``, up to ``max_concurrency`` at a time.

        A series that fails does not stop the others; when all are done, the failures are raised together
        (:class:`TciaDownloadError`, or the one error itself for a single series).
        """
        config = self.hook.config  # read the connection once, before any thread needs it
        _ = self.hook.session
        sizes = [r.file_size for r in refs]
        known = [s for s in sizes if s is not None]
        expected = sum(known) if sizes and len(known) == len(sizes) else None
        self.progress = DownloadProgress(
            self.log, total_series=len(refs), expected_bytes=expected, interval=self.progress_interval
        )
        workers = max(1, min(max_concurrency, len(refs)))
        # One series at a time: its hashes on worker threads. Several at once already keep both cores busy.
        self._pipelined = workers == 1
        self.log.info(
            "downloading %d series to %s (layout %s%s), %d at a time, from the %s API %s",
            len(refs), self.plan.destination, self.plan.layout, ", nested" if self.plan.nested else "",
            workers, config.generation.name, config.generation.version,
        )  # fmt: skip
        results: dict[str, SeriesResult] = {}
        failures: dict[str, BaseException] = {}
        if workers == 1:
            for ref in refs:
                if self._stop.is_set():
                    raise DownloadStopped(f"stopped before series {ref.series_instance_uid}")
                try:
                    results[ref.series_instance_uid] = self.download(ref)
                except (TciaError, OSError) as err:
                    failures[ref.series_instance_uid] = err
        else:
            done, failed = run_in_pool(self.download, refs, workers, self._stop, "tcia-download")
            results = {ref.series_instance_uid: result for ref, result in done.items()}
            failures = {ref.series_instance_uid: err for ref, err in failed.items()}
        self.log.info("download summary: %s", self.progress.summary())
        if failures:
            raise gathered_failure(failures, len(refs), "series")
        return [results[r.series_instance_uid] for r in refs]

    # --- one series ---------------------------------------------------------------------------------
    def download(self, ref: SeriesRef) -> SeriesResult:
        """Download one series (or skip it if it is already present and verified), with bounded retries."""
        started = time.monotonic()
        uid = ref.series_instance_uid
        try:
            ref, count_source = self._complete(ref)
            data_path = self.plan.data_path(ref)
            manifest_path = self.plan.manifest_path(ref)
            presence = check_present(manifest_path, data_path, self.plan.layout)
            revised = self._revised(ref, presence.manifest) if presence.present else None
            if revised is not None:  # (the copy stays in place until the revision replaces it)
                self.log.info("series %s is downloaded again: the server revised it: %s", uid, revised)
            elif presence.present:
                manifest = presence.manifest or {}
                self.log.info("series %s skipped: already present and verified at %s", uid, data_path)
                self.progress.series_finished(skipped=True)
                return SeriesResult(
                    uid, str(data_path), int(manifest.get("bytes", 0)), int(manifest.get("files", 0)),
                    verified=True, skipped=True, manifest=str(manifest_path),
                )  # fmt: skip
            if presence.stale:
                remove_path(manifest_path)  # (it vouches for data that is no longer what was verified)
                self.log.warning(
                    "series %s is downloaded again: %s; its manifest no longer vouches for it and is removed",
                    uid, presence.reason,
                )  # fmt: skip
            elif revised is None and presence.reason != "no manifest":
                self.log.info("series %s is downloaded again: %s", uid, presence.reason)
            extract = self.plan.layout == "extract"
            result = self._with_retries(SeriesJob(ref, count_source, data_path, manifest_path, extract, started))
        except BaseException:
            self.progress.series_finished(failed=True)
            raise
        self.progress.series_finished()
        return result

    def _complete(self, ref: SeriesRef) -> tuple[SeriesRef, str]:
        """``ref`` with what its checks and its place need, asked of TCIA only when missing: the study (and
        ImageCount) from getSeries, the patient from getPatientStudy (the legacy API's getSeries has no
        PatientID), the file count from getSeriesSize when no ``md5hashes.csv`` will list the files."""
        uid = ref.series_instance_uid
        count_source = "ImageCount (getSeries)"
        if self.plan.nested and ref.study_instance_uid is None:
            rows = self.hook.get_series(series_instance_uid=uid)
            row = next((r for r in rows if r.get("SeriesInstanceUID") == uid), None)
            if row is None or not row.get("StudyInstanceUID"):
                raise TciaNotFoundError(f"getSeries(SeriesInstanceUID={uid!r}) returned no row for this series")
            ref = _with_row(ref, row)
        if self.plan.nested and ref.patient_id is None:
            patient = self._patient_of(ref.study_instance_uid)
            if patient is None:
                raise TciaNotFoundError(
                    f"getPatientStudy(StudyInstanceUID={ref.study_instance_uid!r}) names no PatientID for series {uid}"
                )
            ref = replace(ref, patient_id=patient)
        md5_listed = self.md5 and self.hook.config.generation.offers_md5()
        if self.check_count and ref.image_count is None and not md5_listed:
            rows = self.hook.get_series_size(uid)
            count = _int(rows[0].get("ObjectCount")) if rows else None
            if count is None:  # TCIA answers [{}] (or nothing) for a series it does not have
                raise TciaNotFoundError(
                    f"series {uid} not found on the server: getSeriesSize(SeriesInstanceUID={uid!r}) has no "
                    f"ObjectCount (answer: {shown(rows)})"
                )
            ref, count_source = replace(ref, image_count=count), "ObjectCount (getSeriesSize)"
        return ref, count_source

    def _revised(self, ref: SeriesRef, manifest: dict[str, Any] | None) -> str | None:
        """Why the copy a manifest vouches for is of an older revision than the server's, or None.

        What the server says now comes with ``ref`` (a getSeries row); for a bare UID on NBIA it is asked once
        (getSeries of this series — only for a series already present: a fresh download needs no answer). A
        copy whose manifest records no dates (downloaded from a bare UID, or before revisions were recorded)
        counts as of the day it was downloaded.
        """
        if not self.check_revisions or manifest is None:
            return None
        undated = ref.date_released is None and ref.submitted is None
        if undated and self.hook.config.generation.name != "legacy":  # (the seed's rows have no dates)
            uid = ref.series_instance_uid
            rows = self.hook.get_series(series_instance_uid=uid)
            row = next((r for r in rows if r.get("SeriesInstanceUID") == uid), None)
            if row is None:
                self.log.warning("series %s: getSeries has no row for it now; keeping the copy", uid)
                return None
            ref = _with_row(ref, row)
        recorded = Revision.of_record(manifest.get("server_revision")) or Revision()
        if recorded.date_released is None and recorded.submitted is None:
            downloaded = server_timestamp(manifest.get("downloaded_at"))
            recorded = replace(recorded, date_released=downloaded, submitted=downloaded)
        if recorded.image_count is None:
            recorded = replace(recorded, image_count=_int(manifest.get("files")))
        current = Revision(ref.date_released, ref.submitted, ref.image_count)
        return revision_change(current, recorded)

    def _patient_of(self, study_instance_uid: str | None) -> str | None:
        """The PatientID of a study, asked of getPatientStudy once per study however many of its series are
        downloaded (the lock also keeps concurrent series of one study from asking twice)."""
        with self._patients_lock:
            if study_instance_uid not in self._patients:
                studies = self.hook.get_patient_study(study_instance_uid=study_instance_uid)
                found = (text_or_none(s.get("PatientID")) for s in studies)
                self._patients[study_instance_uid] = next(filter(None, found), None)
            return self._patients[study_instance_uid]

    def _with_retries(self, job: SeriesJob) -> SeriesResult:
        uid = job.uid

        def download_once() -> SeriesResult:
            job.attempts += 1
            while True:
                try:
                    return self._attempt(job)
                except _Respool as why:  # (the same attempt, the zip downloaded whole this time)
                    self.log.warning("series %s: %s; downloading it whole, then checking and extracting it", uid, why)
                    job.spool = True

        def pause(delay: float) -> None:
            if self._stop.wait(delay):
                raise DownloadStopped(f"stopped while waiting to retry series {uid}")

        policy = self.hook.config.retry
        try:
            return retry_call(
                policy, download_once, retry_on=(BodyFailure,), what=f"downloading series {uid}", log=self.log,
                sleep=pause,
            )  # fmt: skip
        except BodyFailure as failure:
            err = failure.error
            raise type(err)(
                f"series {uid}: gave up after {job.attempts} downloads (max_retries={policy.max_retries}); the last: "
                f"{err}"
            ) from None

    def _attempt(self, job: SeriesJob) -> SeriesResult:
        ref, uid, what = job.ref, job.uid, job.what
        data_tmp, zip_tmp = job.temporaries()
        try:
            with self.hook.stream_image(uid, md5=self.md5) as stream:
                try:
                    report = self._receive(stream, job, data_tmp, zip_tmp)
                    check_contents(
                        report,
                        expected_count=ref.image_count,
                        count_source=job.count_source,
                        require_md5=stream.md5_included,
                        what=what,
                    )
                except (TciaIncompleteResponseError, TciaCorruptPayloadError) as err:
                    raise BodyFailure(err) from err
                source_url = stream.url
            self._publish(job, data_tmp)
            stored = self._check_stored(job, report)
            config = self.hook.config
            manifest = build_manifest(
                series_instance_uid=uid,
                layout=self.plan.layout,
                path=job.data_path,
                report=report,
                source_url=source_url,
                api=f"{config.generation.name} {config.generation.version}",
                attempts=job.attempts,
                seconds=time.monotonic() - job.started,
                patient_id=ref.patient_id,
                study_instance_uid=ref.study_instance_uid,
                stored=stored,
                server_revision=Revision(ref.date_released, ref.submitted, len(report.dicom_entries)).record(),
            )
            with atomic_writer(job.manifest_path, lineage=False) as fh:  # a sidecar: no lineage event of its own
                fh.write(json.dumps(manifest, indent=1).encode())
        finally:
            for leftover in {str(data_tmp): data_tmp, str(zip_tmp): zip_tmp}.values():
                remove_path(leftover)
        files = len(report.dicom_entries)
        seconds = time.monotonic() - job.started
        self.log.info(
            "series %s: %s, %d files, verified (%s); at %s",
            uid, human_bytes(report.zip_bytes), files, "; ".join(report.checks), job.data_path,
        )  # fmt: skip
        return SeriesResult(
            uid, str(job.data_path), report.zip_bytes, files, verified=True, skipped=False,
            manifest=str(job.manifest_path), seconds=seconds, attempts=job.attempts,
        )  # fmt: skip

    def _receive(
        self, stream: TciaStream, job: SeriesJob, data_tmp: ObjectStoragePath, zip_tmp: ObjectStoragePath
    ) -> ZipReport:
        """Stream the body to its temporary place (``zip_tmp``, or extracted to ``data_tmp``) while checking it;
        the report of a complete zip."""
        # One series at a time: CRC-32s and MD5s on a worker thread (entry by entry) while this one receives,
        # writes, follows the zip's structure and hashes what the worker cannot keep up with. Several series at
        # once keep both cores busy without it.
        what, extract, spool = job.what, job.extract, job.spool
        workers = HashWorkers(HASH_WORKERS) if self._pipelined and not spool else None
        verifier = None
        check_dicom = self._checks_dicom()
        try:
            if not spool:
                verifier = StreamingZipVerifier(
                    sink=FolderSink(data_tmp) if extract else None,
                    what=what,
                    on_data=lambda n: self.progress.add(data=n),
                    on_entry=self._count_file,
                    hash_workers=workers,
                    check_dicom=check_dicom,
                    # md5hashes.csv asked for: check_contents requires it to list every file, so their MD5
                    # is checked and their CRC-32 would add CPU, not safety
                    crc_covered_by_md5=stream.md5_included,
                )
            if extract and not spool:
                assert verifier is not None
                try:
                    self._pump(stream, verifier, None, workers)
                finally:
                    verifier.abort()
                if verifier.fallback_reason is not None:
                    raise _Respool(verifier.fallback_reason)
                return verifier.finish()
            with open_writer(zip_tmp) as out:
                self._pump(stream, verifier, out, workers)
            if verifier is not None and verifier.fallback_reason is None:
                return verifier.finish()
        finally:
            if workers is not None:
                workers.close()
        if verifier is not None:
            self.log.info("%s: %s; checking it through its central directory", what, verifier.fallback_reason)
        with zip_tmp.open("rb") as fh:
            return verify_zip_file(
                fh, sink=FolderSink(data_tmp) if extract else None, what=what, check_dicom=check_dicom
            )

    def _checks_dicom(self) -> bool:
        """Whether each file's DICOM structure is checked: as asked, else where no md5hashes.csv vouches for it."""
        if self.check_dicom is not None:
            return bool(self.check_dicom)
        return not (self.md5 and self.hook.config.generation.offers_md5())

    def _check_stored(self, job: SeriesJob, report: ZipReport) -> dict[str, dict]:
        """What is at the data path now that it is in place, compared with what was verified: the zip's size, or
        every file of the folder with its size (an object store's copies, object by object, included). Returns
        that listing (with each object's stamp) for the manifest. A mismatch removes the data again and raises:
        nothing that differs from what was verified stays, or is called verified."""
        layout, data_path = self.plan.layout, job.data_path
        if layout == "zip":
            expected = {data_path.name: {"size": report.zip_bytes}}
        else:
            expected = {e.name: {"size": e.size} for e in report.entries if not e.is_dir}
        found = stored_listing(data_path, layout)
        problem = listing_mismatch(expected, found, data_path.name)
        if problem is not None:
            remove_path(data_path)
            raise TciaStoredDataError(
                f"series {job.uid}: once moved into place at {data_path}, {problem} — what is stored is not what was "
                "verified, so it was removed again"
            )
        return {name: found[name] for name in expected}

    def _pump(
        self,
        stream: TciaStream,
        verifier: StreamingZipVerifier | None,
        out: IO[bytes] | None,
        workers: HashWorkers | None,
    ) -> None:
        """Move the body to ``out`` and through ``verifier``: read from the socket into a few reused buffers
        (no allocation or copy per chunk), each written and checked, then given back — at once when everything
        is done inline, else when ``workers`` have hashed it. At most ``PIPELINE_DEPTH`` buffers exist, so
        memory stays bounded whatever the size of the series."""
        free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(PIPELINE_DEPTH if workers is not None else 1):
            free.put(bytearray(READ_BUFFER))
        progress = self.progress
        stop = self._stop
        while True:
            if stop.is_set():
                raise DownloadStopped("the download was stopped")
            buffer = free.get()
            n = stream.readinto(buffer)
            if not n:
                return
            chunk = memoryview(buffer)[:n]
            if out is not None:
                out.write(chunk)
            progress.add(received=n)
            if verifier is not None:
                verifier.feed(chunk)
            del chunk
            if workers is None:
                free.put(buffer)
            else:
                workers.after(functools.partial(free.put, buffer))

    def _count_file(self, entry: ZipEntry) -> None:
        if entry.is_dicom:
            self.progress.add(files=1)

    def _publish(self, job: SeriesJob, tmp: ObjectStoragePath) -> None:
        """Move verified data into place. An old manifest goes first, so the series counts as absent until
        the new manifest is written; an old folder is replaced whole (a zip by an atomic rename)."""
        remove_path(job.manifest_path)
        job.data_path.parent.mkdir(parents=True, exist_ok=True)
        if job.extract:
            replace_tree(tmp, job.data_path)
        else:
            publish(tmp, job.data_path)


def _with_row(ref: SeriesRef, row: dict[str, Any]) -> SeriesRef:
    """``ref`` completed with what a getSeries row of its series says (what ``ref`` already has wins)."""
    revision = Revision.of_row(row)
    return replace(
        ref,
        patient_id=ref.patient_id or text_or_none(row.get("PatientID")),
        study_instance_uid=ref.study_instance_uid or text_or_none(row.get("StudyInstanceUID")),
        image_count=ref.image_count if ref.image_count is not None else _int(row.get("ImageCount")),
        date_released=ref.date_released or revision.date_released,
        submitted=ref.submitted or revision.submitted,
    )


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None
