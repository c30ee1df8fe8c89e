"""NBIA v4's getSimpleSearch: a typed criteria builder, its form, its pages and its answer flattened to rows.

getSimpleSearch (POST form, NBIA v4 only) selects *patients*: each criterion is a pair of form fields
``criteriaType{i}`` and ``value{i}`` (``i`` = 0, 1, …; a date range uses ``fromDate{i}``/``toDate{i}`` as
MM-dd-yyyy), values of one criterion type are alternatives (any of them), different types must all hold;
``sortField``, ``sortDirection``, ``start`` and ``size`` are read unconditionally (a page of ``size`` patients
from ``start``). The answer (nulls dropped)::

    {"resultSet": [{"id", "subjectId", "project", "totalNumberOfStudies", "totalNumberOfSeries",
                    "studyIdentifiers": [{"studyIdentifier", "seriesIdentifiers": [...],
                                          "seriesAndModality": [{"seriesId", "modality"}]}], ...}],
     "totalPatients": N, "bodyParts": [...], "modalities": [...], "collections": [...], "species": [...],
     "sort": "field-direction"}

NBIA identifies studies and series there by its own database keys (integers), not by DICOM UIDs: a row says
so in its names (``StudyIdentifier``, ``SeriesIdentifier``). One row per series (:func:`flatten`).

:class:`SimpleSearch` validates everything before anything is sent and renders the form (:meth:`SimpleSearch.form`);
the hook fetches every page (:meth:`~airflow_provider_tcia.hooks.tcia.TciaHook.iter_simple_search`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from airflow_provider_tcia.api.dates import parse_date
from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.exceptions import TciaBadRequestError

#: Patients asked for per page (``size``); the hook's ``page_size`` overrides it.
PAGE_SIZE = 500
#: What NBIA sorts the patients by (``ResultSetSorter``; anything else sorts by collection).
SORT_FIELDS = ("subject", "collection", "study", "series", "totalNumberOfStudies", "totalNumberOfSeries")
SORT_DIRECTIONS = ("ascending", "descending")
#: The date format of ``fromDate{i}``/``toDate{i}``.
DATE_FORMAT = "%m-%d-%Y"

#: The columns of a flattened row, in order.
COLUMNS = (
    "Collection",
    "PatientID",
    "StudyIdentifier",
    "SeriesIdentifier",
    "Modality",
    "TotalNumberOfStudies",
    "TotalNumberOfSeries",
)
#: Columns that are whole numbers (Parquet writes them as int64).
INTEGER_COLUMNS = ("StudyIdentifier", "SeriesIdentifier", "TotalNumberOfStudies", "TotalNumberOfSeries")

Values = tuple[str, ...]
Direction = Literal["ascending", "descending"]

#: (field, NBIA's criteriaType) of the criteria that take one value each, in the order they are sent.
_VALUE_CRITERIA = (
    ("collections", "CollectionCriteria"),
    ("species", "SpeciesCriteria"),
    ("modalities", "ImageModalityCriteria"),
    ("body_parts", "AnatomicalSiteCriteria"),
    ("manufacturers", "ManufacturerCriteria"),
    ("models", "ModelCriteria"),
    ("software_versions", "SoftwareVersionCriteria"),
    ("patient_sexes", "PatientSexCriteria"),
    ("patient_ids", "PatientCriteria"),
    ("study_instance_uids", "StudyCriteria"),
    ("series_instance_uids", "SeriesCriteria"),
)
_UID_FIELDS = ("study_instance_uids", "series_instance_uids")
#: Fields that are not criteria.
_SORTING = ("sort_field", "sort_direction")


@dataclass(frozen=True)
class SimpleSearch:
    """The criteria of one getSimpleSearch, in Python names, checked when it is built (nothing sent yet).

    Each list-like criterion takes a string (one value) or an iterable of strings (any of them); different
    criteria must all hold. At least one criterion is required: a search without any would list the whole
    archive (use :class:`TciaGetCollectionValuesOperator` and friends for that).

    :param collections: collection names (``CollectionCriteria``), e.g. ``["TCGA-GBM"]``.
    :param species: species codes (``SpeciesCriteria``), e.g. ``["337915000"]`` (Homo sapiens).
    :param modalities: DICOM modalities (``ImageModalityCriteria``), e.g. ``["CT", "MR"]``.
    :param all_modalities: the patient must have a series of *every* modality in ``modalities``
        (``ModalityAndedSearchCriteria`` ``all``), not of any one.
    :param body_parts: body parts examined (``AnatomicalSiteCriteria``), e.g. ``["BRAIN"]``.
    :param manufacturers: equipment manufacturers (``ManufacturerCriteria``).
    :param models: equipment models (``ModelCriteria``).
    :param software_versions: software versions (``SoftwareVersionCriteria``).
    :param patient_sexes: DICOM patient sex codes (``PatientSexCriteria``): ``M``, ``F`` or ``O``.
    :param date_range: ``(from, to)``, both included: dates, datetimes or ISO-8601 strings
        (``DateRangeCriteria``, sent as MM-dd-yyyy).
    :param patient_ids: patient IDs (``PatientCriteria``).
    :param study_instance_uids: StudyInstanceUIDs (``StudyCriteria``), each checked as a DICOM UID.
    :param series_instance_uids: SeriesInstanceUIDs (``SeriesCriteria``), each checked as a DICOM UID.
    :param min_studies: only patients with at least this many studies (``MinNumberOfStudiesCriteria``).
    :param third_party_analysis: only series that are (``True``) or are not (``False``) third-party analyses
        (``ThirdPartyAnalysis``).
    :param exclude_commercial: leave out collections whose licence forbids commercial use
        (``ExcludeCommercialCriteria``).
    :param sort_field: how NBIA orders the patients: one of :data:`SORT_FIELDS` (``subject``: patient ID).
    :param sort_direction: ``ascending`` or ``descending``.
    """

    collections: Values = ()
    species: Values = ()
    modalities: Values = ()
    all_modalities: bool = False
    body_parts: Values = ()
    manufacturers: Values = ()
    models: Values = ()
    software_versions: Values = ()
    patient_sexes: Values = ()
    date_range: tuple[dt.date, dt.date] | None = None
    patient_ids: Values = ()
    study_instance_uids: Values = ()
    series_instance_uids: Values = ()
    min_studies: int | None = None
    third_party_analysis: bool | None = None
    exclude_commercial: bool = False
    sort_field: str = "subject"
    sort_direction: Direction = "ascending"

    def __init__(
        self,
        *,
        collections: str | Iterable[str] | None = None,
        species: str | Iterable[str] | None = None,
        modalities: str | Iterable[str] | None = None,
        all_modalities: bool = False,
        body_parts: str | Iterable[str] | None = None,
        manufacturers: str | Iterable[str] | None = None,
        models: str | Iterable[str] | None = None,
        software_versions: str | Iterable[str] | None = None,
        patient_sexes: str | Iterable[str] | None = None,
        date_range: tuple[str | dt.date, str | dt.date] | list[str | dt.date] | None = None,
        patient_ids: str | Iterable[str] | None = None,
        study_instance_uids: str | Iterable[str] | None = None,
        series_instance_uids: str | Iterable[str] | None = None,
        min_studies: int | str | None = None,
        third_party_analysis: bool | None = None,
        exclude_commercial: bool = False,
        sort_field: str = "subject",
        sort_direction: str = "ascending",
    ) -> None:
        given = {
            "collections": collections, "species": species, "modalities": modalities, "body_parts": body_parts,
            "manufacturers": manufacturers, "models": models, "software_versions": software_versions,
            "patient_sexes": patient_sexes, "patient_ids": patient_ids,
            "study_instance_uids": study_instance_uids, "series_instance_uids": series_instance_uids,
        }  # fmt: skip
        for name, value in given.items():
            object.__setattr__(self, name, _values(name, value))
        object.__setattr__(self, "all_modalities", _flag("all_modalities", all_modalities))
        object.__setattr__(self, "date_range", _date_range(date_range))
        object.__setattr__(self, "min_studies", _min_studies(min_studies))
        if third_party_analysis is not None:
            third_party_analysis = _flag("third_party_analysis", third_party_analysis)
        object.__setattr__(self, "third_party_analysis", third_party_analysis)
        object.__setattr__(self, "exclude_commercial", _flag("exclude_commercial", exclude_commercial))
        if sort_field not in SORT_FIELDS:
            raise TciaBadRequestError(f"sort_field={sort_field!r} is not one of {', '.join(SORT_FIELDS)}")
        if sort_direction not in SORT_DIRECTIONS:
            raise TciaBadRequestError(f"sort_direction={sort_direction!r} is not ascending or descending")
        object.__setattr__(self, "sort_field", sort_field)
        object.__setattr__(self, "sort_direction", sort_direction)
        if self.all_modalities and len(self.modalities) < 2:
            raise TciaBadRequestError("all_modalities=True needs at least two modalities (every one of them)")
        if not self.criteria():
            raise TciaBadRequestError(
                "getSimpleSearch needs at least one criterion (collections, modalities, body_parts, date_range, "
                "patient_ids …); without one it would list the whole archive. Nothing was sent"
            )

    @classmethod
    def from_mapping(cls, criteria: Mapping[str, Any]) -> SimpleSearch:
        """Build from a mapping of the same names (``{"collections": ["TCGA-GBM"]}``), as a DAG gives it."""
        if not isinstance(criteria, Mapping):
            raise TciaBadRequestError(f"criteria must be a mapping or a SimpleSearch, not {shown(criteria)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in criteria if k not in known)
        if unknown:
            raise TciaBadRequestError(
                f"getSimpleSearch has no criterion {', '.join(unknown)}; it takes: {', '.join(sorted(known))}"
            )
        return cls(**{k: v for k, v in criteria.items() if v is not None})

    def criteria(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """Every criterion as (criteriaType, its fields without the index), in the order they are sent."""
        out: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        for name, kind in _VALUE_CRITERIA:
            out += [(kind, (("value", value),)) for value in getattr(self, name)]
            if name == "modalities" and self.all_modalities:
                out.append(("ModalityAndedSearchCriteria", (("value", "all"),)))
        if self.date_range is not None:
            start, end = self.date_range
            out.append(
                (
                    "DateRangeCriteria",
                    (("fromDate", start.strftime(DATE_FORMAT)), ("toDate", end.strftime(DATE_FORMAT))),
                )
            )
        if self.min_studies is not None:
            out.append(("MinNumberOfStudiesCriteria", (("value", str(self.min_studies)),)))
        if self.third_party_analysis is not None:
            out.append(("ThirdPartyAnalysis", (("value", "yes" if self.third_party_analysis else "no"),)))
        if self.exclude_commercial:
            out.append(("ExcludeCommercialCriteria", (("value", "true"),)))
        return out

    def form(self, start: int, size: int) -> list[tuple[str, str]]:
        """The form fields of the page of ``size`` patients from ``start``."""
        out: list[tuple[str, str]] = []
        for i, (kind, values) in enumerate(self.criteria()):
            out.append((f"criteriaType{i}", kind))
            out += [(f"{key}{i}", value) for key, value in values]
        out += [
            ("sortField", self.sort_field),
            ("sortDirection", self.sort_direction),
            ("start", str(start)),
            ("size", str(size)),
        ]
        return out

    def describe(self) -> str:
        """A short description for messages: ``getSimpleSearch(collections=['TCGA-GBM'], modalities=['MR'])``."""
        shown_fields = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SORTING or value in ((), None, False):
                continue
            if isinstance(value, tuple) and f.name != "date_range":
                value = list(value)
            elif f.name == "date_range":
                value = tuple(d.isoformat() for d in value)
            shown_fields.append(f"{f.name}={shown(value, 80)}")
        return f"getSimpleSearch({', '.join(shown_fields)})"


def check_page_size(value: object) -> int:
    """``value`` if it is a whole number of patients per page, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TciaBadRequestError(f"page_size must be a whole number of patients, at least 1, not {value!r}")
    return value


