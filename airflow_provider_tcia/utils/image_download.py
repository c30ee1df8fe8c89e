"""The engine behind :class:`~airflow_provider_tcia.operators.download.TciaDownloadImageOperator`:
getSingleImage to ``<destination>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, streamed and atomic.

Checks: the body starts like a DICOM file (the hook refuses anything else), its file meta says it is the
SOP instance asked for (MediaStorageSOPInstanceUID), and it is as long as Content-Length says when the
server sent one. A file already at its path was written whole (files appear only once complete); if its
header names the right instance, it is skipped.
"""

from __future__ import annotations

import functools
import logging
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaCorruptPayloadError
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.hooks.transport import TciaIncompleteResponseError
from airflow_provider_tcia.utils.download import BodyFailure, DownloadStopped, gathered_failure, run_in_pool
from airflow_provider_tcia.utils.progress import DownloadProgress
from airflow_provider_tcia.utils.storage import atomic_writer

_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN", b"SV", b"UV"}


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


def image_path(destination: ObjectStoragePath, series_instance_uid: str, sop_instance_uid: str) -> ObjectStoragePath:
    return destination / series_instance_uid / f"{sop_instance_uid}.dcm"


class ImageDownloader:
    """Downloads single DICOM instances with bounded retries, skipping those already present.

    :param hook: the TCIA hook.
    :param destination: the root folder; files go to ``<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` under it.
    :param progress_interval: seconds between progress lines.
    :param log: the task's logger.
    """

    def __init__(
        self,
        hook: TciaHook,
        destination: ObjectStoragePath,
        *,
        progress_interval: float = 30.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.hook = hook
        self.destination = destination
        self.log = log or logging.getLogger(__name__)
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
            existing = self._existing(path, sop_instance_uid)
            if existing is not None:
                self.log.info("image %s skipped: already present and verified at %s", sop_instance_uid, path)
                self.progress.series_finished(skipped=True)
                return {**summary, "bytes": existing, "verified": True, "skipped": True}
            size = self._with_retries(series_instance_uid, sop_instance_uid, path)
        except BaseException:
            self.progress.series_finished(failed=True)
            raise
        self.progress.series_finished()
        return {**summary, "bytes": size, "verified": True, "skipped": False}

    def _existing(self, path: ObjectStoragePath, sop_instance_uid: str) -> int | None:
        try:
            with path.open("rb") as fh:
                head = fh.read(64 << 10)
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return size if media_storage_sop_instance_uid(head) == sop_instance_uid else None

    def _with_retries(self, series_instance_uid: str, sop_instance_uid: str, path: ObjectStoragePath) -> int:
        attempts = 0

        def download_once() -> int:
            nonlocal attempts
            attempts += 1
            opened = False
            try:
                with self.hook.stream_single_image(series_instance_uid, sop_instance_uid) as stream:
                    opened = True
                    return self._receive(stream, sop_instance_uid, path)
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

    def _receive(self, stream: Any, sop_instance_uid: str, path: ObjectStoragePath) -> int:
        what = f"getSingleImage(SOPInstanceUID={sop_instance_uid!r})"
        length = stream.headers.get("Content-Length") or stream.headers.get("content-length")
        started = time.monotonic()
        size = 0
        head = b""
        with atomic_writer(path) as fh:
            for chunk in stream:
                if self._stop.is_set():
                    raise DownloadStopped("the download was stopped")
                if len(head) < 64 << 10:
                    head += chunk[: (64 << 10) - len(head)]
                fh.write(chunk)
                size += len(chunk)
                self.progress.add(received=len(chunk), data=len(chunk))
            found = media_storage_sop_instance_uid(head)
            if found is not None and found != sop_instance_uid:
                raise TciaCorruptPayloadError(f"{what} from {stream.url} sent instance {found!r} instead")
            if length is not None and length.isdigit() and int(length) != size:
                raise TciaCorruptPayloadError(
                    f"{what} from {stream.url}: {size:,} bytes received, Content-Length says {int(length):,}"
                )
        self.progress.add(files=1)
        self.log.info(
            "image %s: %d bytes in %.2f s, verified; at %s", sop_instance_uid, size, time.monotonic() - started, path
        )
        return size
