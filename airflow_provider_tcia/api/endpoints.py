"""The one table of TCIA's endpoints.

Everything that knows about an endpoint reads it from here: the hook's methods and its validation, the
operators' templated fields, the emulator's routing and validation, ``/metadata`` and the docs. Adding an
endpoint is one entry.

Names: each endpoint is keyed by its name in the seed API (the key-based query API, v2), e.g. ``getSeries``;
each parameter has a Python name (``series_instance_uid``) and the seed's spelling (``SeriesInstanceUID``).
How the current API (NBIA) spells them differently is recorded on the entry too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from airflow_provider_tcia.api import simple_search
from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.exceptions import TciaBadRequestError

#: The formats of the seed API's metadata endpoints; JSON is the default.
FORMATS = ("json", "csv", "xml", "html")

Kind = Literal["query", "download"]
#: The API generations (``legacy``: the seed; ``nbia``: TCIA's current API).
Api = Literal["legacy", "nbia"]
#: How an endpoint's answer arrives: JSON rows (or the format asked for), or one text/plain value (an MD5).
Answer = Literal["rows", "text"]
#: How the parameters travel: the query string (GET) or a form body (POST).
HttpMethod = Literal["GET", "POST"]


class DateSpelling(NamedTuple):
    """How a generation spells a date parameter: name, ``strftime`` format, and whether the server selects on
    or after the date (``inclusive``) rather than strictly after it."""

    name: str
    format: str
    inclusive: bool


@dataclass(frozen=True)
class Param:
    """One query parameter."""

    name: str
    """Python name, snake_case (``series_instance_uid``)."""
    api_name: str
    """The seed API's spelling (``SeriesInstanceUID``)."""
    required: bool = False
    is_date: bool = False
    description: str = ""
    nbia_name: str | None = None
    """NBIA's spelling where it differs from the seed's (``SeriesUID`` for getDicomTags)."""
    nbia_v1_name: str | None = None
    """NBIA v1's spelling where it differs from v4's (``SOPInstanceUid`` for getM5HashForImage)."""

    @property
    def is_uid(self) -> bool:
        """A DICOM UID (``series_instance_uid`` …), checked as one before anything is sent."""
        return self.name.endswith("_instance_uid")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the seed API and how the current API (NBIA) differs for it."""

    name: str
    """The seed's name, as in ``/services/v2/TCIA/query/<name>``."""
    method: str
    """The hook method's name."""
    description: str
    params: tuple[Param, ...]
    result: str
    """What a row is (``Series``, ``Patient`` …); the ``Result.Name`` of ``/metadata``."""
    attributes: tuple[str, ...]
    """The seed's row fields, in order (for downloads: empty)."""
    kind: Kind = "query"
    resource: str = "TCIA"
    """The seed's resource: ``TCIA`` or ``SharedList``."""
    nbia_name: str | None = None
    """NBIA's name where it differs (``getPatientByCollectionAndModality``)."""
    nbia_version: str = "v4"
    """The NBIA version that serves it (``v1`` for what v4 lacks)."""
    nbia_formats: bool = True
    """False where NBIA ignores ``format`` and always answers JSON."""
    aliases: tuple[str, ...] = ()
    apis: tuple[Api, ...] = ("legacy", "nbia")
    """The generations that serve it: both, or ``("nbia",)`` for what only NBIA has."""
    legacy_from: tuple[str, ...] = ()
    """For an NBIA-only endpoint: the seed's endpoints its answer is computed from on a legacy connection
    (``hooks/computed.py``); empty: a legacy connection refuses it before anything is sent."""
    http_method: HttpMethod = "GET"
    """``POST``: NBIA takes the parameters as form fields."""
    answer: Answer = "rows"
    """``text``: one text/plain value; the hook's query methods give it as one row ``{attributes[0]: value}``
    (none for an empty answer)."""
    nbia_v1: bool = True
    """Whether NBIA v1 serves it too (else a v1 connection asks v4, which is as public)."""
    nbia_v1_name: str | None = None
    """NBIA v1's name where it differs from v4's (``getM5HashForImage``)."""
    nbia_dates: tuple[tuple[str, DateSpelling], ...] = ()
    """NBIA's date spelling by version where it is not NewPatientsInCollection's (``(("v4", …), ("v1", …))``)."""
    one_of: tuple[str, ...] = ()
    """Parameters of which exactly one must be given (getMD5Hierarchy's levels)."""
    own_signature: bool = False
    """Its hook method and operator take what one string per parameter cannot say (getSeriesMetadata's many
    UIDs, getSimpleSearch's criteria): written by hand (``hooks/paged.py``, ``operators/query.py``) and tested
    on their own; the typed-API test checks only that they exist."""

    @property
    def nbia_only(self) -> bool:
        return "legacy" not in self.apis

    def nbia_date(self, version: str) -> DateSpelling | None:
        return dict(self.nbia_dates).get(version)

    @property
    def required(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.required)

    def param(self, name: str) -> Param:
        for p in self.params:
            if name in (p.name, p.api_name):
                return p
        raise TciaBadRequestError(
            f"{self.name} has no parameter {name!r}; it takes: {', '.join(p.name for p in self.params) or 'none'}"
        )

    def check_params(self, given: Mapping[str, object]) -> dict[str, object]:
        """The given parameters keyed by Python name, without ``None``; raises on an unknown parameter or a
        missing required one, before anything is sent."""
        out: dict[str, object] = {}
        for key, value in given.items():
            p = self.param(key)
            if value is None:
                continue
            if isinstance(value, str) and not value.strip():
                raise TciaBadRequestError(f"{self.name}: {p.name} is empty; give a value or leave it out")
            out[p.name] = check_uid(value, f"{self.name}: {p.name}") if p.is_uid else value
        missing = [p.name for p in self.required if p.name not in out]
        if missing:
            raise TciaBadRequestError(f"{self.name} needs {', '.join(missing)}; nothing was sent")
        if self.one_of and sum(name in out for name in self.one_of) != 1:
            named = [name for name in self.one_of if name in out]
            raise TciaBadRequestError(
                f"{self.name} needs exactly one of {', '.join(self.one_of)} (given: {', '.join(named) or 'none'}); "
                "nothing was sent"
            )
        return out

    def metadata(self) -> dict:
        """This endpoint's ``/metadata`` document, in the seed's shape."""
        return {
            "QueryName": self.name,
            "Description": self.description,
            "Parameters": [
                {"Name": p.api_name, "Description": p.description, "Required": p.required} for p in self.params
            ],
            "Result": {
                "Name": self.result,
                "Description": f"{self.result} rows",
                "Attributes": [
                    {"Name": a, "Description": ATTRIBUTES.get(a, (a, ""))[0], "DICOM": ATTRIBUTES.get(a, (a, ""))[1]}
                    for a in self.attributes
                ],
            },
        }


