"""The engine behind :class:`~airflow_provider_tcia.operators.download.TciaDownloadImageOperator`:
getSingleImage to ``<destination>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, streamed, verified and atomic.

A single image is verified before it is moved into place (or called verified):

* NBIA: its MD5, computed as it streams, must be the one NBIA stores for it (getMD5HashForImage, asked once
  per image). Should NBIA answer without an MD5, or ``md5=False``, the structural check below is used instead.
* the legacy API, which offers no MD5: its DICOM structure, checked as it streams
  (:class:`~airflow_provider_tcia.downloads.verify.dicom.DicomStructureChecker`: every element's length fits in the
  file, native pixel data is as long as its Rows x Columns x … say, encapsulated pixel data ends with its
  delimiter). A file whose structure cannot be checked (a private transfer syntax) is stored but reported
  ``verified: False``, with a warning saying why.

Always: the body starts like a DICOM file (the hook refuses anything else), its file meta names the SOP instance
asked for (MediaStorageSOPInstanceUID), and it is as long as Content-Length says when the server sent one. A
body that fails is downloaded again, a bounded number of times with the connection's backoff, then the image
fails with what came back; nothing is left at its path.

A file already at its path is verified the same way (read whole: single images are small) and skipped if it
passes; one that does not (cut short by an older version, changed since) is removed and downloaded again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.downloads.layout import image_path
from airflow_provider_tcia.downloads.pool import gathered_failure, run_in_pool
from airflow_provider_tcia.downloads.progress import DownloadProgress, TaskLog
from airflow_provider_tcia.downloads.verify.dicom import DicomStructureChecker
from airflow_provider_tcia.exceptions import (
    BodyFailure,
    DownloadStopped,
    TciaCorruptPayloadError,
    TciaIncompleteResponseError,
)
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.storage import atomic_writer

_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"}
#: Bytes of a file kept to read its file meta.
_HEAD = 64 << 10
#: Block size when a stored file is read back.
_READ = 1 << 20


def media_storage_sop_instance_uid(head: bytes) -> str | None:
    """(0002,0003) from a DICOM file's meta group (always explicit VR little endian), or None if absent."""
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    i = 132
    while i + 8 <= len(head):
        group, elem = struct.unpack_from("<HH", head, i)
        if group != 0x0002:
            return None
        vr = head[i + 4 : i + 6]
        if vr in _LONG_VRS:
            if i + 12 > len(head):
                return None
            (length,) = struct.unpack_from("<I", head, i + 8)
            start = i + 12
        else:
            (length,) = struct.unpack_from("<H", head, i + 6)
            start = i + 8
        if elem == 0x0003:
            return head[start : start + length].rstrip(b"\x00 ").decode("ascii", errors="replace")
        i = start + length
    return None


@dataclass(frozen=True)
class ImageCheck:
    """How one image was verified."""

    size: int
    verified: bool
    detail: str
    """What was checked (``"MD5 matches getMD5HashForImage"``), or why it could not be."""


class ImageVerifier:
    """Checks one image's bytes as they pass: against ``expected_md5`` when there is one, else its DICOM
    structure; and always that its file meta names ``sop_instance_uid``. :meth:`finish` raises
    :class:`~airflow_provider_tcia.exceptions.TciaCorruptPayloadError` (or its
    :class:`~airflow_provider_tcia.exceptions.TciaCorruptDicomError`) or returns an :class:`ImageCheck`.

    :param what: how messages name the image.
    :param md5_source: where ``expected_md5`` came from, for messages.
    """

    def __init__(
        self, sop_instance_uid: str, expected_md5: str | None, *, what: str, md5_source: str = "getMD5HashForImage"
    ) -> None:
        self.sop_instance_uid = sop_instance_uid
        self.expected_md5 = expected_md5
        self.what = what
        self.md5_source = md5_source
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False) if expected_md5 is not None else None
        self._structure = DicomStructureChecker(what) if expected_md5 is None else None
        self._head = bytearray()

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self.size += len(chunk)
        if len(self._head) < _HEAD:
            self._head += chunk[: _HEAD - len(self._head)]
            self._check_instance()
        if self._md5 is not None:
            self._md5.update(chunk)
        elif self._structure is not None:
            self._structure.feed(chunk)

    def _check_instance(self) -> None:
        found = media_storage_sop_instance_uid(bytes(self._head))
        if found is not None and found != self.sop_instance_uid:
            raise TciaCorruptPayloadError(f"{self.what} sent instance {found!r} instead")

    def finish(self) -> ImageCheck:
        if self._md5 is not None:
            digest = self._md5.hexdigest()
            if digest != self.expected_md5:
                raise TciaCorruptPayloadError(
                    f"{self.what}: the {self.size:,} bytes received have MD5 {digest}, but {self.md5_source} "
                    f"says {self.expected_md5}"
                )
            return ImageCheck(self.size, True, f"MD5 matches {self.md5_source}")
        assert self._structure is not None  # (checked by MD5 or by structure)
        result = self._structure.finish()
        return ImageCheck(self.size, result.checked, result.describe())


