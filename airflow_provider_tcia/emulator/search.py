"""NBIA v4's getSimpleSearch over the emulator's data: a form in, the answer (or NBIA's error) out.

Reads the form as NBIA's ``SearchUtil`` does: ``criteriaType{i}`` for ``i`` = 0, 1, … until one is missing,
with ``value{i}`` (``fromDate{i}``/``toDate{i}`` as MM-dd-yyyy for ``DateRangeCriteria``); values of one type
are alternatives, different types must all hold; an unknown criteria type is ignored; ``sortField``,
``sortDirection``, ``start`` and ``size`` are required (NBIA reads them unconditionally and fails with 500
without them). Sorting is ``ResultSetSorter``'s (an unknown field sorts by collection). A page is
``resultSet[start:start + size]``; a ``start`` beyond the result is NBIA's 500.

The emulator is stricter than the server in one way, v4's parameter validation: a form field that is none of
the above is a 400 ``Invalid parameter(s): …``.

Identifiers in the answer are NBIA's database keys, not UIDs: the emulator derives stable integers from the
UIDs (:func:`key_of`).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_tcia.emulator.dataset import Dataset, Patient, Series

#: Fields that are not indexed.
PLAIN_FIELDS = ("sortField", "sortDirection", "start", "size", "tool")
#: Indexed fields (``value0``, ``fromDate3`` …).
INDEXED = re.compile(r"^(criteriaType|value|fromDate|toDate|from|to|fromDay|toDay|eventType)(\d+)$")
SERVER_ERROR = "Server was not able to process your request"
_SORTS = {
    "collection": lambda p: p.collection.lower(),
    "subject": lambda p: p.patient_id.lower(),
    "study": lambda p: p.filtered_studies,
    "series": lambda p: p.filtered_series,
    "totalnumberofseries": lambda p: p.total_series,
    "totalnumberofstudies": lambda p: p.total_studies,
}


class SearchError(Exception):
    """What NBIA answers instead: a status and a text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def key_of(*parts: str) -> int:
    """A stable positive integer standing for NBIA's database key of a patient, study or series."""
    return zlib.crc32("\x1f".join(parts).encode()) % 2_000_000_000 + 1


@dataclass
class _Hit:
    """A patient and its matching series, in catalog order."""

    patient: Patient
    series: list[Series] = field(default_factory=list)
    total_studies: int = 0
    total_series: int = 0

    @property
    def collection(self) -> str:
        return self.patient.collection

    @property
    def patient_id(self) -> str:
        return self.patient.patient_id

    @property
    def filtered_studies(self) -> int:
        return len({s.study_instance_uid for s in self.series})

    @property
    def filtered_series(self) -> int:
        return len(self.series)


@dataclass
class _Criteria:
    values: dict[str, set[str]] = field(default_factory=dict)
    date_ranges: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    min_studies: int | None = None
    modalities_anded: bool = False


def check_fields(form: Iterable[tuple[str, str]]) -> None:
    """v4's parameter validation: a 400 naming each field that is not getSimpleSearch's."""
    invalid = [k for k, _ in form if k not in PLAIN_FIELDS and not INDEXED.match(k)]
    if invalid:
        valid = "[criteriaType<i>, value<i>, fromDate<i>, toDate<i>, sortField, sortDirection, start, size]"
        raise SearchError(
            400, f"Invalid parameter(s): {', '.join(dict.fromkeys(invalid))}. Valid parameters are: {valid}"
        )