def flatten(answer: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per series of a getSimpleSearch page (``resultSet``), patient fields repeated; a patient the
    answer lists without series gives one row without study and series. Absent fields are left out."""
    result_set = answer.get("resultSet") or []
    if not isinstance(result_set, list):
        raise ValueError(f"resultSet is not a list but {type(result_set).__name__}")
    for patient in result_set:
        if not isinstance(patient, Mapping):
            continue
        base = _present(
            {
                "Collection": patient.get("project"),
                "PatientID": patient.get("subjectId"),
                "TotalNumberOfStudies": patient.get("totalNumberOfStudies"),
                "TotalNumberOfSeries": patient.get("totalNumberOfSeries"),
            }
        )
        emitted = False
        for study in patient.get("studyIdentifiers") or ():
            if not isinstance(study, Mapping):
                continue
            modality = {
                item.get("seriesId"): item.get("modality")
                for item in study.get("seriesAndModality") or ()
                if isinstance(item, Mapping)
            }
            for series in study.get("seriesIdentifiers") or ():
                emitted = True
                yield _ordered(
                    base
                    | _present(
                        {
                            "StudyIdentifier": study.get("studyIdentifier"),
                            "SeriesIdentifier": series,
                            "Modality": modality.get(series),
                        }
                    )
                )
        if not emitted:
            yield _ordered(base)


def total_patients(answer: Mapping[str, Any]) -> int:
    """The answer's ``totalPatients`` (0 when absent)."""
    total = answer.get("totalPatients", 0)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"totalPatients is not a count but {total!r}")
    return total


