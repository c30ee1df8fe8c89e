"""NBIA's manifest endpoints (v4, POST forms, a `.tcia` manifest as text), as NBIA's server answers them.

Its ``ManifestMaker`` writes, in this order: ``downloadServerUrl=``, ``includeAnnotation=`` (``true`` only for
``true`` in any case, else ``false``), ``noOfrRetry=``, ``databasketId=``, ``manifestVersion=``,
``ListOfSeriesToDownload=``, then one SeriesInstanceUID a line, each line ended by ``\\n``.

* getManifestText writes the ``list`` fields it was sent, unchecked, as ``manifest-<milliseconds>.tcia``; without
  ``includeAnnotation`` the server fails (a null it does not test for: 500).
* getManifestForCollection lists the collection's series (none for a name it does not know), as
  ``<collection>-<yyyy-MM-dd_HH-mm>.tcia``; ``includeAnnotation`` defaults to ``true``.
* getManifestForSimpleSearch runs getSimpleSearch on its form (:func:`~airflow_provider_tcia.emulator.search.
  simple_search`: the same criteria, sorting and ``start``/``size`` page, the same 500 without ``sortField``,
  ``sortDirection``, ``start`` or ``size``), resolves the page's series keys to SeriesInstanceUIDs (as NBIA's
  ``findSeriesBySeriesPkId``) and writes them, in the search's order, as ``manifest-<milliseconds>.tcia`` with
  ``includeAnnotation=false`` always (NBIA's code passes ``"false"``); its Content-Type is NBIA's
  ``application/x-nbia-manifest-file``. A search matching nothing: the header alone.
* All refuse, like v4's other form endpoints, a field they do not read (400 ``Invalid form parameter``);
  getManifestForSimpleSearch reads getSimpleSearch's fields (``includeAnnotation`` is not one of them).

getManifestFromPatientStudySeries, as read in NBIA's server code (CBIIT/NBIA-TCIA,
``software/nbia-api/src/gov/nih/nci/nbia/restAPI/v4/GetManifestFromPatientStudySeries.java`` @918664d7; the
DAO's ``getSeriesFromPatientStudySeriesUIDs`` in ``software/nbia-dao/src/gov/nih/nci/nbia/dao/
GeneralSeriesDAOImpl.java``; ``ManifestMaker.getManifextFromSeriesIds`` in ``software/nbia-api/src/gov/nih/nci/
nbia/restUtil/ManifestMaker.java``; the older unversioned ``restAPI/GetManifestFromPatientStudySeries.java`` is
the same without the field check and with a catch-all that answers 500 ``Server was not able to process your
request``):

* POST form ``patientIDs``, ``studyUIDs``, ``seriesUIDs``, ``anyOrAll``, ``includeAnnotation``, each read as one
  string (``@FormParam String``: a repeated field counts once, its first value). Any other field, in the form or
  the query string (the servlet's parameter names), is a 400 ``Invalid form parameter: 'X'. Allowed parameters
  are: [...]`` (NBIA prints a ``Set.of``, whose order varies by JVM; the emulator prints the order above).
* A list field counts only when it is longer than one character (a one-character value is ignored as if left
  out); it is split on commas with the blanks around them (``\\s*,\\s*``, Java's ``split``: empty pieces at
  the end dropped, one at the start kept).
* ``anyOrAll`` is read and never used: the series listed are those whose PatientID is among the patients, *or*
  whose StudyInstanceUID is among the studies, *or* whose SeriesInstanceUID is among the series (one Hibernate
  disjunction of three ``in`` restrictions on GeneralSeries), each once, in the database's order (no ``order
  by``). A PatientID matches in every collection. No visibility or access restriction is applied (the emulator
  holds only public series, so this changes nothing here).
* Nothing given (or only one-character fields): the disjunction is empty, which Hibernate's ``Junction`` renders
  as ``1=1`` — the manifest lists *every* series the server holds. The emulator does the same.
* A list field of commas only (``,,``) splits to nothing: an ``in ()`` the database refuses, an exception the
  v4 class does not catch — the emulator answers 500 ``Server was not able to process your request``, as the
  unversioned class does (the exact body of v4's exception mapper: not checked).
* ``includeAnnotation`` left out or empty: ``true``; then ManifestMaker's ``true`` for ``true`` in any case, else
  ``false``. ``databasketId=manifest-<milliseconds>.tcia``. Nothing found: the header alone, 200.
* Answered as ``application/x-nbia-manifest-file`` (the ``@Produces`` says text/plain, the response's own type
  wins), as getManifestForSimpleSearch.

The emulator lists the patients' series first (in the dataset's order, a patient in every collection), then the
studies', then the series', each once; NBIA's order is its database's and not promised.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Iterator

from airflow_provider_tcia.api.generations import NbiaApi
from airflow_provider_tcia.api.manifest_endpoints import MANIFEST_ENDPOINTS
from airflow_provider_tcia.emulator.dataset import Dataset, Series
from airflow_provider_tcia.emulator.messages import Request, Response, text
from airflow_provider_tcia.emulator.search import INDEXED, PLAIN_FIELDS, SearchError, key_of, simple_search

#: What NBIA's configuration gives ManifestMaker (its public servers).
DOWNLOAD_SERVER_URL = "https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet"
NO_OF_RETRY = 4
MANIFEST_VERSION = "3.0"
#: The form fields each endpoint reads.
FORM_FIELDS = {
    "getManifestText": ("list", "includeAnnotation"),
    "getManifestForCollection": ("collection", "visibility", "includeAnnotation"),
    "getManifestForSimpleSearch": (
        "criteriaType<i>", "value<i>", "fromDate<i>", "toDate<i>", "from<i>", "to<i>",
        "sortField", "sortDirection", "start", "size",
    ),
    "getManifestFromPatientStudySeries": ("patientIDs", "studyUIDs", "seriesUIDs", "anyOrAll", "includeAnnotation"),
}  # fmt: skip
#: What NBIA's GetManifestForSimpleSearch and GetManifestFromPatientStudySeries answer with. (The emulator answers
#: the other two as text/plain, though NBIA's v4 GetManifestText and GetManifestForCollection @918664d7 set this
#: type too: not changed here.)
SEARCH_MANIFEST_TYPE = "application/x-nbia-manifest-file"
#: How GetManifestFromPatientStudySeries splits each of its list fields (Java's ``split("\\s*,\\s*")``).
_LIST_SEPARATOR = re.compile(r"\s*,\s*")
#: Its answer when a list field is nothing but commas (an uncaught database error).
_SERVER_ERROR = "Server was not able to process your request"


def is_manifest_path(path: str) -> bool:
    """Whether ``path`` is one of the manifest endpoints (on v4, the only version that serves them)."""
    parts = path.rstrip("/").split("/")
    return len(parts) == 5 and parts[1:4] == ["nbia-api", "services", "v4"] and parts[4] in MANIFEST_ENDPOINTS


def manifest_route(path: str) -> tuple[NbiaApi, str] | None:
    """(generation, endpoint name) of a manifest endpoint's path, else None."""
    return (NbiaApi("v4"), path.rstrip("/").rsplit("/", 1)[-1]) if is_manifest_path(path) else None


