"""NBIA's manifest endpoints: v4 only, POST forms, answered with a ``.tcia`` manifest as text/plain.

Outside the endpoint table (:mod:`airflow_provider_tcia.api.endpoints`), as their answer is neither rows nor one
value but a manifest of any length, streamed and read line by line
(:mod:`airflow_provider_tcia.downloads.tcia_manifest`); only
:class:`~airflow_provider_tcia.operators.manifest.TciaWriteManifestOperator` asks them. The emulator serves them
from the same objects.

* ``getManifestText`` — form ``list`` (one field per SeriesInstanceUID: the server reads a list of values and
  writes each as one line) and ``includeAnnotation``; v4 refuses any other field. The server does not look the
  series up: it writes what it was sent.
* ``getManifestForCollection`` — form ``collection``, ``visibility`` (left out: the public series),
  ``includeAnnotation`` (``true`` when left out).
* ``getManifestForSimpleSearch`` — getSimpleSearch's form (:meth:`~airflow_provider_tcia.api.simple_search.
  SimpleSearch.form`: ``criteriaType{i}``/``value{i}`` …, ``sortField``, ``sortDirection``, ``start``, ``size``).
  NBIA's server (``GetManifestForSimpleSearch``) runs the search with the form's ``start``/``size`` (so one page of
  patients: we ask :data:`SIMPLE_SEARCH_SIZE` from 0, as tcia_utils does), keeps the patients the caller may see,
  resolves the matching series' database keys to SeriesInstanceUIDs and writes the manifest as
  ``manifest-<milliseconds>.tcia`` with ``includeAnnotation=false`` always: it reads no ``includeAnnotation``.
* ``getManifestFromPatientStudySeries`` — form ``patientIDs``, ``studyUIDs``, ``seriesUIDs`` (each one field,
  comma-separated), ``anyOrAll``, ``includeAnnotation`` (``true`` when left out or empty). NBIA's server lists
  every series of *any* of the patients, studies or series given (one OR over the three lists), whatever
  ``anyOrAll`` says (read, never used); a field of fewer than two characters counts as not given, and nothing
  given lists every series it holds (:mod:`airflow_provider_tcia.emulator.manifests` has the details and
  paths). The operator sends ``patientIDs`` and/or ``studyUIDs`` only, never an empty or one-character field.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow_provider_tcia.api.endpoints import SIMPLE_SEARCH_PARAMS, Endpoint, Param
from airflow_provider_tcia.api.generations import ApiGeneration, ApiRequest
from airflow_provider_tcia.exceptions import TciaBadRequestError

_ANNOTATION = Param("include_annotation", "includeAnnotation", description="true or false: the series' annotations too")


def _manifest_endpoint(name: str, method: str, description: str, params: tuple[Param, ...]) -> Endpoint:
    return Endpoint(
        name, method, description, params, "Manifest", ("Manifest",), kind="download", apis=("nbia",),
        http_method="POST", answer="text", nbia_v1=False,
    )  # fmt: skip


MANIFEST_TEXT = _manifest_endpoint(
    "getManifestText",
    "get_manifest_text",
    "A .tcia manifest of the series sent",
    (Param("series_instance_uids", "list", required=True, description="One field per SeriesInstanceUID"), _ANNOTATION),
)
MANIFEST_FOR_COLLECTION = _manifest_endpoint(
    "getManifestForCollection",
    "get_manifest_for_collection",
    "A .tcia manifest of every public series of a collection",
    (
        Param("collection", "collection", required=True, description="A collection name, e.g. TCGA-GBM"),
        Param("visibility", "visibility", description="NBIA's visibility code (left out: public)"),
        _ANNOTATION,
    ),
)
MANIFEST_FOR_SIMPLE_SEARCH = _manifest_endpoint(
    "getManifestForSimpleSearch",
    "get_manifest_for_simple_search",
    "A .tcia manifest of the series a getSimpleSearch matches (includeAnnotation=false always)",
    SIMPLE_SEARCH_PARAMS,
)
MANIFEST_FROM_PATIENT_STUDY_SERIES = _manifest_endpoint(
    "getManifestFromPatientStudySeries",
    "get_manifest_from_patient_study_series",
    "A .tcia manifest of every series of any of the patients, studies and series given (their union)",
    (
        Param("patient_ids", "patientIDs", description="PatientIDs, comma-separated, in one field"),
        Param("study_instance_uids", "studyUIDs", description="StudyInstanceUIDs, comma-separated, in one field"),
        Param("series_instance_uids", "seriesUIDs", description="SeriesInstanceUIDs, comma-separated, in one field"),
        Param("any_or_all", "anyOrAll", description="Read but ignored by NBIA: the three lists are always ORed"),
        _ANNOTATION,
    ),
)
MANIFEST_ENDPOINTS = {
    e.name: e
    for e in (MANIFEST_TEXT, MANIFEST_FOR_COLLECTION, MANIFEST_FOR_SIMPLE_SEARCH, MANIFEST_FROM_PATIENT_STUDY_SERIES)
}
#: The ``size`` (patients) sent to getManifestForSimpleSearch, from ``start`` 0: NBIA writes only that page's series,
#: so one page larger than any search's result (tcia_utils sends the same).
SIMPLE_SEARCH_SIZE = 1_000_000


def manifest_request(generation: ApiGeneration, endpoint: Endpoint, form: Iterable[tuple[str, str]]) -> ApiRequest:
    """The POST of ``endpoint`` with ``form`` (API spellings, a field may repeat); a
    :class:`TciaBadRequestError` where the connection's API has no manifest endpoints (the legacy one)."""
    if not generation.serves(endpoint):
        raise TciaBadRequestError(generation.refusal(endpoint))
    return ApiRequest(endpoint, generation.path(endpoint), tuple(form), None, method="POST")
