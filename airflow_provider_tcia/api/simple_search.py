"""NBIA v4's getSimpleSearch: a typed criteria builder, its form, its pages and its answer flattened to rows.

getSimpleSearch (POST form, NBIA v4 only) selects *patients*: each criterion is a pair of form fields
``criteriaType{i}`` and ``value{i}`` (``i`` = 0, 1, …; a date range uses ``fromDate{i}``/``toDate{i}`` as
MM-dd-yyyy, the three numeric ranges ``from{i}``/``to{i}``, a time point ``eventType{i}``/``fromDay{i}``/
``toDay{i}``), values of one list criterion are alternatives (any of them), different types must all hold;
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

What NBIA does with each criterion, read in CBIIT/NBIA-TCIA @865725e0: ``restUtil/SearchUtil.java``
(``getPatients_v4``: the form), ``nbia-dao``'s ``search/DICOMQueryHandlerImpl.java`` and ``DICOMQueryHandler.java``
(the HQL), ``query/DICOMQuery.java`` and ``ncia/criteria/*Criteria.java`` (how a criterion is kept):

* A list criterion (collection, modality …) accumulates its values (any of them). Every other criterion is held
  once, so of several sent the *last* counts (date range, the three ranges, description, phantom, time point,
  exclude-commercial) — the builder sends each at most once.
* ``DateRangeCriteria``: ``series.dateReleased`` (the *release* date, not the study date), days, both ends
  included.
* ``PatientAgeRangeCriteria``: the series' PatientAge as DICOM stores it (``045Y``, ``030M``, ``012W``) in whole
  years — ``Y`` as is, months ``floor(/12)``, weeks ``floor(/52)``; days (``D``) and a missing age never match —
  ``between from and to`` (both included; both must be given, else NBIA ignores the criterion).
* ``PixelSpacingRangeCriteria``, ``SliceThicknessRangeCriteria``: a series with *any* image whose stored
  PixelSpacing (the row spacing) or SliceThickness, in mm, is ``between from and to`` (both included); NBIA
  parses both with ``Double.parseDouble`` (anything else: a 500).
* ``DescriptionCriteria``: upper-cased, ``*`` a wildcard, whitespace collapsed, split into words (a ``"quoted
  phrase"`` stays one); a series matches when *any* word is a substring of its study description, series
  description or protocol name, case-insensitively.
* ``PhantomCriteria``: ``1`` leaves out phantom patients (``qcSubject`` not ``YES``), ``2`` keeps only them, ``0``
  (or anything else) filters nothing.
* ``ExcludeCommercialCriteria``: only ``YES`` (any case) filters, leaving out series whose licence forbids
  commercial use; any other value (``true`` too) filters nothing.
* ``TimePointCriteria``: the study's LongitudinalTemporalEventType equals ``eventType{i}`` and its
  LongitudinalTemporalOffsetFromEvent (days) is ``>= fromDay{i}`` and ``<= toDay{i}``; the event type and at least
  one bound are required (NBIA fails otherwise), each bound a whole number.
"""

from __future__ import annotations