# --- checks ---------------------------------------------------------------------------------------------------
def _values(name: str, value: object) -> Values:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise TciaBadRequestError(f"{name} must be a string or a list of strings, not {shown(value)}")
    out: list[str] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and name == "patient_ids":
            item = str(item)  # a numeric PatientID rendered as a native object
        if not isinstance(item, str):
            raise TciaBadRequestError(f"{name} must hold strings, not {type(item).__name__} {shown(item)}")
        if not item.strip():
            raise TciaBadRequestError(f"{name} holds an empty string; give a value or leave it out")
        text = check_uid(item, f"getSimpleSearch: {name}") if name in _UID_FIELDS else item.strip()
        if text not in out:
            out.append(text)
    return tuple(out)


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # rendered from a template
    raise TciaBadRequestError(f"{name} must be True or False, not {shown(value)}")


def _date_range(value: object) -> tuple[dt.date, dt.date] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TciaBadRequestError(f"date_range must be a pair (from, to), not {shown(value)}")
    pair = list(value)
    if len(pair) != 2:
        raise TciaBadRequestError(f"date_range must be a pair (from, to), not {len(pair)} values {shown(value)}")
    start, end = (_plain(parse_date(v, param=f"date_range[{i}]")) for i, v in enumerate(pair))
    if start > end:
        raise TciaBadRequestError(f"date_range starts after it ends: {start.isoformat()} > {end.isoformat()}")
    return start, end


def _min_studies(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # rendered from a template
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TciaBadRequestError(f"min_studies must be a whole number of studies, at least 1, not {shown(value)}")
    return value


def _present(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    return {c: row[c] for c in COLUMNS if c in row}


def _plain(day: dt.date) -> dt.date:
    return dt.date(day.year, day.month, day.day)  # (pendulum's Date shows as itself)