def manifest_response(request: Request, name: str, data: Dataset) -> Response:
    """The answer of manifest endpoint ``name`` to ``request`` (a POST form)."""
    allowed = FORM_FIELDS[name]
    for key, _ in (*request.query, *request.form):
        if not _reads(name, key):
            return text(400, f"Invalid form parameter: '{key}'. Allowed parameters are: [{', '.join(allowed)}]")
    if name == "getManifestForSimpleSearch":
        return _simple_search_manifest(request, data)
    if name == "getManifestFromPatientStudySeries":
        return _patient_study_series_manifest(request, data)
    annotation = request.first("includeAnnotation", "form")
    if name == "getManifestText":
        if annotation is None:
            return text(500, "Server was not able to process your request")
        uids: Iterable[str] = [value for key, value in request.form if key == "list"]
        basket = f"manifest-{int(time.time() * 1000)}.tcia"
    else:
        collection = request.first("collection", "form") or ""
        annotation = annotation or "true"
        found = data.find_series(collection=collection) if collection else iter(())
        uids = (s.series_instance_uid for s in found)
        basket = f"{collection}-{dt.datetime.now():%Y-%m-%d_%H-%M}.tcia"
    body = _manifest_text(uids, include_annotation=annotation.lower() == "true", databasket_id=basket)
    return Response(200, [("Content-Type", "text/plain")], body)


