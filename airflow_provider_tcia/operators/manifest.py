"""TciaWriteManifestOperator: a TCIA download manifest (``.tcia``, or a CSV / TSV series list) written to object
storage, atomically, for NBIA Data Retriever, tcia_utils or this provider's download operator (``manifest=``).

On an NBIA connection the manifest is NBIA's own, from its manifest endpoints (getManifestForCollection,
getManifestText); on the legacy API it is built here in the same layout (ManifestMaker's), from getSeries for a
collection. Either way every line is checked as it streams through (:mod:`airflow_provider_tcia.downloads.
tcia_manifest`) and nothing appears at the output path unless the whole manifest was written.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.manifest_endpoints import MANIFEST_FOR_COLLECTION, MANIFEST_TEXT
from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.api.uids import shown
from airflow_provider_tcia.compat import BaseOperator, ObjectStoragePath
from airflow_provider_tcia.downloads.inputs import dedupe, refs_from_file, refs_from_value, series_file
from airflow_provider_tcia.downloads.tcia_manifest import (
    TciaManifestHeader,
    iter_tcia_lines,
    iter_text_lines,
    manifest_format,
    write_manifest,
)
from airflow_provider_tcia.exceptions import (
    TciaBadRequestError,
    TciaCorruptPayloadError,
    TciaIncompleteResponseError,
)
from airflow_provider_tcia.hooks.config import check_conn_id
from airflow_provider_tcia.hooks.manifests import stream_manifest
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.storage import as_path, atomic_writer
from airflow_provider_tcia.task_errors import fail_fast

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The inputs, exactly one of which is given.
SOURCES = ("collection", "series_instance_uids", "series_from")


class TciaWriteManifestOperator(BaseOperator):
    """Write a TCIA download manifest to object storage, atomically.

    The output's suffix chooses the format: ``.tcia`` (NBIA Data Retriever's: ManifestMaker's six header lines,
    then one SeriesInstanceUID a line), ``.csv`` or ``.tsv`` (one ``SeriesInstanceUID`` column). What it lists —
    exactly one of:

    * ``collection``: every series of a collection — NBIA: getManifestForCollection; legacy API: getSeries.
    * ``series_instance_uids``: a SeriesInstanceUID, a list of them, a getSeries row or a list of rows (the XCom
      of :class:`~airflow_provider_tcia.operators.query.TciaGetSeriesOperator`) — NBIA: getManifestText; legacy
      API: written here.
    * ``series_from``: the file TciaGetSeriesOperator wrote at ``output_path`` (json, jsonl or csv), as a URL or
      that operator's XCom — as ``series_instance_uids``.

    Given UIDs are checked (DICOM UIDs, repeats dropped) before anything is sent; NBIA's answer is read as it
    streams and every line of it checked; nothing is left at ``output_path`` when anything fails. A manifest
    with no series fails the task. Read it back with
    ``TciaDownloadSeriesOperator(manifest=<output_path or this task's XCom>)`` or tcia_utils'
    ``nbia.manifestToList``.

    XCom: ``{"path", "format", "series", "source"}`` — ``source`` is the NBIA endpoint that made the manifest,
    or ``local``.

    :param output_path: where to write: ``s3://aws_conn@bucket/manifests/lidc.tcia``, ``file:///data/lidc.csv``
        … Templated.
    :param collection: see above. Templated.
    :param series_instance_uids: see above. Templated.
    :param series_from: see above. Templated.
    :param include_annotation: the manifest's ``includeAnnotation`` (whether NBIA Data Retriever fetches the
        series' annotations too).
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    template_fields: Sequence[str] = (
        "output_path",
        "collection",
        "series_instance_uids",
        "series_from",
        "tcia_conn_id",
    )
    template_fields_renderers = {"series_instance_uids": "json"}
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        output_path: str | ObjectStoragePath,
        collection: str | None = None,
        series_instance_uids: Any = None,
        series_from: Any = None,
        include_annotation: bool = True,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.collection = collection
        self.series_instance_uids = series_instance_uids
        self.series_from = series_from
        self.include_annotation = include_annotation
        self.tcia_conn_id = tcia_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():  # bad input, a legacy connection asked for what only NBIA has …: no Airflow retries
            conn_id = check_conn_id(self.tcia_conn_id)
            path = self._checked_output_path()
            fmt = manifest_format(path)
            collection, uids = self._checked_source()
            with contextlib.closing(TciaHook(conn_id)) as hook:
                if hook.config.generation.name == "nbia":
                    count, source = self._write_from_nbia(hook, path, fmt, collection, uids)
                else:
                    count, source = self._write_locally(hook, path, fmt, collection, uids), "local"
        self.log.info("manifest of %d series written to %s (%s, from %s)", count, path, fmt, source)
        return {"path": str(path), "format": fmt, "series": count, "source": source}

    # --- input ------------------------------------------------------------------------------------------
    def _checked_output_path(self) -> ObjectStoragePath:
        value = self.output_path
        if not isinstance(value, (str, ObjectStoragePath)) or (isinstance(value, str) and not value.strip()):
            raise TciaBadRequestError(
                f"output_path must be a URL such as s3://conn@bucket/manifest.tcia, not {shown(value)}"
            )
        try:
            return as_path(value.strip() if isinstance(value, str) else value)
        except ValueError as err:
            raise TciaBadRequestError(f"output_path={shown(value)}: {err}") from None

    def _checked_source(self) -> tuple[str | None, list[str] | None]:
        """(collection, None) or (None, the UIDs, checked and without repeats)."""
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise TciaBadRequestError(
                "give exactly one of collection, series_instance_uids (UIDs or getSeries rows) and series_from (the "
                f"file getSeries wrote); got {' and '.join(given) or 'none'}"
            )
        if self.collection is not None:
            if not isinstance(self.collection, str) or not self.collection.strip():
                raise TciaBadRequestError(f"collection must be a collection name, not {shown(self.collection)}")
            return self.collection.strip(), None
        if self.series_from is not None:
            refs = list(refs_from_file(*series_file(self.series_from)))
        else:
            refs = refs_from_value(self.series_instance_uids)
        uids = [ref.series_instance_uid for ref in dedupe(refs)]
        if not uids:
            raise TciaBadRequestError(f"{given[0]} lists no series: there is nothing to write")
        return None, uids

    # --- writing ----------------------------------------------------------------------------------------
    def _header(self, path: ObjectStoragePath) -> TciaManifestHeader:
        return TciaManifestHeader(databasket_id=path.name, include_annotation=bool(self.include_annotation))

    def _write_locally(
        self, hook: TciaHook, path: ObjectStoragePath, fmt: str, collection: str | None, uids: list[str] | None
    ) -> int:
        def write() -> int:
            listed = _series_of(hook, collection) if uids is None else iter(uids)
            with atomic_writer(path) as fh:
                count = write_manifest(fh, fmt, listed, self._header(path))
                if count == 0:
                    raise TciaBadRequestError(f"collection {collection!r} has no series (getSeries): nothing to write")
            return count

        # A getSeries body cut off part-way starts the manifest over (nothing was published).
        return retry_call(
            hook.config.retry, write, retry_on=(TciaIncompleteResponseError,), what="writing the manifest", log=self.log
        )

    def _write_from_nbia(
        self, hook: TciaHook, path: ObjectStoragePath, fmt: str, collection: str | None, uids: list[str] | None
    ) -> tuple[int, str]:
        annotation = "true" if self.include_annotation else "false"
        if uids is None:
            endpoint, form = (
                MANIFEST_FOR_COLLECTION,
                [("collection", str(collection)), ("includeAnnotation", annotation)],
            )
        else:
            endpoint, form = MANIFEST_TEXT, [*(("list", uid) for uid in uids), ("includeAnnotation", annotation)]

        def write() -> int:
            keys: dict[str, str] = {}
            with stream_manifest(hook, endpoint, form) as (call, chunks), atomic_writer(path) as fh:
                what = f"the answer to {endpoint.name}"
                try:
                    listed = iter_tcia_lines(iter_text_lines(chunks), what=what, keys=keys, allow_empty=True)
                    first = next(listed, None)  # the header has been read by now
                    header = TciaManifestHeader.from_keys(keys, databasket_id=path.name)
                    count = write_manifest(fh, fmt, itertools.chain([first] if first else [], listed), header)
                except TciaBadRequestError as err:  # the server's answer is no manifest: not the user's input
                    raise TciaCorruptPayloadError(f"{call.what} from {call.shown_url}: {err}") from None
                if count == 0:
                    named = f"collection {collection!r}" if uids is None else "the series sent"
                    raise TciaBadRequestError(
                        f"{endpoint.name} answered a manifest without series for {named}: nothing to write"
                        + (" (is the collection's name right? getCollectionValues lists them)" if uids is None else "")
                    )
            if uids is not None and count != len(uids):
                self.log.warning("%s listed %d of the %d series sent", endpoint.name, count, len(uids))
            return count

        count = retry_call(
            hook.config.retry, write, retry_on=(TciaIncompleteResponseError,), what="writing the manifest", log=self.log
        )
        return count, endpoint.name


def _series_of(hook: TciaHook, collection: str | None) -> Iterator[str]:
    """The SeriesInstanceUIDs getSeries lists for ``collection``, as they stream, without repeats."""
    seen: set[str] = set()
    for row in hook.iter_rows("getSeries", collection=collection):
        uid = str(row.get("SeriesInstanceUID") or "")
        if uid not in seen:
            seen.add(uid)
            yield uid
