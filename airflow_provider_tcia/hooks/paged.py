"""NBIA queries that take many requests: getSeriesMetadata in chunks of UIDs, getSimpleSearch page by page.

Both are NBIA v4 POST forms (a legacy connection refuses them before anything is sent, as the endpoint table
says). Their rows stream: one chunk's or one page's answer is read (with the connection's retries if its body
breaks off), its rows are given out, then the next is asked — memory is bounded by the chunk or page, not by
the number of UIDs, patients or rows. Text formats (csv, xml, html) are rendered here from those rows, with
the endpoint's columns, in pieces.

Mixed into :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`; the transport is the hook's.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from airflow_provider_tcia.api.endpoints import Endpoint, check_format, get_endpoint
from airflow_provider_tcia.api.formats import iter_rendered
from airflow_provider_tcia.api.jsonstream import iter_json_array
from airflow_provider_tcia.api.simple_search import PAGE_SIZE, SimpleSearch, check_page_size, flatten, total_patients
from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaIncompleteResponseError, excerpt
from airflow_provider_tcia.hooks.calls import Call, corrupt, prepare

if TYPE_CHECKING:
    from airflow_provider_tcia.hooks.tcia import TciaHook

#: SeriesInstanceUIDs per getSeriesMetadata request. A UID is at most 64 characters, so a chunk's form is
#: at most ~67 kB — far below Tomcat's default 2 MB form limit (maxPostSize) — and NBIA looks the UIDs up one
#: by one, so a smaller chunk also keeps each request well inside a gateway's timeout. (tcia-utils sends
#: 10,000 per request.)
SERIES_METADATA_CHUNK = 1_000

_XML_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

Rows = list[dict[str, Any]]


class TciaPagedMethods:
    """getSeriesMetadata and getSimpleSearch, mixed into :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`."""

    # --- getSeriesMetadata --------------------------------------------------------------------------------
    @overload
    def get_series_metadata(
        self, series_instance_uids: Iterable[str], *, format: Literal["json"] = "json", chunk_size: int = ...
    ) -> Rows: ...
    @overload
    def get_series_metadata(
        self, series_instance_uids: Iterable[str], *, format: str, chunk_size: int = ...
    ) -> Rows | str: ...
    def get_series_metadata(
        self, series_instance_uids: Iterable[str], *, format: str = "json", chunk_size: int = SERIES_METADATA_CHUNK
    ) -> Rows | str:
        """Metadata of many series (``getSeriesMetadata``, NBIA v4 only): one row per UID NBIA has, with the
        columns of v4's CSV header (``PatientID`` … ``SeriesInstanceUID`` … ``Authorized``); unknown UIDs are
        simply absent.

        :param series_instance_uids: any number of SeriesInstanceUIDs (an iterable), each checked as a DICOM
            UID before anything is sent (an iterator that is not a collection: before its chunk is sent).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text, rendered from the rows).
        :param chunk_size: UIDs per request (default :data:`SERIES_METADATA_CHUNK`).
        """
        fmt = check_format(format)
        if fmt == "json":
            return list(self.iter_series_metadata(series_instance_uids, chunk_size=chunk_size))
        pieces = self.iter_series_metadata_text(series_instance_uids, format=fmt, chunk_size=chunk_size)
        return b"".join(pieces).decode("utf-8")

    def iter_series_metadata(
        self, series_instance_uids: Iterable[str], *, chunk_size: int = SERIES_METADATA_CHUNK
    ) -> Iterator[dict[str, Any]]:
        """:meth:`get_series_metadata`'s rows, chunk by chunk: memory is bounded by one chunk's answer."""
        hook = self._paged_hook()
        ep = get_endpoint("getSeriesMetadata")
        self._refuse_unserved(ep)  # (before the UIDs are read: an iterator is read once)
        size = _check_chunk_size(chunk_size)
        uids = _checked_uids(series_instance_uids)
        return _series_metadata_rows(hook, ep, uids, size)

    def iter_series_metadata_text(
        self, series_instance_uids: Iterable[str], *, format: str, chunk_size: int = SERIES_METADATA_CHUNK
    ) -> Iterator[bytes]:
        """:meth:`get_series_metadata` as ``format`` (csv, xml or html; json: a JSON array), in pieces."""
        fmt = check_format(format)
        rows = self.iter_series_metadata(series_instance_uids, chunk_size=chunk_size)
        return _rendered(rows, get_endpoint("getSeriesMetadata"), fmt)

    # --- getSimpleSearch ----------------------------------------------------------------------------------
    @overload
    def get_simple_search(
        self, criteria: SimpleSearch, *, format: Literal["json"] = "json", page_size: int = ...
    ) -> Rows: ...
    @overload
    def get_simple_search(self, criteria: SimpleSearch, *, format: str, page_size: int = ...) -> Rows | str: ...
    def get_simple_search(
        self, criteria: SimpleSearch, *, format: str = "json", page_size: int = PAGE_SIZE
    ) -> Rows | str:
        """Patients matching ``criteria`` (``getSimpleSearch``, NBIA v4 only), every page, one row per series:
        ``Collection``, ``PatientID``, ``StudyIdentifier`` and ``SeriesIdentifier`` (NBIA's database keys — the
        answer has no DICOM UIDs), ``Modality``, ``TotalNumberOfStudies``, ``TotalNumberOfSeries``.

        :param criteria: a :class:`~airflow_provider_tcia.api.simple_search.SimpleSearch`, e.g.
            ``SimpleSearch(collections=["TCGA-GBM"], modalities=["MR"])``.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text, rendered from the rows).
        :param page_size: patients per request (default :data:`~airflow_provider_tcia.api.simple_search.PAGE_SIZE`).
        """
        fmt = check_format(format)
        if fmt == "json":
            return list(self.iter_simple_search(criteria, page_size=page_size))
        return b"".join(self.iter_simple_search_text(criteria, format=fmt, page_size=page_size)).decode("utf-8")

    def iter_simple_search(self, criteria: SimpleSearch, *, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """:meth:`get_simple_search`'s rows, page by page (``start``/``size`` until ``totalPatients`` is covered)."""
        hook = self._paged_hook()
        ep = get_endpoint("getSimpleSearch")
        self._refuse_unserved(ep)
        if not isinstance(criteria, SimpleSearch):
            raise TciaBadRequestError(
                f"criteria must be a SimpleSearch (airflow_provider_tcia.api.simple_search), not {shown(criteria)}"
            )
        return _simple_search_rows(hook, ep, criteria, check_page_size(page_size))

    def iter_simple_search_text(
        self, criteria: SimpleSearch, *, format: str, page_size: int = PAGE_SIZE
    ) -> Iterator[bytes]:
        """:meth:`get_simple_search` as ``format`` (csv, xml or html; json: a JSON array), in pieces."""
        fmt = check_format(format)
        return _rendered(self.iter_simple_search(criteria, page_size=page_size), get_endpoint("getSimpleSearch"), fmt)

    # --- shared -------------------------------------------------------------------------------------------
    def _paged_hook(self) -> TciaHook:
        from airflow_provider_tcia.hooks.tcia import TciaHook

        assert isinstance(self, TciaHook)
        return self

    def _refuse_unserved(self, ep: Endpoint) -> None:
        generation = self._paged_hook().config.generation
        if not generation.serves(ep):
            raise TciaBadRequestError(generation.refusal(ep))


# --- getSeriesMetadata ----------------------------------------------------------------------------------------
def _check_chunk_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TciaBadRequestError(f"chunk_size must be a whole number of UIDs, at least 1, not {value!r}")
    return value


def _checked_uids(given: Iterable[str]) -> Iterator[str]:
    """The UIDs, stripped; all checked first when ``given`` is a collection (read twice, never copied), else
    each as it is read. An empty input is refused before anything is sent."""
    what = "getSeriesMetadata: series_instance_uids"
    if isinstance(given, str | bytes | Mapping) or not isinstance(given, Iterable):
        raise TciaBadRequestError(f"{what} must be an iterable of SeriesInstanceUIDs, not {shown(given)}")
    if isinstance(given, Collection):
        if not given:
            raise TciaBadRequestError(f"{what} is empty; give at least one SeriesInstanceUID; nothing was sent")
        for i, uid in enumerate(given):
            check_uid(uid, f"{what}[{i}]")
        return (check_uid(uid, what) for uid in given)
    iterator = iter(given)
    first = next(iterator, None)
    if first is None:
        raise TciaBadRequestError(f"{what} is empty; give at least one SeriesInstanceUID; nothing was sent")
    return (check_uid(uid, f"{what}[{i}]") for i, uid in enumerate(itertools.chain((first,), iterator)))


def _series_metadata_rows(hook: TciaHook, ep: Endpoint, uids: Iterator[str], size: int) -> Iterator[dict[str, Any]]:
    config = hook.config
    count = chunks = 0
    while chunk := list(itertools.islice(uids, size)):  # (each UID checked as it is taken)
        request = config.generation.query_request(ep, {"series_instance_uids": ",".join(chunk)}, "json")
        call = prepare(config, request)
        rows = hook._with_body_retries(lambda call=call: _read_rows(hook, call))
        chunks += 1
        count += len(rows)
        hook.log.info("TCIA getSeriesMetadata: chunk %d (%d UIDs): %d rows", chunks, len(chunk), len(rows))
        yield from rows
    hook.log.info("TCIA getSeriesMetadata: %d rows in %d chunks", count, chunks)


def _read_rows(hook: TciaHook, call: Call) -> Rows:
    with hook.open_stream(call, expect="json") as body:
        return [row for row in iter_json_array(body, what=f"the answer to {_short(call)}") if isinstance(row, dict)]


# --- getSimpleSearch ------------------------------------------------------------------------------------------
def _simple_search_rows(hook: TciaHook, ep: Endpoint, criteria: SimpleSearch, size: int) -> Iterator[dict[str, Any]]:
    config = hook.config
    base = config.generation.query_request(ep, {}, "json")  # (its path and method; the form is the criteria's)
    start = pages = rows = 0
    total: int | None = None
    while total is None or start < total:
        call = prepare(config, dataclasses.replace(base, params=tuple(criteria.form(start, size))))
        answer = hook._with_body_retries(lambda call=call: _read_object(hook, call))
        total = total_patients(answer)
        patients = answer.get("resultSet") or []
        pages += 1
        hook.log.info(
            "TCIA getSimpleSearch: page %d (patients %d-%d of %d)", pages, start + 1, start + len(patients), total
        )
        for row in flatten(answer):
            rows += 1
            yield row
        if not patients:
            break  # (fewer patients than the answer said: never ask past what it gives)
        start += len(patients)
    hook.log.info("TCIA %s: %d rows from %d patients in %d pages", criteria.describe(), rows, total or 0, pages)


def _read_object(hook: TciaHook, call: Call) -> dict[str, Any]:
    with hook.open_stream(call, expect="json") as chunks:
        body = b"".join(chunks)
    if not body.strip():
        return {"resultSet": [], "totalPatients": 0}
    try:
        answer = json.loads(body)
    except json.JSONDecodeError as err:
        if err.msg.startswith("Unterminated") or err.pos >= len(err.doc.rstrip()):
            # (a body that ends inside the object: cut off, worth asking this page again)
            raise TciaIncompleteResponseError(
                f"the answer to {_short(call)} was cut short ({err.msg}); it began: {excerpt(body)}"
            ) from None
        raise corrupt(call, f"the answer is not getSimpleSearch's ({err}): {body[:200]!r}") from None
    try:
        if not isinstance(answer, dict):
            raise ValueError(f"a JSON {type(answer).__name__}, not an object")
        total_patients(answer)
        if not isinstance(answer.get("resultSet") or [], list):
            raise ValueError("resultSet is not a list")
    except ValueError as err:
        raise corrupt(call, f"the answer is not getSimpleSearch's ({err}): {body[:200]!r}") from None
    return answer


# --- shared -----------------------------------------------------------------------------------------------
def _rendered(rows: Iterator[dict[str, Any]], ep: Endpoint, fmt: str) -> Iterator[bytes]:
    columns: list[str] = list(ep.attributes)
    if fmt == "xml":  # (an element's name cannot hold "(" or ")": PixelSpacing(mm)-Row is PixelSpacing_mm_-Row)
        names = {c: _XML_UNSAFE.sub("_", c) for c in columns}
        rows = ({names.get(k, _XML_UNSAFE.sub("_", k)): v for k, v in row.items()} for row in rows)
        columns = list(names.values())
    for piece in iter_rendered(rows, columns, fmt):
        yield piece.encode("utf-8")


def _short(call: Call) -> str:
    """``call.what`` without a thousand UIDs in it."""
    what = call.what
    return what if len(what) <= 200 else what[:200] + "…)"