def _p(
    name: str,
    api_name: str,
    description: str,
    required: bool = False,
    is_date: bool = False,
    nbia_name: str | None = None,
    nbia_v1_name: str | None = None,
) -> Param:
    return Param(
        name, api_name, required=required, is_date=is_date, description=description, nbia_name=nbia_name,
        nbia_v1_name=nbia_v1_name,
    )  # fmt: skip


COLLECTION = _p("collection", "Collection", "A collection name, e.g. TCGA-GBM")
MODALITY = _p("modality", "Modality", "A DICOM modality, e.g. MR")
BODY_PART = _p("body_part_examined", "BodyPartExamined", "A DICOM body part, e.g. BRAIN")
MANUFACTURER = _p("manufacturer", "Manufacturer", "Equipment manufacturer")
MODEL = _p("manufacturer_model_name", "ManufacturerModelName", "Equipment model")
PATIENT = _p("patient_id", "PatientID", "A patient ID")
STUDY = _p("study_instance_uid", "StudyInstanceUID", "A study's StudyInstanceUID")
SERIES = _p("series_instance_uid", "SeriesInstanceUID", "A series' SeriesInstanceUID")
SERIES_R = _p("series_instance_uid", "SeriesInstanceUID", "A series' SeriesInstanceUID", required=True)
DATE_R = _p("date", "Date", "Only what was added after this date (YYYY-MM-DD)", required=True, is_date=True)