def simple_search(data: Dataset, form: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The answer to a getSimpleSearch form, as NBIA's JSON (nulls left out); raises :class:`SearchError`."""
    pairs = list(form)
    check_fields(pairs)
    fields_ = _first_values(pairs)
    criteria = _criteria(fields_)
    try:
        sort_field = fields_["sortField"]
        direction = fields_["sortDirection"]
        start, size = int(fields_["start"]), int(fields_["size"])
    except (KeyError, ValueError):
        raise SearchError(500, SERVER_ERROR) from None
    hits = _search(data, criteria)
    key = _SORTS.get(sort_field.lower(), _SORTS["collection"])
    hits = sorted(hits, key=key, reverse=direction.lower() != "ascending")  # (stable, as Java's sort)
    if start < 0 or size < 0 or start > len(hits):
        raise SearchError(500, SERVER_ERROR)  # NBIA's subList(start, start + size) fails
    page = hits[start : start + size]
    return {
        "resultSet": [_patient_json(data, hit) for hit in page],
        "totalPatients": len(hits),
        "bodyParts": _counts(hits, lambda s, p: s.body_part),
        "modalities": _counts(hits, lambda s, p: s.modality),
        "collections": _counts(hits, lambda s, p: p.collection),
        "species": _counts(hits, lambda s, p: p.species_code),
        "sort": f"{sort_field}-{direction}",
    }


# --- reading the form ----------------------------------------------------------------------------------------
def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


def _criteria(form: Mapping[str, str]) -> _Criteria:
    criteria = _Criteria()
    i = 0
    while f"criteriaType{i}" in form:
        kind = form[f"criteriaType{i}"].strip().lower()
        value = form.get(f"value{i}")
        if kind == "daterangecriteria":
            criteria.date_ranges.append((_date(form.get(f"fromDate{i}")), _date(form.get(f"toDate{i}"))))
        elif kind == "minnumberofstudiescriteria":
            try:
                criteria.min_studies = int(value or "")
            except ValueError:
                raise SearchError(500, SERVER_ERROR) from None
        elif kind == "modalityandedsearchcriteria":
            criteria.modalities_anded = (value or "").strip().lower() == "all"
        elif kind in _MATCHERS:
            if value is None:
                raise SearchError(500, SERVER_ERROR)  # NBIA reads value{i} unconditionally
            criteria.values.setdefault(kind, set()).add(value)
        i += 1
    return criteria


def _date(text: str | None) -> dt.date:
    try:
        return dt.datetime.strptime((text or "").strip(), "%m-%d-%Y").date()
    except ValueError:
        raise SearchError(500, SERVER_ERROR) from None


# --- matching ---------------------------------------------------------------------------------------------
def _third_party(s: Series) -> str:
    return "yes" if (s.third_party or "").strip().upper() == "YES" else "no"


#: criteriaType (lower-case) -> the value a series (with its patient) offers for it.
_MATCHERS = {
    "collectioncriteria": lambda s, p: s.collection,
    "speciescriteria": lambda s, p: p.species_code,
    "imagemodalitycriteria": lambda s, p: s.modality,
    "anatomicalsitecriteria": lambda s, p: s.body_part,
    "bodypartexaminedcriteria": lambda s, p: s.body_part,
    "manufacturercriteria": lambda s, p: s.manufacturer,
    "modelcriteria": lambda s, p: s.model,
    "softwareversioncriteria": lambda s, p: s.software,
    "patientsexcriteria": lambda s, p: p.sex,
    "patientcriteria": lambda s, p: s.patient_id,
    "studycriteria": lambda s, p: s.study_instance_uid,
    "seriescriteria": lambda s, p: s.series_instance_uid,
    "phantomcriteria": lambda s, p: p.phantom,
    "thirdpartyanalysis": lambda s, p: _third_party(s),
}


def _search(data: Dataset, criteria: _Criteria) -> list[_Hit]:
    collections = criteria.values.get("collectioncriteria")
    pool = (
        (s for name in sorted(collections) for s in data.find_series(collection=name))
        if collections
        else data.find_series()
    )
    hits: dict[tuple[str, str], _Hit] = {}
    totals: dict[tuple[str, str], tuple[set[str], int]] = {}
    for s in pool:
        key = (s.collection, s.patient_id)
        patient = data.patient(*key)
        if patient is None:
            continue
        studies, count = totals.get(key, (set(), 0))
        studies.add(s.study_instance_uid)
        totals[key] = (studies, count + 1)
        if not _admits(data, criteria, s, patient):
            continue
        hits.setdefault(key, _Hit(patient)).series.append(s)
    out = []
    for key, hit in hits.items():
        studies, count = totals[key]
        hit.total_studies, hit.total_series = len(studies), count
        if criteria.min_studies is not None and hit.total_studies < criteria.min_studies:
            continue
        if criteria.modalities_anded:
            wanted = criteria.values.get("imagemodalitycriteria", set())
            if not wanted <= {s.modality for s in hit.series}:
                continue
        out.append(hit)
    return out


def _admits(data: Dataset, criteria: _Criteria, s: Series, patient: Patient) -> bool:
    for kind, wanted in criteria.values.items():
        offered = _MATCHERS[kind](s, patient)
        if kind == "thirdpartyanalysis":
            wanted = {w.strip().lower() for w in wanted}
        if offered not in wanted:
            return False
    if criteria.date_ranges:
        study = data.study(s.study_instance_uid)
        day = study.study_date if study else None
        if day is None or not all(lo <= day <= hi for lo, hi in criteria.date_ranges):
            return False
    return True


# --- the answer -------------------------------------------------------------------------------------------
def _patient_json(data: Dataset, hit: _Hit) -> dict[str, Any]:
    studies: dict[str, dict[str, Any]] = {}
    for s in hit.series:
        study = studies.setdefault(
            s.study_instance_uid,
            {"studyIdentifier": key_of(s.study_instance_uid), "seriesIdentifiers": [], "seriesAndModality": []},
        )
        series_key = key_of(s.series_instance_uid)
        study["seriesIdentifiers"].append(series_key)
        study["seriesAndModality"].append({"seriesId": series_key, "modality": s.modality})
    return {
        "id": key_of(hit.collection, hit.patient_id),
        "subjectId": hit.patient_id,
        "project": hit.collection,
        "totalNumberOfSeries": hit.total_series,
        "totalNumberOfStudies": hit.total_studies,
        "studyIdentifiers": list(studies.values()),
        "modalities": sorted({s.modality for s in hit.series}),
        "bodyParts": sorted({s.body_part for s in hit.series if s.body_part}),
        "species": [hit.patient.species_code] if hit.patient.species_code else [],
        "timepoints": {},
    }


def _counts(hits: list[_Hit], value_of) -> list[dict[str, Any]]:
    """Patients per value over the whole result (not the page)."""
    counts: dict[str, int] = {}
    for hit in hits:
        for value in {value_of(s, hit.patient) for s in hit.series}:
            if value:
                counts[value] = counts.get(value, 0) + 1
    return [{"value": value, "count": count} for value, count in sorted(counts.items())]
