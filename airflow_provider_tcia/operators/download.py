"""Operators that download series (getImage) and single images (getSingleImage) to object storage.

Thin: they check their (templated) arguments when the task runs, before anything is sent or written, and
hand over to the engines in :mod:`airflow_provider_tcia.downloads.series` and
:mod:`airflow_provider_tcia.downloads.images`. See ``docs/downloads.md``.

What they return follows the provider's one XCom policy (:mod:`airflow_provider_tcia.operators.xcom`): a
download whose summaries might exceed ``max_xcom_bytes`` is refused before anything is sent, never after it
succeeded; ``summary_path`` or ``do_xcom_push=False`` keep the full result out of XCom.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.compat import Asset, BaseOperator, ObjectStoragePath
from airflow_provider_tcia.downloads.images import ImageDownloader
from airflow_provider_tcia.downloads.inputs import (
    SeriesRef,
    dedupe,
    refs_from_file,
    refs_from_value,
    row_fields,
    series_file,
)
from airflow_provider_tcia.downloads.layout import LAYOUTS, DownloadPlan, image_path
from airflow_provider_tcia.downloads.series import SeriesDownloader, SeriesResult
from airflow_provider_tcia.downloads.tcia_manifest import iter_manifest, manifest_file
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaResultTooLargeError
from airflow_provider_tcia.hooks.config import check_conn_id
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.operators.output import write_rows
from airflow_provider_tcia.operators.xcom import DEFAULT_MAX_XCOM_BYTES, MAX_INT, check_max_xcom_bytes, json_bytes
from airflow_provider_tcia.storage import as_path, atomic_writer
from airflow_provider_tcia.task_errors import fail_fast

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Downloads of one task share the hook's connection pool (32 connections).
MAX_CONCURRENCY = 32
#: Series UIDs listed in an asset event's extra (the counts are always complete).
ASSET_EXTRA_SERIES = 100
#: What stands for a PatientID or StudyInstanceUID not known before the download (DICOM's longest: 64
#: characters) when a summary's size is bounded.
_UNKNOWN_SEGMENT = "X" * 64


class _TciaDownloadOperator(BaseOperator):
    """What both download operators share: destination, connection, concurrency, Asset events, and what goes
    to XCom.

    Why the XCom cap is applied before anything is sent: a download's result is one small summary per series
    (image) whose size is known up to its byte and file counts once the input is read — UIDs, paths and
    layout are known, counts are at most :data:`~airflow_provider_tcia.operators.xcom.MAX_INT` — so a bound
    of the whole result costs no request. Refusing then wastes nothing; refusing after the downloads would
    throw away hours of verified work (and a retry would skip it all and fail the same way), and capping
    silently would drop results.
    """

    ui_color = "#d5f5e3"
    #: What one result is called in messages.
    noun = "series"
    #: Where each result is when XCom does not carry it (for the message of a refusal).
    at_destination = "every series' manifest (<SeriesInstanceUID>.manifest.json beside its data) holds its result"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        max_concurrency: int = 4,
        progress_interval: float = 30.0,
        summary_path: str | ObjectStoragePath | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.max_concurrency = max_concurrency
        self.progress_interval = progress_interval
        self.summary_path = summary_path
        self.max_xcom_bytes = check_max_xcom_bytes(max_xcom_bytes)
        self.tcia_conn_id = tcia_conn_id
        self._engine: SeriesDownloader | ImageDownloader | None = None

    def on_kill(self) -> None:
        if self._engine is not None:
            self._engine.stop()

    def _checked_destination(self) -> ObjectStoragePath:
        return _checked_path(self.destination, "destination", "file:///data/tcia")

    def _checked_summary_path(self) -> ObjectStoragePath | None:
        if self.summary_path is None:
            return None
        if isinstance(self.summary_path, str) and self.summary_path.strip().endswith("/"):
            raise TciaBadRequestError(
                f"summary_path={self.summary_path!r} names a folder; give the file to write, e.g. "
                f"{self.summary_path.strip()}summaries.json"
            )
        return _checked_path(self.summary_path, "summary_path", "file:///data/tcia/summaries.json")

    def _check_xcom_fits(
        self, bounds: list[dict[str, Any]], single: bool, summary_path: ObjectStoragePath | None
    ) -> None:
        """Refuse, before anything is sent, a result that might not fit in XCom. ``bounds``: each result's
        summary as large as it can be (see the class docstring)."""
        if not self.do_xcom_push:
            return
        size = json_bytes(self._xcom_value(bounds, single, summary_path))
        if size <= self.max_xcom_bytes:
            return
        what = f"the summaries of {len(bounds)} {self.noun}" if summary_path is None else "the summary"
        raise TciaResultTooLargeError(
            f"{what} could take up to {size} bytes of JSON, too much for XCom (max_xcom_bytes="
            f"{self.max_xcom_bytes}); nothing was sent or downloaded. "
            + (
                f"Give summary_path= (e.g. '{self._example_summary_path()}'): the full list is written there "
                f"and XCom gets only its path and the counts; or do_xcom_push=False: {self.at_destination}; "
                f"or map the operator over the {self.noun} (.expand(...)); or raise max_xcom_bytes"
                if summary_path is None
                else "raise max_xcom_bytes, or set do_xcom_push=False"
            )
        )

    def _example_summary_path(self) -> str:
        destination = self.destination if isinstance(self.destination, str) else str(self.destination)
        return f"{destination.rstrip('/')}/summaries.json"

    def _xcom_value(
        self, summaries: list[dict[str, Any]], single: bool, summary_path: ObjectStoragePath | None
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """What the task returns: the summaries (one dict for a single input), or with ``summary_path`` where
        they are and the counts."""
        if summary_path is None:
            return summaries[0] if single else summaries
        return {
            "summary_path": str(summary_path),
            "count": len(summaries),
            "downloaded": sum(1 for s in summaries if not s["skipped"]),
            "skipped": sum(1 for s in summaries if s["skipped"]),
            "verified": sum(1 for s in summaries if s["verified"]),
            "bytes": sum(s["bytes"] for s in summaries),
        }

    def _returned(
        self, summaries: list[dict[str, Any]], single: bool, summary_path: ObjectStoragePath | None
    ) -> dict[str, Any] | list[dict[str, Any]] | None:
        """The task's return value once every download succeeded: never refused (its bound was checked)."""
        if summary_path is not None:
            with atomic_writer(summary_path) as fh:
                _, size = write_rows(fh, summaries, "json")
            self.log.info("summaries of %d %s written to %s (%d bytes)", len(summaries), self.noun, summary_path, size)
        elif not self.do_xcom_push:
            self.log.info("%d %s done (do_xcom_push=False: nothing pushed)", len(summaries), self.noun)
            return None
        return self._xcom_value(summaries, single, summary_path)

    def _checked_common(self) -> tuple[ObjectStoragePath, str]:
        conn_id = check_conn_id(self.tcia_conn_id)
        c = self.max_concurrency
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_CONCURRENCY:
            raise TciaBadRequestError(f"max_concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, not {c!r}")
        p = self.progress_interval
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0:
            raise TciaBadRequestError(f"progress_interval must be a number of seconds >= 0, not {p!r}")
        return self._checked_destination(), conn_id

    def _record_asset_events(self, context: Context, extra: dict[str, Any]) -> None:
        """Attach what was written to the event of every Asset in ``outlets``."""
        assets = [o for o in self.outlets or () if isinstance(o, Asset)]
        if not assets:
            return
        events = context["outlet_events"]
        for asset in assets:
            events[asset].extra = dict(extra)