def _required(p: Param) -> Param:
    return dataclasses.replace(p, required=True)


#: (description, DICOM tag) of every row field the seed returns.
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "Collection": ("Collection name", ""),
    "Modality": ("Modality", "(0008,0060)"),
    "BodyPartExamined": ("Body part examined", "(0018,0015)"),
    "Manufacturer": ("Manufacturer", "(0008,0070)"),
    "ManufacturerModelName": ("Manufacturer's model name", "(0008,1090)"),
    "PatientID": ("Patient ID", "(0010,0020)"),
    "PatientName": ("Patient's name", "(0010,0010)"),
    "PatientBirthDate": ("Patient's birth date", "(0010,0030)"),
    "PatientSex": ("Patient's sex", "(0010,0040)"),
    "EthnicGroup": ("Ethnic group", "(0010,2160)"),
    "PatientAge": ("Patient's age", "(0010,1010)"),
    "StudyInstanceUID": ("Study instance UID", "(0020,000D)"),
    "StudyDate": ("Study date", "(0008,0020)"),
    "StudyDescription": ("Study description", "(0008,1030)"),
    "AdmittingDiagnosesDescription": ("Admitting diagnoses description", "(0008,1080)"),
    "StudyID": ("Study ID", "(0020,0010)"),
    "SeriesCount": ("Number of series in the study", ""),
    "SeriesInstanceUID": ("Series instance UID", "(0020,000E)"),
    "ProtocolName": ("Protocol name", "(0018,1030)"),
    "SeriesDate": ("Series date", "(0008,0021)"),
    "SeriesDescription": ("Series description", "(0008,103E)"),
    "SeriesNumber": ("Series number", "(0020,0011)"),
    "AnnotationsFlag": ("Whether the series has annotations", ""),
    "SoftwareVersions": ("Software versions", "(0018,1020)"),
    "ImageCount": ("Number of images in the series", ""),
    "TotalSizeInBytes": ("Total size of the series' files in bytes", ""),
    "ObjectCount": ("Number of files in the series", ""),
    "SOPInstanceUID": ("SOP instance UID", "(0008,0018)"),
    "collectionName": ("Collection name", ""),
    "description": ("The collection's description (HTML)", ""),
    "descriptionURI": ("The collection's DOI or page", ""),
    "id": ("NBIA's id of the description", ""),
    "BodyPart": ("Body part examined", "(0018,0015)"),
    "Species": ("Species", "(0010,2201)"),
    "Count": ("Number of distinct patients with the value", ""),
    "Authorized": ("Whether the caller may see the data (1) or not (0)", ""),
    "element": ("The DICOM tag, e.g. (0008,0060)", ""),
    "name": ("The tag's keyword", ""),
    "data": ("The tag's value in one image of the series", ""),
    "MD5Hash": ("An MD5, lower-case hex", ""),
    "seriesInstanceUID": ("Series instance UID", "(0020,000E)"),
    "collection": ("Collection name", ""),
    "thirdPartyAnanlysis": ("Whether the data are a third-party analysis (NBIA's spelling)", ""),
    "authorized": ("Whether the caller may see the data (1) or not (0)", ""),
}

