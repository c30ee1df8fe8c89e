"""NBIA v4's getSimpleSearch over the emulator's data: a form in, the answer (or NBIA's error) out.

Reads the form as NBIA's ``SearchUtil.getPatients_v4`` does: ``criteriaType{i}`` for ``i`` = 0, 1, … until one is
missing, with ``value{i}`` (``fromDate{i}``/``toDate{i}`` as MM-dd-yyyy for ``DateRangeCriteria``, ``from{i}``/
``to{i}`` for the age, pixel-spacing and slice-thickness ranges, ``eventType{i}``/``fromDay{i}``/``toDay{i}`` for
``TimePointCriteria``); values of a list criterion are alternatives, different types must all hold, and of a
criterion NBIA holds once (every non-list one) the last sent counts; an unknown criteria type is ignored;
``sortField``, ``sortDirection``, ``start`` and ``size`` are required (NBIA reads them unconditionally and fails
with 500 without them). Sorting is ``ResultSetSorter``'s (an unknown field sorts by collection). A page is
``resultSet[start:start + size]``; a ``start`` beyond the result is NBIA's 500.

Each criterion is matched as ``DICOMQueryHandlerImpl`` writes its HQL (see
:mod:`airflow_provider_tcia.api.simple_search` for the semantics and the files): the date range on the
series' release date; the age on the study's PatientAge in whole years; pixel spacing and slice thickness on what the
series' DICOM files carry (:attr:`~.dicom.SeriesTemplate.pixel_spacing_mm`, ``slice_thickness_mm`` — a
projection image has no SliceThickness and never matches); the description's words on the study description,
series description and protocol name; phantoms on the patient's ``Phantom``; exclude-commercial on the
collection's licence; the time point on the study's event type and days from it. A malformed value NBIA parses
(a date, a number, a day) is NBIA's 500.

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

from airflow_provider_tcia.emulator.dataset import Dataset, Patient, Series, Study

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
    date_range: tuple[dt.date, dt.date] | None = None
    min_studies: int | None = None
    modalities_anded: bool = False
    #: criteriaType (lower-case) -> (from, to) of the numeric ranges.
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    description: list[re.Pattern[str]] | None = None
    phantom: str | None = None
    exclude_commercial: bool = False
    time_point: tuple[str, int | None, int | None] | None = None


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
            criteria.date_range = (_date(form.get(f"fromDate{i}")), _date(form.get(f"toDate{i}")))
        elif kind == "patientagerangecriteria":
            low, high = form.get(f"from{i}"), form.get(f"to{i}")
            if low is None or high is None:
                raise SearchError(500, SERVER_ERROR)  # (NBIA reads both unconditionally)
            if low and high:  # (an empty one: NBIA writes no condition)
                criteria.ranges[kind] = (_number(low), _number(high))
            else:
                criteria.ranges.pop(kind, None)
        elif kind in ("pixelspacingrangecriteria", "slicethicknessrangecriteria"):
            criteria.ranges[kind] = (_number(form.get(f"from{i}")), _number(form.get(f"to{i}")))
        elif kind == "descriptioncriteria":
            criteria.description = _description(_required(value))
        elif kind == "phantomcriteria":
            criteria.phantom = _required(value).upper()
        elif kind == "excludecommercialcriteria":
            criteria.exclude_commercial = _required(value).upper() == "YES"
        elif kind == "timepointcriteria":
            criteria.time_point = _time_point(form, i)
        elif kind == "minnumberofstudiescriteria":
            try:
                criteria.min_studies = int(value or "")
            except ValueError:
                raise SearchError(500, SERVER_ERROR) from None
        elif kind == "modalityandedsearchcriteria":
            criteria.modalities_anded = (value or "").strip().lower() == "all"
        elif kind in _MATCHERS:
            criteria.values.setdefault(kind, set()).add(_required(value))
        i += 1
    return criteria


def _required(value: str | None) -> str:
    if value is None:
        raise SearchError(500, SERVER_ERROR)  # NBIA reads value{i} unconditionally
    return value


def _date(text: str | None) -> dt.date:
    try:
        return dt.datetime.strptime((text or "").strip(), "%m-%d-%Y").date()
    except ValueError:
        raise SearchError(500, SERVER_ERROR) from None


def _number(text: str | None) -> float:
    """Java's ``Double.parseDouble`` (or SQL's number): anything else is NBIA's 500."""
    try:
        number = float((text or "").strip())
    except ValueError:
        raise SearchError(500, SERVER_ERROR) from None
    if number != number:  # NaN
        raise SearchError(500, SERVER_ERROR)
    return number


