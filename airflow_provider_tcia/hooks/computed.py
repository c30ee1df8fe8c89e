"""Answers of NBIA-only endpoints computed from the seed API's endpoints, for a connection on the legacy API.

Only where the answer can be computed honestly: the endpoint table's ``legacy_from`` names the seed endpoints
each one is computed from (the docs say which), and every other NBIA-only endpoint is refused on a legacy
connection before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.endpoints import Endpoint

if TYPE_CHECKING:
    from airflow_provider_tcia.hooks.tcia import TciaHook

Rows = Iterator[dict[str, Any]]


def _counted(patients: dict[str, set[tuple[str, str]]], column: str) -> Rows:
    """NBIA's rows: each value and its number of distinct patients, by value; no ``Authorized`` (the seed
    API has no such notion: everything it serves is public)."""
    for value in sorted(patients):
        yield {column: value, "Count": len(patients[value])}


def collection_counts(hook: TciaHook, params: dict[str, Any]) -> Rows:
    """getCollectionValuesAndCounts from getPatient: the distinct patients of each collection."""
    patients: dict[str, set[tuple[str, str]]] = {}
    for row in hook.iter_rows("getPatient"):
        collection, patient = row.get("Collection"), row.get("PatientID")
        if collection and patient:
            patients.setdefault(str(collection), set()).add((str(collection), str(patient)))
    return _counted(patients, "Collection")


def _series_counts(column: str, field: str) -> Callable[[TciaHook, dict[str, Any]], Rows]:
    """getModality/BodyPart/ManufacturerValuesAndCounts from getSeries (the values, filtered as asked) and
    getPatientStudy (whose patient each series' study is: the seed's series rows carry no PatientID)."""

    def compute(hook: TciaHook, params: dict[str, Any]) -> Rows:
        collection = params.get("collection")
        study_patient = {
            str(row["StudyInstanceUID"]): (str(row.get("Collection")), str(row["PatientID"]))
            for row in hook.iter_rows("getPatientStudy", collection=collection)
            if row.get("StudyInstanceUID") and row.get("PatientID")
        }
        patients: dict[str, set[tuple[str, str]]] = {}
        for row in hook.iter_rows("getSeries", **params):
            value, patient = row.get(field), study_patient.get(str(row.get("StudyInstanceUID")))
            if value and patient:
                patients.setdefault(str(value), set()).add(patient)
        return _counted(patients, column)

    return compute


#: How each computed endpoint's rows are made, by the endpoint's name.
COMPUTED: dict[str, Callable[[TciaHook, dict[str, Any]], Rows]] = {
    "getCollectionValuesAndCounts": collection_counts,
    "getModalityValuesAndCounts": _series_counts("Modality", "Modality"),
    "getBodyPartValuesAndCounts": _series_counts("BodyPart", "BodyPartExamined"),
    "getManufacturerValuesAndCounts": _series_counts("Manufacturer", "Manufacturer"),
}


def legacy_rows(hook: TciaHook, endpoint: Endpoint, params: dict[str, Any]) -> Rows:
    """The rows of ``endpoint`` computed through ``hook`` (on the legacy API) from the seed's endpoints."""
    try:
        compute = COMPUTED[endpoint.name]
    except KeyError:
        raise AssertionError(f"{endpoint.name} names legacy_from but hooks/computed.py cannot compute it") from None
    return compute(hook, params)