class TciaDownloadSeriesOperator(_TciaDownloadOperator):
    """Download series (getImage) to object storage: streamed, verified, atomic and idempotent.

    Each series is streamed from the socket to a temporary object beside its destination while its zip is
    checked (structure, CRC-32 of every file), then its DICOM files are compared with ImageCount /
    ObjectCount and with ``md5hashes.csv`` (NBIA), and only then is it moved into place and its manifest
    ``<SeriesInstanceUID>.manifest.json`` written beside it. A truncated or corrupt zip (TCIA sends those
    with HTTP 200) or a body cut off mid-way is downloaded again, up to the connection's ``max_retries``
    with its backoff; then the task fails with what was asked and what came back. A series whose manifest
    is there and whose data still matches it is skipped ("skipped: already present and verified").

    Input — exactly one of:

    * ``series_instance_uids``: a SeriesInstanceUID, a list of them, a getSeries row or a list of rows (the
      XCom of :class:`~airflow_provider_tcia.operators.query.TciaGetSeriesOperator`: ImageCount,
      PatientID and StudyInstanceUID are then used for the checks and the nested layout). Map the operator
      over a list (``.expand(series_instance_uids=...)``) for one task per series.
    * ``series_from``: the file TciaGetSeriesOperator wrote at ``output_path`` (json, jsonl or csv; read as it
      streams), as a URL or that operator's XCom ``{"path", "format", …}``.
    * ``manifest``: a TCIA manifest on any object storage — a ``.tcia`` (NBIA Data Retriever's), or a ``.csv`` /
      ``.tsv`` with a ``SeriesInstanceUID`` or ``Series UID`` column — as a URL or the XCom of
      :class:`~airflow_provider_tcia.operators.manifest.TciaWriteManifestOperator`; read as it streams and
      checked whole before anything is sent (:mod:`airflow_provider_tcia.downloads.tcia_manifest`).

    XCom: per series ``{"series_instance_uid", "path", "bytes", "files", "verified", "skipped"}`` — one dict
    when a single UID or row was given, else a list — capped at ``max_xcom_bytes`` like every operator's
    (:mod:`airflow_provider_tcia.operators.xcom`): each summary's size is bounded before anything is sent, and
    a download whose summaries might exceed the cap is refused then
    (:class:`~airflow_provider_tcia.exceptions.TciaResultTooLargeError`, no Airflow retries), never after
    it succeeded. With ``summary_path`` the list is written there instead and XCom gets
    ``{"summary_path", "count", "downloaded", "skipped", "verified", "bytes"}``; with ``do_xcom_push=False``
    nothing is pushed (each series' manifest holds its result). Assets in ``outlets`` get an event whose
    ``extra`` lists what was written.

    :param destination: the root folder: ``file:///data/tcia``, ``s3://aws_conn@bucket/prefix`` … Templated.
    :param series_instance_uids: see above. Templated.
    :param series_from: see above. Templated.
    :param manifest: see above. Templated.
    :param layout: ``zip`` (``<dest>/<SeriesInstanceUID>.zip``) or ``extract``
        (``<dest>/<SeriesInstanceUID>/<files>``). Templated.
    :param nested: put each series under ``<dest>/<PatientID>/<StudyInstanceUID>/`` (looked up with
        getSeries when the input does not carry them).
    :param max_concurrency: series downloaded at once within this task (1 to 32).
    :param md5: ask for ``md5hashes.csv`` where the API offers it (NBIA) and check every file's MD5.
    :param check_count: when a series' ImageCount is unknown and no ``md5hashes.csv`` will list its files
        (legacy API, or ``md5=False``), ask getSeriesSize for its ObjectCount to check the file count.
    :param check_dicom: check each DICOM file's structure as it streams (every element's length fits, pixel
        data as long as Rows x Columns x … say; see ``docs/downloads.md``). ``None`` (the default): where no
        ``md5hashes.csv`` vouches for the files — the legacy API, or ``md5=False``.
    :param check_revisions: download a series again when the server has revised it since the copy at the
        destination was made (a newer DateReleased or submission timestamp, or another ImageCount; getSeries
        rows carry them, and for a bare UID already present NBIA's getSeries is asked once — see
        ``docs/downloads.md``). ``False``: a series already present and verified is always skipped.
    :param progress_interval: seconds between progress lines in the log (bytes, MB/s, files, ETA).
    :param summary_path: write the summaries there (a JSON array, atomically, once every series is done) and
        push only its path and the counts. A mapped task needs a path of its own (``{{ ti.map_index }}``).
        Templated.
    :param max_xcom_bytes: the most JSON the task may push (default 1 MiB); see above.
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    template_fields: Sequence[str] = (
        "series_instance_uids", "series_from", "manifest", "destination", "layout", "summary_path", "tcia_conn_id",
    )  # fmt: skip
    template_fields_renderers = {"series_instance_uids": "json"}

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        series_instance_uids: Any = None,
        series_from: Any = None,
        manifest: Any = None,
        layout: str = "zip",
        nested: bool = False,
        max_concurrency: int = 4,
        md5: bool = True,
        check_count: bool = True,
        check_dicom: bool | None = None,
        check_revisions: bool = True,
        progress_interval: float = 30.0,
        summary_path: str | ObjectStoragePath | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination,
            max_concurrency=max_concurrency,
            progress_interval=progress_interval,
            summary_path=summary_path,
            max_xcom_bytes=max_xcom_bytes,
            tcia_conn_id=tcia_conn_id,
            **kwargs,
        )
        self.series_instance_uids = series_instance_uids
        self.series_from = series_from
        self.manifest = manifest
        self.layout = layout
        self.nested = nested
        self.md5 = md5
        self.check_count = check_count
        self.check_dicom = check_dicom
        self.check_revisions = check_revisions

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]] | None:
        # Bad input, a refused key, series the server does not know or a result too large for XCom fail the same
        # way every time: fail now, without Airflow retries; a server failure keeps them (a retry skips what is
        # already verified).
        with fail_fast():
            destination, conn_id = self._checked_common()
            plan = DownloadPlan(destination, self._checked_layout(), bool(self.nested))
            refs = dedupe(self._checked_refs())
            summary_path = self._checked_summary_path()
            single = self.series_instance_uids is not None and isinstance(self.series_instance_uids, (str, Mapping))
            # What is known now is checked now, before sending: a bad folder name, and what XCom would get.
            self._check_xcom_fits([_series_bound(plan, ref) for ref in refs], single, summary_path)
            with contextlib.closing(TciaHook(conn_id)) as hook:  # its session closes with the task, failed or not
                self._engine = SeriesDownloader(
                    hook,
                    plan,
                    md5=bool(self.md5),
                    check_count=bool(self.check_count),
                    check_revisions=bool(self.check_revisions),
                    check_dicom=None if self.check_dicom is None else bool(self.check_dicom),
                    progress_interval=float(self.progress_interval),
                    log=self.log,
                )
                results = self._engine.run(refs, max_concurrency=self.max_concurrency)
        self._record_asset_events(context, _asset_extra(destination, plan.layout, results))
        return self._returned([r.summary() for r in results], single, summary_path)

    def _checked_layout(self) -> str:
        if not isinstance(self.layout, str) or self.layout.strip().lower() not in LAYOUTS:
            raise TciaBadRequestError(f"layout={self.layout!r} is not one of {', '.join(LAYOUTS)}")
        return self.layout.strip().lower()

    def _checked_refs(self) -> list:
        given = [
            name for name in ("series_instance_uids", "series_from", "manifest") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise TciaBadRequestError(
                "give exactly one of series_instance_uids (UIDs or getSeries rows), series_from (the file "
                f"getSeries wrote) and manifest (a .tcia, .csv or .tsv manifest); got {' and '.join(given) or 'none'}"
            )
        if self.manifest is not None:
            path, fmt = manifest_file(self.manifest)
            refs = list(iter_manifest(path, fmt))  # checked whole (a bad line fails) before anything is sent
            self.log.info("manifest %s: %d series", path, len(refs))
            return refs
        if self.series_from is not None:
            path, fmt = series_file(self.series_from)
            refs = list(refs_from_file(path, fmt))
            if not refs:
                raise TciaBadRequestError(f"series_from ({path}) lists no series")
            return refs
        return refs_from_value(self.series_instance_uids)


class TciaDownloadImageOperator(_TciaDownloadOperator):
    """Download single DICOM instances (getSingleImage) of one series to
    ``<destination>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``: streamed, verified before it is moved into
    place — on NBIA against the MD5 it stores for the image (getMD5HashForImage), on the legacy API (no MD5) by
    its DICOM structure; always a DICOM file whose meta header names the instance asked for, as long as
    Content-Length says — and atomic. A body that fails is downloaded again (bounded, with backoff), then the
    image fails with nothing left at its path. A file already there is verified the same way and skipped if it
    passes, downloaded again if not.

    XCom: per image ``{"series_instance_uid", "sop_instance_uid", "path", "bytes", "verified", "skipped"}`` —
    one dict for a single SOPInstanceUID, else a list. ``verified`` is False only for a file whose structure
    cannot be checked (a private transfer syntax, on the legacy API); the log says why. Capped at
    ``max_xcom_bytes`` before anything is sent, with ``summary_path`` and ``do_xcom_push=False``, as for
    :class:`TciaDownloadSeriesOperator` (without XCom, each image's result is its file at its path).

    :param series_instance_uid: the series. Templated.
    :param sop_instance_uids: a SOPInstanceUID, a list of them, or the rows of getSOPInstanceUIDs
        (:class:`~airflow_provider_tcia.operators.query.TciaGetSOPInstanceUIDsOperator`'s XCom). Templated.
    :param destination: the root folder (any object storage URL). Templated.
    :param md5: on NBIA, verify each image against getMD5HashForImage (one request per image); ``False``
        checks its DICOM structure instead, as on the legacy API.
    :param max_concurrency: images downloaded at once (1 to 32).
    :param progress_interval: seconds between progress lines.
    :param summary_path: write the summaries there and push only its path and the counts. Templated.
    :param max_xcom_bytes: the most JSON the task may push (default 1 MiB).
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    noun = "images"
    at_destination = (
        "each image is at <destination>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm, verified before it was moved there"
    )
    template_fields: Sequence[str] = (
        "series_instance_uid", "sop_instance_uids", "destination", "summary_path", "tcia_conn_id",
    )  # fmt: skip
    template_fields_renderers = {"sop_instance_uids": "json"}

    def __init__(
        self,
        *,
        series_instance_uid: str,
        sop_instance_uids: Any,
        destination: str | ObjectStoragePath,
        md5: bool = True,
        max_concurrency: int = 4,
        progress_interval: float = 30.0,
        summary_path: str | ObjectStoragePath | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination,
            max_concurrency=max_concurrency,
            progress_interval=progress_interval,
            summary_path=summary_path,
            max_xcom_bytes=max_xcom_bytes,
            tcia_conn_id=tcia_conn_id,
            **kwargs,
        )
        self.series_instance_uid = series_instance_uid
        self.sop_instance_uids = sop_instance_uids
        self.md5 = md5

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]] | None:
        with fail_fast():  # as the series operator: what no retry can fix fails now
            destination, conn_id = self._checked_common()
            series = check_uid(self.series_instance_uid, "series_instance_uid")
            sops = self._checked_sops()
            summary_path = self._checked_summary_path()
            single = isinstance(self.sop_instance_uids, (str, Mapping))
            self._check_xcom_fits([_image_bound(destination, series, sop) for sop in sops], single, summary_path)
            with contextlib.closing(TciaHook(conn_id)) as hook:
                self._engine = ImageDownloader(
                    hook, destination, md5=bool(self.md5), progress_interval=float(self.progress_interval), log=self.log
                )
                results = self._engine.run(series, sops, max_concurrency=self.max_concurrency)
        written = [r["sop_instance_uid"] for r in results if not r["skipped"]]
        self._record_asset_events(
            context,
            {
                "destination": str(destination),
                "series_instance_uid": series,
                "downloaded": len(written),
                "skipped": len(results) - len(written),
                "sop_instance_uids": written[:ASSET_EXTRA_SERIES],
            },
        )
        return self._returned(results, single, summary_path)

    def _checked_sops(self) -> list[str]:
        value = self.sop_instance_uids
        items = [value] if isinstance(value, (str, Mapping)) else value
        if items is None or isinstance(items, (bytes, bytearray)) or not hasattr(items, "__iter__"):
            raise TciaBadRequestError(
                f"sop_instance_uids must be a SOPInstanceUID, a list of them or getSOPInstanceUIDs rows, not {shown(value)}"
            )
        sops: list[str] = []
        for i, item in enumerate(items):
            what = f"sop_instance_uids[{i}]"
            if isinstance(item, Mapping):
                fields = row_fields(item)
                if "sopinstanceuid" not in fields:
                    raise TciaBadRequestError(f"{what} has no SOPInstanceUID (its fields: {', '.join(map(str, item))})")
                item = fields["sopinstanceuid"]
            sops.append(check_uid(item, what))
        if not sops:
            raise TciaBadRequestError("sop_instance_uids is empty: there is no image to download")
        return list(dict.fromkeys(sops))