PATIENT_ATTRS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup", "Collection")
STUDY_ATTRS = (
    "StudyInstanceUID", "StudyDate", "StudyDescription", "AdmittingDiagnosesDescription", "StudyID",
    "PatientAge", "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup", "Collection",
    "SeriesCount",
)  # fmt: skip
SERIES_ATTRS = (
    "SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate", "SeriesDescription",
    "BodyPartExamined", "SeriesNumber", "AnnotationsFlag", "Collection", "PatientID", "Manufacturer",
    "ManufacturerModelName", "SoftwareVersions", "ImageCount",
)  # fmt: skip

#: getSeriesMetadata's columns (v4's CSV header), in order.
SERIES_METADATA_ATTRS = (
    "PatientID", "PatientName", "PatientSex", "EthnicGroup", "Phantom", "SpeciesCode", "SpeciesDescription",
    "StudyInstanceUID", "StudyDate", "StudyDesc", "AdmittingDiagnosisDescription", "StudyID", "PatientAge",
    "LongitudinalTemporalEventType", "LongitudinalTemporalOffsetFromEvent", "SeriesInstanceUID", "Collection",
    "Site", "Modality", "ProtocolName", "SeriesDate", "SeriesDescription", "BodyPartExamined", "SeriesNumber",
    "AnnotationsFlag", "Manufacturer", "ManufacturerModelName", "PixelSpacing(mm)-Row", "SliceThickness(mm)",
    "SoftwareVersions", "ImageCount", "MaxSubmissionTimestamp", "LicenseName", "LicenseURI", "DataDescriptionURI",
    "FileSize", "ReleasedStatus", "DateReleased", "ThirdPartyAnalysis", "Authorized",
)  # fmt: skip
#: getSimpleSearch's criteria (SimpleSearch's fields, sort aside) and the criteriaType each sends.
SIMPLE_SEARCH_PARAMS = tuple(
    _p(name, kind, description)
    for name, kind, description in (
        ("collections", "CollectionCriteria", "Collection names"),
        ("species", "SpeciesCriteria", "Species codes, e.g. 337915000"),
        ("modalities", "ImageModalityCriteria", "DICOM modalities"),
        ("all_modalities", "ModalityAndedSearchCriteria", "Every one of the modalities, not any"),
        ("body_parts", "AnatomicalSiteCriteria", "Body parts examined"),
        ("manufacturers", "ManufacturerCriteria", "Equipment manufacturers"),
        ("models", "ModelCriteria", "Equipment models"),
        ("software_versions", "SoftwareVersionCriteria", "Software versions"),
        ("patient_sexes", "PatientSexCriteria", "Patient sex codes (M, F, O)"),
        ("date_range", "DateRangeCriteria", "(from, to) release dates, both included"),
        ("patient_age_range", "PatientAgeRangeCriteria", "(from, to) patient age in years, both included"),
        ("pixel_spacing_range", "PixelSpacingRangeCriteria", "(from, to) pixel spacing in mm, both included"),
        ("slice_thickness_range", "SliceThicknessRangeCriteria", "(from, to) slice thickness in mm, both included"),
        ("description", "DescriptionCriteria", "Words in the study or series description or protocol name"),
        ("phantom", "PhantomCriteria", "exclude phantom patients or only them"),
        ("patient_ids", "PatientCriteria", "Patient IDs"),
        ("study_instance_uids", "StudyCriteria", "StudyInstanceUIDs"),
        ("series_instance_uids", "SeriesCriteria", "SeriesInstanceUIDs"),
        ("min_studies", "MinNumberOfStudiesCriteria", "At least this many studies"),
        ("third_party_analysis", "ThirdPartyAnalysis", "Third-party analyses only (True) or none (False)"),
        ("exclude_commercial", "ExcludeCommercialCriteria", "Leave out non-commercial licences"),
        ("time_point_event", "TimePointCriteria", "The event a study's time point counts from"),
        ("time_point_days", "TimePointCriteria", "(from, to) days from that event, one may be None"),
    )
)

