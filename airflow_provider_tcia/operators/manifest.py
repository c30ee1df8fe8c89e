"""TciaWriteManifestOperator: a TCIA download manifest (``.tcia``, or a CSV / TSV series list) written to object
storage, atomically, for NBIA Data Retriever, tcia_utils or this provider's download operator (``manifest=``).

On an NBIA connection the manifest is NBIA's own, from its manifest endpoints (getManifestForCollection,
getManifestText, getManifestForSimpleSearch, getManifestFromPatientStudySeries); on the legacy API it is built here
in the same layout (ManifestMaker's), from getSeries for a collection or for patients and studies (a simple
search, which that API lacks, is refused there).
Either way every line is checked as it streams through (:mod:`airflow_provider_tcia.downloads.tcia_manifest`) and
nothing appears at the output path unless the whole manifest was written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.endpoints import Endpoint
from airflow_provider_tcia.api.manifest_endpoints import (
    MANIFEST_FOR_COLLECTION,
    MANIFEST_FOR_SIMPLE_SEARCH,
    MANIFEST_FROM_PATIENT_STUDY_SERIES,
    MANIFEST_TEXT,
    SIMPLE_SEARCH_SIZE,
)
from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.api.simple_search import SimpleSearch
from airflow_provider_tcia.api.uids import check_uid, shown
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

#: The inputs: exactly one of them is given, except that patient_ids and study_instance_uids may go together
#: (NBIA's getManifestFromPatientStudySeries lists the series of any of them: their union).
SOURCES = ("collection", "series_instance_uids", "series_from", "simple_search", "patient_ids", "study_instance_uids")
_TOGETHER = ("patient_ids", "study_instance_uids")


@dataclasses.dataclass(frozen=True)
class _Source:
    """What the manifest lists, checked: one of collection, uids (``series_from`` gives them too), search, or
    patients and studies (both set, one of them possibly empty)."""

    collection: str | None = None
    uids: list[str] | None = None
    search: SimpleSearch | None = None
    patients: list[str] | None = None
    studies: list[str] | None = None

    @property
    def by_patient_or_study(self) -> bool:
        return self.patients is not None and self.studies is not None


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
    * ``simple_search``: the series a getSimpleSearch matches — a
      :class:`~airflow_provider_tcia.api.simple_search.SimpleSearch`, or a mapping of its criteria
      (``{"collections": ["TCGA-GBM"], "modalities": ["MR"]}``, as a DAG param gives it; also its JSON text,
      ``"{{ params.search | tojson }}"``) — NBIA: getManifestForSimpleSearch with getSimpleSearch's form, every
      patient in one page (``start`` 0, ``size`` 1,000,000, as tcia_utils asks); legacy API: refused (it has no
      simple search).
    * ``patient_ids`` and/or ``study_instance_uids``: every series of any of those patients (in every
      collection) and studies — their union, as NBIA computes it (its ``anyOrAll`` field is read and never used,
      so it is not offered) — NBIA: getManifestFromPatientStudySeries (``patientIDs`` / ``studyUIDs``, each one
      comma-separated field); legacy API: getSeries once per PatientID and per StudyInstanceUID. Each takes a
      value, a list, or rows (getPatient's ``PatientId``/``PatientID``, getPatientStudy's ``StudyInstanceUID``).
      Series UIDs stay with ``series_instance_uids`` (NBIA's getManifestText).

    Given UIDs, patient IDs and criteria are checked (DICOM UIDs; a PatientID neither empty nor holding a comma,
    which NBIA's server splits on; repeats dropped; criteria as SimpleSearch checks them) before anything is
    sent; NBIA's answer is read as it streams and every line of it checked; nothing is left at
    ``output_path`` when anything fails. A manifest with no series fails the task. Read it back with
    ``TciaDownloadSeriesOperator(manifest=<output_path or this task's XCom>)`` or tcia_utils'
    ``nbia.manifestToList``.

    XCom: ``{"path", "format", "series", "source"}`` — ``source`` is the NBIA endpoint that made the manifest,
    or ``local``.

    :param output_path: where to write: ``s3://aws_conn@bucket/manifests/lidc.tcia``, ``file:///data/lidc.csv``
        … Templated.
    :param collection: see above. Templated.
    :param series_instance_uids: see above. Templated.
    :param series_from: see above. Templated.
    :param simple_search: see above. Templated (a mapping's values are rendered).
    :param patient_ids: see above. Templated.
    :param study_instance_uids: see above. Templated.
    :param include_annotation: the manifest's ``includeAnnotation`` (whether NBIA Data Retriever fetches the
        series' annotations too). NBIA's getManifestForSimpleSearch always answers ``includeAnnotation=false``
        (its server hard-codes it and reads no such field); the manifest written from a simple search keeps this
        parameter's value instead, as for every other source — the series are NBIA's, the flag is yours. (The
        other NBIA endpoints are sent it and answer it back.)
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    """

    template_fields: Sequence[str] = (
        "output_path",
        "collection",
        "series_instance_uids",
        "series_from",
        "simple_search",
        "patient_ids",
        "study_instance_uids",
        "tcia_conn_id",
    )
    template_fields_renderers = {
        "series_instance_uids": "json",
        "simple_search": "json",
        "patient_ids": "json",
        "study_instance_uids": "json",
    }
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        output_path: str | ObjectStoragePath,
        collection: str | None = None,
        series_instance_uids: Any = None,
        series_from: Any = None,
        simple_search: SimpleSearch | Mapping[str, Any] | str | None = None,
        patient_ids: Any = None,
        study_instance_uids: Any = None,
        include_annotation: bool = True,
        tcia_conn_id: str = TciaHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.output_path = output_path
        self.collection = collection
        self.series_instance_uids = series_instance_uids
        self.series_from = series_from
        self.simple_search = simple_search
        self.patient_ids = patient_ids
        self.study_instance_uids = study_instance_uids
        self.include_annotation = include_annotation
        self.tcia_conn_id = tcia_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        with fail_fast():  # bad input, a legacy connection asked for what only NBIA has …: no Airflow retries
            conn_id = check_conn_id(self.tcia_conn_id)
            path = self._checked_output_path()
            fmt = manifest_format(path)
            source = self._checked_source()
            with contextlib.closing(TciaHook(conn_id)) as hook:
                generation = hook.config.generation
                if generation.name == "nbia":
                    count, made_by = self._write_from_nbia(hook, path, fmt, source)
                elif source.search is not None:  # no simple search on the legacy API
                    raise TciaBadRequestError(generation.refusal(MANIFEST_FOR_SIMPLE_SEARCH))
                else:
                    count, made_by = self._write_locally(hook, path, fmt, source), "local"
        self.log.info("manifest of %d series written to %s (%s, from %s)", count, path, fmt, made_by)
        return {"path": str(path), "format": fmt, "series": count, "source": made_by}

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

    def _checked_source(self) -> _Source:
        """The collection, the UIDs (checked, without repeats), the search criteria (checked) or the patients and
        studies (checked, without repeats)."""
        given = [name for name in SOURCES if getattr(self, name) is not None]
        if len({"patients and studies" if name in _TOGETHER else name for name in given}) != 1:
            raise TciaBadRequestError(
                "give exactly one of collection, series_instance_uids (UIDs or getSeries rows), series_from (the "
                "file getSeries wrote), simple_search (getSimpleSearch's criteria) and patient_ids and/or "
                f"study_instance_uids (their series); got {' and '.join(given) or 'none'}"
            )
        if given[0] in _TOGETHER:
            return _Source(
                patients=_checked_ids(self.patient_ids, "patient_ids"),
                studies=_checked_ids(self.study_instance_uids, "study_instance_uids"),
            )
        if self.collection is not None:
            if not isinstance(self.collection, str) or not self.collection.strip():
                raise TciaBadRequestError(f"collection must be a collection name, not {shown(self.collection)}")
            return _Source(collection=self.collection.strip())
        if self.simple_search is not None:
            return _Source(search=_checked_search(self.simple_search))
        if self.series_from is not None:
            refs = list(refs_from_file(*series_file(self.series_from)))
        else:
            refs = refs_from_value(self.series_instance_uids)
        uids = [ref.series_instance_uid for ref in dedupe(refs)]
        if not uids:
            raise TciaBadRequestError(f"{given[0]} lists no series: there is nothing to write")
        return _Source(uids=uids)

    # --- writing ----------------------------------------------------------------------------------------
    def _header(self, path: ObjectStoragePath) -> TciaManifestHeader:
        return TciaManifestHeader(databasket_id=path.name, include_annotation=bool(self.include_annotation))

    def _write_locally(self, hook: TciaHook, path: ObjectStoragePath, fmt: str, source: _Source) -> int:
        uids = source.uids
        queries: list[dict[str, str | None]] = [{"collection": source.collection}]
        if source.by_patient_or_study:
            queries = [{"patient_id": p} for p in source.patients or ()]
            queries += [{"study_instance_uid": s} for s in source.studies or ()]

        def write() -> int:
            listed = _series_of(hook, queries) if uids is None else iter(uids)
            with atomic_writer(path) as fh:
                count = write_manifest(fh, fmt, listed, self._header(path))
                if count == 0:
                    raise TciaBadRequestError(f"getSeries lists no series of {_named(source)}: nothing to write")
            return count

        # A getSeries body cut off part-way starts the manifest over (nothing was published).
        return retry_call(
            hook.config.retry, write, retry_on=(TciaIncompleteResponseError,), what="writing the manifest", log=self.log
        )

    def _write_from_nbia(self, hook: TciaHook, path: ObjectStoragePath, fmt: str, source: _Source) -> tuple[int, str]:
        endpoint, form = self._nbia_request(source)
        uids = source.uids

        def write() -> int:
            keys: dict[str, str] = {}
            with stream_manifest(hook, endpoint, form) as (call, chunks), atomic_writer(path) as fh:
                what = f"the answer to {endpoint.name}"
                try:
                    listed = iter_tcia_lines(iter_text_lines(chunks), what=what, keys=keys, allow_empty=True)
                    first = next(listed, None)  # the header has been read by now
                    header = TciaManifestHeader.from_keys(keys, databasket_id=path.name)
                    if source.search is not None:  # NBIA always says false here: the user's value stands
                        header = dataclasses.replace(header, include_annotation=bool(self.include_annotation))
                    count = write_manifest(fh, fmt, itertools.chain([first] if first else [], listed), header)
                except TciaBadRequestError as err:  # the server's answer is no manifest: not the user's input
                    raise TciaCorruptPayloadError(f"{call.what} from {call.shown_url}: {err}") from None
                if count == 0:
                    raise TciaBadRequestError(
                        f"{endpoint.name} answered a manifest without series for {_named(source)}: nothing to write"
                    )
            if uids is not None and count != len(uids):
                self.log.warning("%s listed %d of the %d series sent", endpoint.name, count, len(uids))
            return count

        count = retry_call(
            hook.config.retry, write, retry_on=(TciaIncompleteResponseError,), what="writing the manifest", log=self.log
        )
        return count, endpoint.name

    def _nbia_request(self, source: _Source) -> tuple[Endpoint, list[tuple[str, str]]]:
        """The NBIA manifest endpoint for ``source`` and its form (API spellings)."""
        annotation = "true" if self.include_annotation else "false"
        if source.search is not None:  # (getManifestForSimpleSearch reads no includeAnnotation)
            return MANIFEST_FOR_SIMPLE_SEARCH, source.search.form(start=0, size=SIMPLE_SEARCH_SIZE)
        if source.by_patient_or_study:
            lists = [("patientIDs", source.patients), ("studyUIDs", source.studies)]
            form = [(field, _list_field(values)) for field, values in lists if values]
            return MANIFEST_FROM_PATIENT_STUDY_SERIES, [*form, ("includeAnnotation", annotation)]
        if source.uids is None:
            return MANIFEST_FOR_COLLECTION, [("collection", str(source.collection)), ("includeAnnotation", annotation)]
        return MANIFEST_TEXT, [*(("list", uid) for uid in source.uids), ("includeAnnotation", annotation)]