def _description(text: str) -> list[re.Pattern[str]] | None:
    """``processDescription``: upper-cased, ``*`` -> ``%``, whitespace collapsed, words split on spaces outside
    double quotes, quotes dropped; each word a ``LIKE '%word%'`` (``%`` and ``_`` SQL's wildcards)."""
    text = re.sub(r"\s+", " ", text.upper().replace("*", "%"))
    if not text:
        return None
    words = re.split(r' (?=(?:[^"]*"[^"]*")*[^"]*$)', text)
    patterns = []
    for word in words:
        like = word.replace('"', "")
        body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like)
        patterns.append(re.compile(f".*{body}.*", re.DOTALL))
    return patterns


def _time_point(form: Mapping[str, str], i: int) -> tuple[str, int | None, int | None]:
    """SearchUtil's TimePointCriteria: ``fromDay``/``toDay`` parsed as integers when not empty; no
    ``eventType``, or neither day, is an error (a 500)."""
    days = []
    for name in ("fromDay", "toDay"):
        text = form.get(f"{name}{i}") or ""
        try:
            days.append(int(text) if text else None)
        except ValueError:
            raise SearchError(500, SERVER_ERROR) from None
    event = form.get(f"eventType{i}")
    if event is None or (days[0] is None and days[1] is None):
        raise SearchError(500, SERVER_ERROR)
    return event, days[0], days[1]


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
    "thirdpartyanalysis": lambda s, p: _third_party(s),
}


def _age_in_years(age: str | None) -> int | None:
    """NBIA's ``CASE``: ``045Y`` -> 45, months and weeks rounded down to years, anything else (days) NULL."""
    text = (age or "").strip().lower()
    divisors = {"y": 1, "m": 12, "w": 52}
    if not text or text[-1] not in divisors:
        return None
    try:
        return int(float(text[:-1])) // divisors[text[-1]]
    except ValueError:
        return None


def _description_matches(patterns: list[re.Pattern[str]], s: Series, study: Study | None) -> bool:
    texts = [(t or "").upper() for t in ((study.description if study else None), s.description, s.protocol)]
    return any(p.fullmatch(t) for p in patterns for t in texts if t)


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
    study = data.study(s.study_instance_uid)
    if criteria.date_range is not None:
        first_day, last_day = criteria.date_range  # (series.dateReleased, as NBIA's processDateRange)
        if not first_day <= s.released <= last_day:
            return False
    if criteria.phantom == "2" and patient.phantom != "YES":
        return False
    if criteria.phantom == "1" and patient.phantom == "YES":
        return False
    if criteria.exclude_commercial:
        collection = data.collection(s.collection)
        if collection is not None and not collection.commercial_use:
            return False
    if "patientagerangecriteria" in criteria.ranges:
        low, high = criteria.ranges["patientagerangecriteria"]
        years = _age_in_years(study.patient_age if study else None)
        if years is None or not low <= years <= high:
            return False
    if criteria.description is not None and not _description_matches(criteria.description, s, study):
        return False
    if criteria.time_point is not None:
        event, first, last = criteria.time_point
        if study is None or (len(event) > 1 and study.event_type != event):
            return False  # (NBIA compares the event only when it is longer than one character)
        offset = study.days_from_event
        if offset is None or (first is not None and offset < first) or (last is not None and offset > last):
            return False  # (TimePointCriteria always has a bound, so a study without an offset never matches)
    for kind, measure in (
        ("pixelspacingrangecriteria", lambda t: t.pixel_spacing_mm),
        ("slicethicknessrangecriteria", lambda t: t.slice_thickness_mm),
    ):
        if kind in criteria.ranges:
            low, high = criteria.ranges[kind]
            value = measure(data.template(s))  # (every file of a series carries the same value)
            if value is None or not low <= value <= high:
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