class ImageDownloader:
    """Downloads single DICOM instances with bounded retries, verified, skipping those already present and
    still verified.

    :param hook: the TCIA hook.
    :param destination: the root folder; files go to ``<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` under it.
    :param md5: on NBIA, verify each image against the MD5 NBIA stores for it (getMD5HashForImage); with
        ``False``, or on the legacy API (which has none), its DICOM structure is checked instead.
    :param progress_interval: seconds between progress lines.
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: TciaHook,
        destination: ObjectStoragePath,
        *,
        md5: bool = True,
        progress_interval: float = 30.0,
        log: TaskLog | None = None,
    ) -> None:
        self.hook = hook
        self.destination = destination
        self.md5 = md5
        self.log: TaskLog = log or logging.getLogger(__name__)
        self.progress_interval = progress_interval
        self.progress = DownloadProgress(self.log, total_series=0, interval=progress_interval, noun="images")
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(
        self, series_instance_uid: str, sop_instance_uids: Sequence[str], *, max_concurrency: int = 1
    ) -> list[dict]:
        """Download each instance of one series; failures are raised together once all are done."""
        _ = self.hook.config, self.hook.session
        self.progress = DownloadProgress(
            self.log, total_series=len(sop_instance_uids), interval=self.progress_interval, noun="images"
        )
        workers = max(1, min(max_concurrency, len(sop_instance_uids)))
        results, failures = run_in_pool(
            functools.partial(self.download, series_instance_uid), sop_instance_uids, workers, self._stop, "tcia-image"
        )
        self.log.info("download summary: %s", self.progress.summary())
        if failures:
            raise gathered_failure(failures, len(sop_instance_uids), "images")
        return [results[sop] for sop in sop_instance_uids]

    def download(self, series_instance_uid: str, sop_instance_uid: str) -> dict[str, Any]:
        path = image_path(self.destination, series_instance_uid, sop_instance_uid)
        summary = {"series_instance_uid": series_instance_uid, "sop_instance_uid": sop_instance_uid, "path": str(path)}
        try:
            expected_md5 = self._expected_md5(sop_instance_uid)
            existing = self._existing(path, sop_instance_uid, expected_md5)
            if existing is not None:
                if existing.verified:
                    self.log.info(
                        "image %s skipped: already present and verified (%s) at %s", sop_instance_uid, existing.detail,
                        path,
                    )  # fmt: skip
                else:
                    self.log.warning(
                        "image %s skipped: already present at %s, NOT verified: %s", sop_instance_uid, path,
                        existing.detail,
                    )  # fmt: skip
                self.progress.series_finished(skipped=True, unverified=not existing.verified)
                return {**summary, "bytes": existing.size, "verified": existing.verified, "skipped": True}
            check = self._with_retries(series_instance_uid, sop_instance_uid, path, expected_md5)
        except BaseException:
            self.progress.series_finished(failed=True)
            raise
        self.progress.series_finished(unverified=not check.verified)
        return {**summary, "bytes": check.size, "verified": check.verified, "skipped": False}

    def _expected_md5(self, sop_instance_uid: str) -> str | None:
        """NBIA's MD5 of the image, or None when it is to be checked by its structure (the legacy API,
        ``md5=False``, or NBIA has no MD5 for it)."""
        if not self.md5 or not self.hook.config.generation.offers_md5():
            return None
        found = self.hook.get_md5_hash_for_image(sop_instance_uid)
        if found is None:
            self.log.warning(
                "image %s: getMD5HashForImage gave no MD5; its DICOM structure is checked instead", sop_instance_uid
            )
        return found

    def _existing(self, path: ObjectStoragePath, sop_instance_uid: str, expected_md5: str | None) -> ImageCheck | None:
        """The check of the file already at ``path`` (read whole), or None if there is none or it fails (it is
        then removed: only what passes stays where a verified image belongs)."""
        verifier = ImageVerifier(sop_instance_uid, expected_md5, what=f"the stored {path.name}")
        try:
            with path.open("rb") as fh:
                for block in iter(functools.partial(fh.read, _READ), b""):
                    verifier.feed(block)
        except FileNotFoundError:
            return None
        try:
            return verifier.finish()
        except TciaCorruptPayloadError as err:
            self.log.warning("image %s is downloaded again: %s", sop_instance_uid, err)
            path.unlink(missing_ok=True)
            return None

    def _with_retries(
        self, series_instance_uid: str, sop_instance_uid: str, path: ObjectStoragePath, expected_md5: str | None
    ) -> ImageCheck:
        attempts = 0

        def download_once() -> ImageCheck:
            nonlocal attempts
            attempts += 1
            opened = False
            try:
                with self.hook.stream_single_image(series_instance_uid, sop_instance_uid) as stream:
                    opened = True
                    return self._receive(stream, sop_instance_uid, path, expected_md5)
            except (TciaIncompleteResponseError, TciaCorruptPayloadError) as err:
                if not opened:
                    raise  # (opening the request is retried by the hook itself)
                raise BodyFailure(err) from err

        def pause(delay: float) -> None:
            if self._stop.wait(delay):
                raise DownloadStopped(f"stopped while waiting to retry image {sop_instance_uid}")

        try:
            return retry_call(
                self.hook.config.retry, download_once, retry_on=(BodyFailure,),
                what=f"downloading image {sop_instance_uid}", log=self.log, sleep=pause,
            )  # fmt: skip
        except BodyFailure as failure:
            err = failure.error
            raise type(err)(f"image {sop_instance_uid}: gave up after {attempts} downloads; the last: {err}") from None

    def _receive(
        self, stream: Any, sop_instance_uid: str, path: ObjectStoragePath, expected_md5: str | None
    ) -> ImageCheck:
        what = f"getSingleImage(SOPInstanceUID={sop_instance_uid!r}) from {stream.url}"
        length = stream.headers.get("Content-Length") or stream.headers.get("content-length")
        started = time.monotonic()
        verifier = ImageVerifier(sop_instance_uid, expected_md5, what=what)
        with atomic_writer(path) as fh:
            for chunk in stream:
                if self._stop.is_set():
                    raise DownloadStopped("the download was stopped")
                verifier.feed(chunk)
                fh.write(chunk)
                self.progress.add(received=len(chunk), data=len(chunk))
            if length is not None and length.isdigit() and int(length) != verifier.size:
                raise TciaCorruptPayloadError(
                    f"{what}: {verifier.size:,} bytes received, Content-Length says {int(length):,}"
                )
            check = verifier.finish()  # (raises before the file is moved into place)
        self.progress.add(files=int(check.verified))
        seconds = time.monotonic() - started
        if check.verified:
            self.log.info(
                "image %s: %d bytes in %.2f s, verified (%s); at %s", sop_instance_uid, check.size, seconds,
                check.detail, path,
            )  # fmt: skip
        else:
            self.log.warning(
                "image %s: %d bytes in %.2f s, stored at %s but NOT verified: %s", sop_instance_uid, check.size,
                seconds, path, check.detail,
            )  # fmt: skip
        return check