def _checked_search(value: Any) -> SimpleSearch:
    """``simple_search`` as a checked :class:`SimpleSearch`: one, a mapping of its criteria, or that mapping's JSON
    text (what ``{{ params.search | tojson }}`` renders)."""
    if isinstance(value, SimpleSearch):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TciaBadRequestError(
                f"simple_search as text must be a JSON object of SimpleSearch's criteria, not {shown(value)}"
            ) from None
    if not isinstance(value, Mapping):
        raise TciaBadRequestError(
            "simple_search must be a SimpleSearch, a mapping of its criteria ({'collections': ['TCGA-GBM']}) or "
            f"that mapping's JSON text, not {shown(value)}"
        )
    return SimpleSearch.from_mapping(value)


def _checked_ids(value: Any, what: str) -> list[str]:
    """``patient_ids`` / ``study_instance_uids`` as a list without repeats (empty when not given): a value, a
    list, or rows (getPatient's ``PatientId``/``PatientID``, getPatientStudy's ``StudyInstanceUID``)."""
    if value is None:
        return []
    keys = ("PatientID", "PatientId") if what == "patient_ids" else ("StudyInstanceUID",)
    items = [value] if isinstance(value, (str, int, Mapping)) else value
    if isinstance(items, (bytes, bytearray)) or not isinstance(items, Iterable):
        raise TciaBadRequestError(f"{what} must be a value, a list of them or rows, not {type(value).__name__}")
    out: list[str] = []
    for i, item in enumerate(items):
        where = what if items is not value else f"{what}[{i}]"
        if isinstance(item, Mapping):
            found = [item[k] for k in keys if item.get(k) not in (None, "")]
            if not found:
                raise TciaBadRequestError(f"{where} is a row without {' or '.join(keys)}: {shown(dict(item))}")
            item = found[0]
        if isinstance(item, int) and not isinstance(item, bool) and what == "patient_ids":
            item = str(item)  # a numeric PatientID rendered as a native object
        if not isinstance(item, str):
            raise TciaBadRequestError(f"{where} must be a string, not {type(item).__name__} {shown(item)}")
        if what == "study_instance_uids":
            text = check_uid(item, where)
        elif not item.strip():
            raise TciaBadRequestError(f"{where} is an empty string; give a PatientID or leave it out")
        elif "," in item:
            raise TciaBadRequestError(
                f"{where}={shown(item)} holds a comma: NBIA's getManifestFromPatientStudySeries splits its patients "
                "on commas, so this PatientID cannot be asked for"
            )
        else:
            text = item.strip()
        if text not in out:
            out.append(text)
    if not out:
        raise TciaBadRequestError(f"{what} is empty: there is nothing to write; give a value or leave it out")
    return out