def _reads(name: str, key: str) -> bool:
    if name == "getManifestForSimpleSearch":
        return key in PLAIN_FIELDS or INDEXED.match(key) is not None
    return key in FORM_FIELDS[name]


def _simple_search_manifest(request: Request, data: Dataset) -> Response:
    try:
        answer = simple_search(data, (*request.query, *request.form))
    except SearchError as error:
        return text(error.status, error.message)
    basket = f"manifest-{int(time.time() * 1000)}.tcia"
    body = _manifest_text(_search_uids(data, answer), include_annotation=False, databasket_id=basket)
    return Response(200, [("Content-Type", SEARCH_MANIFEST_TYPE)], body)


def _patient_study_series_manifest(request: Request, data: Dataset) -> Response:
    patients, studies, series = (_id_list(request.first(f, "form")) for f in ("patientIDs", "studyUIDs", "seriesUIDs"))
    if [] in (patients, studies, series):
        return text(500, _SERVER_ERROR)
    annotation = request.first("includeAnnotation", "form") or "true"
    basket = f"manifest-{int(time.time() * 1000)}.tcia"
    uids = _series_of_any(data, patients, studies, series)
    body = _manifest_text(uids, include_annotation=annotation.lower() == "true", databasket_id=basket)
    return Response(200, [("Content-Type", SEARCH_MANIFEST_TYPE)], body)


def _id_list(value: str | None) -> list[str] | None:
    """One list field as NBIA reads it: None (not given) unless longer than one character, else split on commas
    and the blanks around them, empty pieces at the end dropped (Java's ``String.split``)."""
    if value is None or len(value) <= 1:
        return None
    pieces = _LIST_SEPARATOR.split(value)
    while pieces and pieces[-1] == "":
        pieces.pop()
    return pieces


def _series_of_any(
    data: Dataset, patients: list[str] | None, studies: list[str] | None, series: list[str] | None
) -> Iterator[str]:
    """The SeriesInstanceUIDs of the series of any of the patients, studies or series, each once; every series
    when none of the three is given (NBIA's empty disjunction)."""
    if patients is None and studies is None and series is None:
        found: list[Iterable[Series]] = [data.find_series()]
    else:
        found = [
            *(data.find_series(patient_id=p) for p in dict.fromkeys(patients or ())),
            *(data.find_series(study_instance_uid=s) for s in dict.fromkeys(studies or ())),
            *(data.find_series(series_instance_uid=s) for s in dict.fromkeys(series or ())),
        ]
    seen: set[str] = set()
    for matches in found:
        for s in matches:
            if s.series_instance_uid not in seen:
                seen.add(s.series_instance_uid)
                yield s.series_instance_uid


def _search_uids(data: Dataset, answer: dict) -> list[str]:
    """The SeriesInstanceUIDs of the series keys in a getSimpleSearch answer's page, in its order, once each."""
    keys: list[int] = []
    uid_of: dict[int, str] = {}
    for patient in answer["resultSet"]:
        for study in patient["studyIdentifiers"]:
            keys += study["seriesIdentifiers"]
        for s in data.find_series(collection=patient["project"], patient_id=patient["subjectId"]):
            uid_of.setdefault(key_of(s.series_instance_uid), s.series_instance_uid)
    return [uid_of[key] for key in dict.fromkeys(keys) if key in uid_of]


def _manifest_text(uids: Iterable[str], *, include_annotation: bool, databasket_id: str) -> Iterator[bytes]:
    yield (
        f"downloadServerUrl={DOWNLOAD_SERVER_URL}\n"
        f"includeAnnotation={'true' if include_annotation else 'false'}\n"
        f"noOfrRetry={NO_OF_RETRY}\n"
        f"databasketId={databasket_id}\n"
        f"manifestVersion={MANIFEST_VERSION}\n"
        "ListOfSeriesToDownload=\n"
    ).encode()
    lines: list[str] = []
    for uid in uids:
        lines.append(uid + "\n")
        if len(lines) >= 4096:
            yield "".join(lines).encode()
            lines.clear()
    if lines:
        yield "".join(lines).encode()
