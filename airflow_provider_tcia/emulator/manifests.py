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
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator

from airflow_provider_tcia.api.generations import NbiaApi
from airflow_provider_tcia.api.manifest_endpoints import MANIFEST_ENDPOINTS
from airflow_provider_tcia.emulator.dataset import Dataset
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
}  # fmt: skip
#: What NBIA's GetManifestForSimpleSearch answers with (the other two: text/plain).
SEARCH_MANIFEST_TYPE = "application/x-nbia-manifest-file"


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