def _list_field(values: list[str]) -> str:
    """One comma-separated list field of getManifestFromPatientStudySeries. NBIA ignores a field shorter than two
    characters (and with no field left lists every series it holds): a lone one-character value goes twice."""
    text = ",".join(values)
    return text if len(text) > 1 else f"{text},{text}"


def _named(source: _Source) -> str:
    """The source, for a message about an empty manifest."""
    if source.by_patient_or_study:
        named = [f"{what} {shown(v)}" for what, v in (("patients", source.patients), ("studies", source.studies)) if v]
        return " and ".join(named)
    if source.search is not None:
        return f"{source.search.describe()} (it matches no series this connection may see)"
    if source.uids is None:
        return f"collection {source.collection!r} (is the collection's name right? getCollectionValues lists them)"
    return "the series sent"


def _series_of(hook: TciaHook, queries: Iterable[Mapping[str, str | None]]) -> Iterator[str]:
    """The SeriesInstanceUIDs getSeries lists for each of ``queries`` in turn (``{"collection": …}``,
    ``{"patient_id": …}`` …), as they stream, without repeats."""
    seen: set[str] = set()
    for query in queries:
        for row in hook.iter_rows("getSeries", **query):
            uid = str(row.get("SeriesInstanceUID") or "")
            if uid not in seen:
                seen.add(uid)
                yield uid