#: getUpdatedSeries' ``fromDate``: strictly after, on the release date (v4 ``MM-DD-YYYY``, v1 ``dd/MM/yyyy``).
UPDATED_DATES = (
    ("v4", DateSpelling("fromDate", "%m-%d-%Y", inclusive=False)),
    ("v1", DateSpelling("fromDate", "%d/%m/%Y", inclusive=False)),
)
SINCE = _p("date", "fromDate", "Only series released after this date (YYYY-MM-DD); all when left out", is_date=True)
SERIES_TAGS = _p("series_instance_uid", "SeriesInstanceUID", "A series' SeriesInstanceUID", True, nbia_name="SeriesUID")
SOP_MD5 = _p("sop_instance_uid", "SOPInstanceUID", "A SOPInstanceUID", True, nbia_v1_name="SOPInstanceUid")
MD5_LEVELS = ("series_instance_uid", "study_instance_uid", "patient_id", "collection")
NBIA: tuple[Api, ...] = ("nbia",)
COUNTS = ("Count", "Authorized")
#: What a legacy connection computes a ValuesAndCounts of series' values from (hooks/computed.py).
FROM_SERIES = ("getSeries", "getPatientStudy")

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("getCollectionValues", "get_collection_values", "Set of all collection names",
                 (), "Collection", ("Collection",)),
        Endpoint("getModalityValues", "get_modality_values", "Set of all modality values",
                 (COLLECTION, BODY_PART), "Modality", ("Modality",)),
        Endpoint("getBodyPartValues", "get_body_part_values", "Set of all body part values",
                 (COLLECTION, MODALITY), "BodyPartExamined", ("BodyPartExamined",)),
        Endpoint("getManufacturerValues", "get_manufacturer_values", "Set of all manufacturer values",
                 (COLLECTION, MODALITY, BODY_PART), "Manufacturer", ("Manufacturer",)),
        Endpoint("getPatient", "get_patient", "Set of patient objects",
                 (COLLECTION,), "Patient", PATIENT_ATTRS),
        Endpoint("PatientsByModality", "patients_by_modality",
                 "Set of patient objects with at least one series of a modality",
                 (_required(COLLECTION), _required(MODALITY)), "Patient", PATIENT_ATTRS,
                 nbia_name="getPatientByCollectionAndModality"),
        Endpoint("getPatientStudy", "get_patient_study", "Set of patient-study objects",
                 (COLLECTION, PATIENT, STUDY), "PatientStudy", STUDY_ATTRS),
        Endpoint("getSeries", "get_series", "Set of series objects",
                 (COLLECTION, PATIENT, STUDY, MODALITY, SERIES, BODY_PART, MODEL, MANUFACTURER),
                 "Series", SERIES_ATTRS),
        Endpoint("getSeriesSize", "get_series_size", "Total byte size and object count of a series",
                 (SERIES_R,), "SeriesSize", ("TotalSizeInBytes", "ObjectCount")),
        Endpoint("getSOPInstanceUIDs", "get_sop_instance_uids", "Set of SOP instance UIDs of a series",
                 (SERIES_R,), "SOPInstanceUID", ("SOPInstanceUID",)),
        Endpoint("NewPatientsInCollection", "new_patients_in_collection",
                 "Set of patient objects added to a collection after a date",
                 (_required(COLLECTION), DATE_R), "Patient", PATIENT_ATTRS),
        Endpoint("NewStudiesInPatientCollection", "new_studies_in_patient_collection",
                 "Set of patient-study objects added to a collection (or a patient of it) after a date",
                 (_required(COLLECTION), DATE_R, PATIENT), "PatientStudy", STUDY_ATTRS),
        Endpoint("ContentsByName", "get_shared_list", "Set of series objects in a shared list",
                 (_p("name", "name", "The shared list's name", required=True),), "Series", SERIES_ATTRS,
                 resource="SharedList", nbia_name="getContentsByName", nbia_version="v1", nbia_formats=False,
                 aliases=("getSharedList", "getContentsByName")),
        Endpoint("getUpdatedSeries", "get_updated_series", "Set of series objects released after a date",
                 (SINCE,), "Series", SERIES_ATTRS, apis=NBIA, nbia_dates=UPDATED_DATES),
        Endpoint("getCollectionDescriptions", "get_collection_descriptions",
                 "The collections' descriptions (HTML) and DOIs",
                 (_p("collection", "collectionName", "A collection name, e.g. TCGA-GBM"),), "CollectionDescription",
                 ("collectionName", "description", "descriptionURI", "id"), nbia_formats=False, apis=NBIA,
                 nbia_v1=False),
        Endpoint("getCollectionValuesAndCounts", "get_collection_values_and_counts",
                 "Each collection and its number of patients", (), "CollectionCount", ("Collection", *COUNTS),
                 nbia_formats=False, legacy_from=("getPatient",), apis=NBIA, nbia_v1=False),
        Endpoint("getModalityValuesAndCounts", "get_modality_values_and_counts",
                 "Each modality and its number of patients", (COLLECTION, BODY_PART), "ModalityCount",
                 ("Modality", *COUNTS), nbia_formats=False, legacy_from=FROM_SERIES, apis=NBIA, nbia_v1=False),
        Endpoint("getBodyPartValuesAndCounts", "get_body_part_values_and_counts",
                 "Each body part and its number of patients", (COLLECTION, MODALITY), "BodyPartCount",
                 ("BodyPart", *COUNTS), nbia_formats=False, legacy_from=FROM_SERIES, apis=NBIA, nbia_v1=False),
        Endpoint("getManufacturerValuesAndCounts", "get_manufacturer_values_and_counts",
                 "Each manufacturer and its number of patients", (COLLECTION, MODALITY, BODY_PART),
                 "ManufacturerCount", ("Manufacturer", *COUNTS), nbia_formats=False,
                 legacy_from=FROM_SERIES, apis=NBIA, nbia_v1=False),
        Endpoint("getSpeciesValuesAndCounts", "get_species_values_and_counts",
                 "Each species and its number of patients", (), "SpeciesCount", ("Species", *COUNTS),
                 nbia_formats=False, apis=NBIA, nbia_v1=False),
        Endpoint("getDicomTags", "get_dicom_tags", "The DICOM tags of one image of a series",
                 (SERIES_TAGS,), "DicomTag", ("element", "name", "data"), nbia_formats=False, apis=NBIA, nbia_v1=False),
        Endpoint("getMD5Hierarchy", "get_md5_hierarchy",
                 "One MD5 over a series, study, patient or collection (of its children's MD5s, sorted)",
                 (SERIES, STUDY, PATIENT, COLLECTION), "MD5", ("MD5Hash",), http_method="POST", answer="text",
                 one_of=MD5_LEVELS, apis=NBIA, nbia_v1=False),
        Endpoint("getMD5HashForImage", "get_md5_hash_for_image", "The MD5 of one DICOM file, as NBIA stores it",
                 (SOP_MD5,), "MD5", ("MD5Hash",), apis=NBIA, answer="text", nbia_v1_name="getM5HashForImage"),
        Endpoint("getCollectionOrSeriesForDOI", "get_collection_or_series_for_doi",
                 "The collections (or series) a DOI covers",
                 (_p("doi", "DOI", "A DOI, as TCIA records it (https://doi.org/10.7937/...)", required=True),
                  _p("collection_or_series", "CollectionOrSeries",
                     "Series for one row per series; else one per collection")),
                 "DOI", ("collection", "seriesInstanceUID", "thirdPartyAnanlysis", "authorized"),
                 http_method="POST", nbia_formats=False, apis=NBIA, nbia_v1=False),
        Endpoint("getImage", "stream_image", "A zip of every DICOM file of a series",
                 (SERIES_R,), "Zip", (), kind="download"),
        Endpoint("getSingleImage", "stream_single_image", "One DICOM file",
                 (SERIES_R, _p("sop_instance_uid", "SOPInstanceUID", "A SOPInstanceUID", required=True)),
                 "DICOM", (), kind="download"),
        Endpoint("getSeriesMetadata", "get_series_metadata",
                 "Metadata of many series: patient, study and series fields, one row per SeriesInstanceUID found",
                 (_p("series_instance_uids", "list", "SeriesInstanceUIDs (any number; sent in chunks)",
                     required=True),),
                 "SeriesMetadata", SERIES_METADATA_ATTRS, apis=("nbia",), http_method="POST", nbia_v1=False,
                 own_signature=True),
        Endpoint("getSimpleSearch", "get_simple_search",
                 "Patients matching search criteria, one row per series (NBIA's own study and series keys)",
                 SIMPLE_SEARCH_PARAMS, "SimpleSearch", simple_search.COLUMNS, apis=("nbia",), http_method="POST",
                 nbia_v1=False, nbia_formats=False, own_signature=True),
    )
}  # fmt: skip