def _checked_path(value: Any, name: str, example: str) -> ObjectStoragePath:
    if isinstance(value, str) and not value.strip():
        raise TciaBadRequestError(f"{name} rendered to an empty string; give a URL such as {example}")
    if not isinstance(value, (str, ObjectStoragePath)):
        raise TciaBadRequestError(f"{name} must be a URL or an ObjectStoragePath, not {type(value).__name__}")
    try:
        return as_path(value.strip().rstrip("/") if isinstance(value, str) else value)
    except ValueError as err:
        raise TciaBadRequestError(f"{name}={value!r}: {err}") from None


def _series_bound(plan: DownloadPlan, ref: SeriesRef) -> dict[str, Any]:
    """The largest summary ``ref`` can have (its counts unknown until it is downloaded). Its path is checked
    now where the nested layout's folders are known; where they are not (looked up later), DICOM's longest
    PatientID and StudyInstanceUID stand in for them."""
    if plan.nested and not (ref.patient_id and ref.study_instance_uid):
        ref = dataclasses.replace(ref, patient_id=_UNKNOWN_SEGMENT, study_instance_uid=_UNKNOWN_SEGMENT)
    path = str(plan.data_path(ref))
    return SeriesResult(
        ref.series_instance_uid, path, MAX_INT, MAX_INT, verified=False, skipped=False, manifest=""
    ).summary()


def _image_bound(destination: ObjectStoragePath, series_instance_uid: str, sop_instance_uid: str) -> dict[str, Any]:
    """The largest summary an image can have (as :class:`~airflow_provider_tcia.downloads.images.ImageDownloader`
    makes it; ``tests/operators/test_download_operators.py`` checks that the two agree)."""
    return {
        "series_instance_uid": series_instance_uid,
        "sop_instance_uid": sop_instance_uid,
        "path": str(image_path(destination, series_instance_uid, sop_instance_uid)),
        "bytes": MAX_INT,
        "verified": False,
        "skipped": False,
    }


def _asset_extra(destination: ObjectStoragePath, layout: str, results: list[SeriesResult]) -> dict[str, Any]:
    written = [r for r in results if not r.skipped]
    return {
        "destination": str(destination),
        "layout": layout,
        "downloaded": len(written),
        "skipped": len(results) - len(written),
        "bytes": sum(r.bytes for r in written),
        "series": [r.series_instance_uid for r in written][:ASSET_EXTRA_SERIES],
    }
