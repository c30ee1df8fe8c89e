"""Operators that download series (getImage) and single images (getSingleImage) to object storage.

Thin: they check their (templated) arguments when the task runs, before anything is sent or written, and
hand over to the engines in :mod:`airflow_provider_tcia.downloads.series` and
:mod:`airflow_provider_tcia.downloads.images`. See ``docs/downloads.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.compat import Asset, BaseOperator, ObjectStoragePath
from airflow_provider_tcia.downloads.images import ImageDownloader
from airflow_provider_tcia.downloads.inputs import (
    dedupe,
    refs_from_file,
    refs_from_value,
    row_fields,
    series_file,
)
from airflow_provider_tcia.downloads.layout import LAYOUTS, DownloadPlan
from airflow_provider_tcia.downloads.series import SeriesDownloader, SeriesResult
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.hooks.config import check_conn_id
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.storage import as_path
from airflow_provider_tcia.task_errors import fail_fast

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Downloads of one task share the hook's connection pool (32 connections).
MAX_CONCURRENCY = 32
#: Series UIDs listed in an asset event's extra (the counts are always complete).
ASSET_EXTRA_SERIES = 100


class _TciaDownloadOperator(BaseOperator):
    """What both download operators share: destination, connection, concurrency, Asset events."""

    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        max_concurrency: int = 4,
        progress_interval: float = 30.0,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.max_concurrency = max_concurrency
        self.progress_interval = progress_interval
        self.tcia_conn_id = tcia_conn_id
        self._engine: SeriesDownloader | ImageDownloader | None = None

    def on_kill(self) -> None:
        if self._engine is not None:
            self._engine.stop()

    def _checked_destination(self) -> ObjectStoragePath:
        value = self.destination
        if isinstance(value, str) and not value.strip():
            raise TciaBadRequestError("destination rendered to an empty string; give a URL such as file:///data/tcia")
        if not isinstance(value, (str, ObjectStoragePath)):
            raise TciaBadRequestError(f"destination must be a URL or an ObjectStoragePath, not {type(value).__name__}")
        try:
            return as_path(value.rstrip("/") if isinstance(value, str) else value)
        except ValueError as err:
            raise TciaBadRequestError(f"destination={value!r}: {err}") from None

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

    XCom: per series ``{"series_instance_uid", "path", "bytes", "files", "verified", "skipped"}`` — one dict
    when a single UID or row was given, else a list. Assets in ``outlets`` get an event whose ``extra``
    lists what was written.

    :param destination: the root folder: ``file:///data/tcia``, ``s3://aws_conn@bucket/prefix`` … Templated.
    :param series_instance_uids: see above. Templated.
    :param series_from: see above. Templated.
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
    :param progress_interval: seconds between progress lines in the log (bytes, MB/s, files, ETA).
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    template_fields: Sequence[str] = ("series_instance_uids", "series_from", "destination", "layout", "tcia_conn_id")
    template_fields_renderers = {"series_instance_uids": "json"}

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        series_instance_uids: Any = None,
        series_from: Any = None,
        layout: str = "zip",
        nested: bool = False,
        max_concurrency: int = 4,
        md5: bool = True,
        check_count: bool = True,
        check_dicom: bool | None = None,
        progress_interval: float = 30.0,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination,
            max_concurrency=max_concurrency,
            progress_interval=progress_interval,
            tcia_conn_id=tcia_conn_id,
            **kwargs,
        )
        self.series_instance_uids = series_instance_uids
        self.series_from = series_from
        self.layout = layout
        self.nested = nested
        self.md5 = md5
        self.check_count = check_count
        self.check_dicom = check_dicom

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        # Bad input, a refused key or series the server does not know fail the same way every time: fail now,
        # without Airflow retries; a server failure keeps them (a retry skips what is already verified).
        with fail_fast():
            destination, conn_id = self._checked_common()
            plan = DownloadPlan(destination, self._checked_layout(), bool(self.nested))
            refs = dedupe(self._checked_refs())
            for ref in refs:  # what is known now is checked now: a bad folder name fails before sending
                if not plan.nested or (ref.patient_id and ref.study_instance_uid):
                    plan.data_path(ref)
            hook = TciaHook(conn_id)
            self._engine = SeriesDownloader(
                hook,
                plan,
                md5=bool(self.md5),
                check_count=bool(self.check_count),
                check_dicom=None if self.check_dicom is None else bool(self.check_dicom),
                progress_interval=float(self.progress_interval),
                log=self.log,
            )
            try:
                results = self._engine.run(refs, max_concurrency=self.max_concurrency)
            finally:
                hook.close()
        self._record_asset_events(context, _asset_extra(destination, plan.layout, results))
        summaries = [r.summary() for r in results]
        single = self.series_from is None and isinstance(self.series_instance_uids, (str, Mapping))
        return summaries[0] if single else summaries

    def _checked_layout(self) -> str:
        if not isinstance(self.layout, str) or self.layout.strip().lower() not in LAYOUTS:
            raise TciaBadRequestError(f"layout={self.layout!r} is not one of {', '.join(LAYOUTS)}")
        return self.layout.strip().lower()

    def _checked_refs(self) -> list:
        given = [name for name in ("series_instance_uids", "series_from") if getattr(self, name) is not None]
        if len(given) != 1:
            raise TciaBadRequestError(
                "give exactly one of series_instance_uids (UIDs or getSeries rows) and series_from (the file "
                f"getSeries wrote); got {' and '.join(given) or 'neither'}"
            )
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
    cannot be checked (a private transfer syntax, on the legacy API); the log says why.

    :param series_instance_uid: the series. Templated.
    :param sop_instance_uids: a SOPInstanceUID, a list of them, or the rows of getSOPInstanceUIDs
        (:class:`~airflow_provider_tcia.operators.query.TciaGetSOPInstanceUIDsOperator`'s XCom). Templated.
    :param destination: the root folder (any object storage URL). Templated.
    :param md5: on NBIA, verify each image against getMD5HashForImage (one request per image); ``False``
        checks its DICOM structure instead, as on the legacy API.
    :param max_concurrency: images downloaded at once (1 to 32).
    :param progress_interval: seconds between progress lines.
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    template_fields: Sequence[str] = ("series_instance_uid", "sop_instance_uids", "destination", "tcia_conn_id")
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
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            destination=destination,
            max_concurrency=max_concurrency,
            progress_interval=progress_interval,
            tcia_conn_id=tcia_conn_id,
            **kwargs,
        )
        self.series_instance_uid = series_instance_uid
        self.sop_instance_uids = sop_instance_uids
        self.md5 = md5

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        with fail_fast():  # as the series operator: what no retry can fix fails now
            destination, conn_id = self._checked_common()
            series = check_uid(self.series_instance_uid, "series_instance_uid")
            sops = self._checked_sops()
            hook = TciaHook(conn_id)
            self._engine = ImageDownloader(
                hook, destination, md5=bool(self.md5), progress_interval=float(self.progress_interval), log=self.log
            )
            try:
                results = self._engine.run(series, sops, max_concurrency=self.max_concurrency)
            finally:
                hook.close()
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
        return results[0] if isinstance(self.sop_instance_uids, (str, Mapping)) else results

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