_ALIASES = {alias: e for e in ENDPOINTS.values() for alias in (*e.aliases, e.method)} | {
    e.nbia_name: e for e in ENDPOINTS.values() if e.nbia_name
}

QUERY_ENDPOINTS = tuple(e for e in ENDPOINTS.values() if e.kind == "query")


def get_endpoint(name: str) -> Endpoint:
    """The endpoint called ``name`` (seed name, NBIA name, or hook method name); a clear error otherwise."""
    if not isinstance(name, str):
        raise TciaBadRequestError(f"endpoint must be a name, not {name!r}")
    found = ENDPOINTS.get(name) or _ALIASES.get(name)
    if found is None:
        raise TciaBadRequestError(f"unknown TCIA endpoint {name!r}; known endpoints: {', '.join(ENDPOINTS)}")
    return found


def check_query(name: str, params: Mapping[str, object]) -> tuple[Endpoint, dict[str, object]]:
    """The query endpoint called ``name`` and its parameters checked (by Python name, ``None`` dropped), dates
    parsed to :class:`datetime.date`; a clear :class:`TciaBadRequestError` for a download endpoint, an unknown
    or missing parameter, an empty value or a date that is not a date — before anything is sent."""
    from airflow_provider_tcia.api.dates import parse_date

    endpoint = get_endpoint(name)
    if endpoint.kind != "query":
        raise TciaBadRequestError(f"{endpoint.name} is a download, not a query endpoint; use {endpoint.method}()")
    if endpoint.own_signature:
        raise TciaBadRequestError(
            f"{endpoint.name} takes more than one string per parameter; call the hook's {endpoint.method}() (or use "
            "its operator); nothing was sent"
        )
    for key in params:
        if not isinstance(key, str):
            raise TciaBadRequestError(f"{endpoint.name}: parameter names must be strings, not {key!r}")
    checked = endpoint.check_params(params)
    for key, value in checked.items():
        if endpoint.param(key).is_date:
            checked[key] = parse_date(value, param=key)
        elif isinstance(value, int) and not isinstance(value, bool):
            checked[key] = str(value)  # e.g. a numeric PatientID rendered as a native object
        elif not isinstance(value, str):
            raise TciaBadRequestError(
                f"{endpoint.name}: {key} must be a string, not {type(value).__name__} {shown(value)}; one value per "
                f"request (to query several, map the operator: .partial(...).expand({key}=[...]))"
            )
    return endpoint, checked


def check_format(fmt: object) -> str:
    """``fmt`` lower-cased if it is one of :data:`FORMATS`; a clear error otherwise."""
    if isinstance(fmt, str) and fmt.lower() in FORMATS:
        return fmt.lower()
    raise TciaBadRequestError(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