import datetime as dt
import math
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
#: ``phantom=`` -> PhantomCriteria's value (NBIA's ``ExcludePhantom`` ``1``, ``PhantomOnly`` ``2``).
PHANTOM_OPTIONS = {"exclude": "1", "only": "2"}

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
Range = tuple[float, float]
DayBounds = tuple[int | None, int | None]

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
_LIST_FIELDS = frozenset(name for name, _ in _VALUE_CRITERIA)
#: (field, NBIA's criteriaType, what is measured) of the numeric ranges sent as ``from{i}``/``to{i}``.
_RANGE_CRITERIA = (
    ("patient_age_range", "PatientAgeRangeCriteria", "years"),
    ("pixel_spacing_range", "PixelSpacingRangeCriteria", "mm"),
    ("slice_thickness_range", "SliceThicknessRangeCriteria", "mm"),
)
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
    :param date_range: ``(from, to)`` *release* dates (NBIA's ``series.dateReleased``, not the study date), both
        included: dates, datetimes or ISO-8601 strings (``DateRangeCriteria``, sent as MM-dd-yyyy).
    :param patient_age_range: ``(from, to)`` patient age in years, both included (``PatientAgeRangeCriteria``):
        NBIA reads the DICOM age (``045Y``; months and weeks rounded down to years; a series without an age or
        with an age in days never matches).
    :param pixel_spacing_range: ``(from, to)`` pixel spacing in mm, both included (``PixelSpacingRangeCriteria``):
        series with an image whose row spacing is in the range.
    :param slice_thickness_range: ``(from, to)`` slice thickness in mm, both included
        (``SliceThicknessRangeCriteria``): series with an image whose SliceThickness is in the range.
    :param description: words to look for (``DescriptionCriteria``): a series matches when *any* word is part of
        its study description, series description or protocol name, case-insensitively; ``*`` is a wildcard and
        a ``"quoted phrase"`` is one word.
    :param phantom: ``"exclude"`` leaves out phantom patients, ``"only"`` keeps only them (``PhantomCriteria``
        ``1``/``2``); leave it out to include them.
    :param patient_ids: patient IDs (``PatientCriteria``).
    :param study_instance_uids: StudyInstanceUIDs (``StudyCriteria``), each checked as a DICOM UID.
    :param series_instance_uids: SeriesInstanceUIDs (``SeriesCriteria``), each checked as a DICOM UID.
    :param min_studies: only patients with at least this many studies (``MinNumberOfStudiesCriteria``).
    :param third_party_analysis: only series that are (``True``) or are not (``False``) third-party analyses
        (``ThirdPartyAnalysis``).
    :param exclude_commercial: leave out series whose licence forbids commercial use
        (``ExcludeCommercialCriteria`` ``YES``: NBIA filters on nothing else).
    :param time_point_event: the clinical event the study's time point counts from (``TimePointCriteria``
        ``eventType``: the study's LongitudinalTemporalEventType, matched exactly); needs ``time_point_days``.
    :param time_point_days: ``(from, to)`` days from that event (LongitudinalTemporalOffsetFromEvent), whole
        numbers, negative for before it, both included; one end may be ``None`` (open).
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
    patient_age_range: Range | None = None
    pixel_spacing_range: Range | None = None
    slice_thickness_range: Range | None = None
    description: str | None = None
    phantom: Literal["exclude", "only"] | None = None
    patient_ids: Values = ()
    study_instance_uids: Values = ()
    series_instance_uids: Values = ()
    min_studies: int | None = None
    third_party_analysis: bool | None = None
    exclude_commercial: bool = False
    time_point_event: str | None = None
    time_point_days: DayBounds | None = None
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
        patient_age_range: tuple[float | str, float | str] | list[float | str] | None = None,
        pixel_spacing_range: tuple[float | str, float | str] | list[float | str] | None = None,
        slice_thickness_range: tuple[float | str, float | str] | list[float | str] | None = None,
        description: str | None = None,
        phantom: str | None = None,
        patient_ids: str | Iterable[str] | None = None,
        study_instance_uids: str | Iterable[str] | None = None,
        series_instance_uids: str | Iterable[str] | None = None,
        min_studies: int | str | None = None,
        third_party_analysis: bool | None = None,
        exclude_commercial: bool = False,
        time_point_event: str | None = None,
        time_point_days: tuple[int | str | None, int | str | None] | list[int | str | None] | None = None,
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
        ranges = {
            "patient_age_range": patient_age_range,
            "pixel_spacing_range": pixel_spacing_range,
            "slice_thickness_range": slice_thickness_range,
        }
        for name, _kind, unit in _RANGE_CRITERIA:
            object.__setattr__(self, name, _range(name, ranges[name], unit))
        object.__setattr__(self, "description", _description(description))
        object.__setattr__(self, "phantom", _phantom(phantom))
        object.__setattr__(self, "min_studies", _min_studies(min_studies))
        if third_party_analysis is not None:
            third_party_analysis = _flag("third_party_analysis", third_party_analysis)
        object.__setattr__(self, "third_party_analysis", third_party_analysis)
        object.__setattr__(self, "exclude_commercial", _flag("exclude_commercial", exclude_commercial))
        event, days = _time_point(time_point_event, time_point_days)
        object.__setattr__(self, "time_point_event", event)
        object.__setattr__(self, "time_point_days", days)
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
                "patient_ids, description …); without one it would list the whole archive. Nothing was sent"
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
        for name, kind, _unit in _RANGE_CRITERIA:
            bounds = getattr(self, name)
            if bounds is not None:
                out.append((kind, (("from", _number_text(bounds[0])), ("to", _number_text(bounds[1])))))
        if self.description is not None:
            out.append(("DescriptionCriteria", (("value", self.description),)))
        if self.phantom is not None:
            out.append(("PhantomCriteria", (("value", PHANTOM_OPTIONS[self.phantom]),)))
        if self.min_studies is not None:
            out.append(("MinNumberOfStudiesCriteria", (("value", str(self.min_studies)),)))
        if self.third_party_analysis is not None:
            out.append(("ThirdPartyAnalysis", (("value", "yes" if self.third_party_analysis else "no"),)))
        if self.exclude_commercial:
            out.append(("ExcludeCommercialCriteria", (("value", "YES"),)))
        if self.time_point_event is not None and self.time_point_days is not None:
            low, high = self.time_point_days
            days = (("fromDay", low), ("toDay", high))
            out.append(
                (
                    "TimePointCriteria",
                    (("eventType", self.time_point_event), *((k, str(v)) for k, v in days if v is not None)),
                )
            )
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
            if f.name in _LIST_FIELDS:
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
    start, end = (_plain(parse_date(v, param=f"date_range[{i}]")) for i, v in enumerate(_pair("date_range", value)))
    if start > end:
        raise TciaBadRequestError(f"date_range starts after it ends: {start.isoformat()} > {end.isoformat()}")
    return start, end


def _pair(name: str, value: object) -> list[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise TciaBadRequestError(f"{name} must be a pair (from, to), not {shown(value)}")
    pair = list(value)
    if len(pair) != 2:
        raise TciaBadRequestError(f"{name} must be a pair (from, to), not {len(pair)} values {shown(value)}")
    return pair


def _range(name: str, value: object, unit: str) -> Range | None:
    """A (from, to) of non-negative numbers, ``from <= to`` (numbers rendered from a template as text too)."""
    if value is None:
        return None
    bounds: list[float] = []
    for i, item in enumerate(_pair(name, value)):
        number: object = item
        if isinstance(item, str):
            try:
                number = float(item.strip())
            except ValueError:
                raise TciaBadRequestError(f"{name}[{i}] must be a number of {unit}, not {shown(item)}") from None
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise TciaBadRequestError(f"{name}[{i}] must be a number of {unit}, not {shown(item)}")
        if number < 0:
            raise TciaBadRequestError(f"{name}[{i}] must not be negative, not {shown(item)}")
        bounds.append(number)
    low, high = bounds
    if low > high:
        raise TciaBadRequestError(f"{name} starts after it ends: {shown(low)} > {shown(high)}")
    return low, high


def _number_text(value: float) -> str:
    """A bound as the form sends it: ``40``, ``0.5`` (NBIA parses it as a double, or puts it in SQL as is)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TciaBadRequestError(f"description must be a string of words, not {shown(value)}")
    text = " ".join(value.split())
    if not text.replace('"', "").strip():
        raise TciaBadRequestError("description is empty; give words to look for or leave it out")
    return text


def _phantom(value: object) -> Literal["exclude", "only"] | None:
    if value is None:
        return None
    option = value.strip().lower() if isinstance(value, str) else value
    if option == "exclude":
        return "exclude"
    if option == "only":
        return "only"
    raise TciaBadRequestError(
        f"phantom must be 'exclude' or 'only' (leave it out to include phantoms), not {shown(value)}"
    )


def _day(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() == "none":
            return None  # (an open end rendered from a template)
        if text.lstrip("+-").isdigit():
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TciaBadRequestError(f"{name} must be a whole number of days or None, not {shown(value)}")
    return value


def _time_point(event: object, days: object) -> tuple[str | None, DayBounds | None]:
    if event is None and days is None:
        return None, None
    if event is None or days is None:
        raise TciaBadRequestError(
            "time_point_event and time_point_days go together (NBIA's TimePointCriteria needs the event type and "
            "days from it)"
        )
    if not isinstance(event, str) or len(event.strip()) < 2:
        raise TciaBadRequestError(
            f"time_point_event must name an event type (two characters at least: NBIA ignores a shorter one), "
            f"not {shown(event)}"
        )
    low, high = (_day(f"time_point_days[{i}]", v) for i, v in enumerate(_pair("time_point_days", days)))
    if low is None and high is None:
        raise TciaBadRequestError("time_point_days needs a from or a to day (NBIA refuses neither)")
    if low is not None and high is not None and low > high:
        raise TciaBadRequestError(f"time_point_days starts after it ends: {low} > {high}")
    return event.strip(), (low, high)


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
