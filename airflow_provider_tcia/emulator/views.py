"""How each API generation spells a row: the model's objects turned into the dicts the servers answer.

Three styles: ``legacy`` (the seed: ``PatientID``, dates ``2001-11-21``, ``SeriesNumber`` ``"4.000000"``,
sizes as float-looking strings, no ``PatientID`` in getSeries rows as in the real capture), ``v1`` (NBIA v1:
``PatientId`` in patient rows, dates ``2000-01-01 00:00:00.0``, license and DOI columns) and ``v4`` (NBIA v4:
dates ``MM-DD-YYYY``, ``DataDescriptionURI``, ``Authorized``). Column lists are what CSV/XML/HTML render; JSON
leaves out null members, as the servers do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Literal

from airflow_provider_tcia.api.endpoints import ENDPOINTS, SERIES_METADATA_ATTRS
from airflow_provider_tcia.api.generations import ApiGeneration
from airflow_provider_tcia.emulator.dataset import Dataset, Patient, Series, StudySummary

Style = Literal["legacy", "v1", "v4"]
Row = dict[str, object]


def style_of(generation: ApiGeneration) -> Style:
    if generation.name == "legacy":
        return "legacy"
    return "v1" if generation.version == "v1" else "v4"


@lru_cache(maxsize=8192)  # few distinct dates, many rows: strftime was the hottest call
def date_text(style: Style, day: dt.date | None) -> str | None:
    if day is None:
        return None
    if style == "legacy":
        return day.strftime("%Y-%m-%d")
    if style == "v1":
        return day.strftime("%Y-%m-%d 00:00:00.0")
    return day.strftime("%m-%d-%Y")


def _authorized(style: Style, row: Row) -> Row:
    if style == "v4":
        row["Authorized"] = 1
    return row


# --- patients -------------------------------------------------------------------------------------------

NBIA_PATIENT_COLUMNS = {
    "v1": ("PatientId", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup", "Collection", "Phantom",
           "SpeciesCode", "SpeciesDescription"),
    "v4": ("PatientId", "PatientName", "PatientSex", "EthnicGroup", "Collection", "Phantom", "SpeciesCode",
           "SpeciesDescription", "Authorized"),
}  # fmt: skip


def patient_row(style: Style, p: Patient) -> Row:
    if style == "legacy":
        return {
            "PatientID": p.patient_id,
            "PatientName": p.patient_name,
            "PatientBirthDate": date_text(style, p.birth_date),
            "PatientSex": p.sex,
            "EthnicGroup": p.ethnic_group,
            "Collection": p.collection,
        }
    row: Row = {"PatientId": p.patient_id, "PatientName": p.patient_name}
    if style == "v1":
        row["PatientBirthDate"] = date_text(style, p.birth_date)
    row |= {
        "PatientSex": p.sex,
        "EthnicGroup": p.ethnic_group,
        "Collection": p.collection,
        "Phantom": p.phantom,
        "SpeciesCode": p.species_code,
        "SpeciesDescription": p.species_description,
    }
    return _authorized(style, row)


def patient_by_modality_row(style: Style, p: Patient) -> Row:
    if style == "legacy":
        return {"PatientID": p.patient_id, "PatientName": p.patient_name, "PatientSex": p.sex,
                "Collection": p.collection}  # fmt: skip
    return _authorized(style, {"PatientId": p.patient_id})


# --- studies --------------------------------------------------------------------------------------------

NBIA_STUDY_COLUMNS = {
    "v1": ("StudyInstanceUID", "StudyDate", "StudyDescription", "AdmittingDiagnosesDescription", "StudyID",
           "PatientAge", "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "EthnicGroup", "Collection",
           "SeriesCount", "LongitudinalTemporalEventType", "LongitudinalTemporalOffsetFromEvent"),
    "v4": ("StudyInstanceUID", "StudyDate", "StudyDescription", "AdmittingDiagnosesDescription", "StudyID",
           "PatientAge", "PatientID", "PatientName", "PatientSex", "EthnicGroup", "Collection", "SeriesCount",
           "LongitudinalTemporalEventType", "LongitudinalTemporalOffsetFromEvent", "Authorized"),
}  # fmt: skip


def study_row(style: Style, s: StudySummary) -> Row:
    study, p = s.study, s.patient
    row: Row = {
        "StudyInstanceUID": study.study_instance_uid,
        "StudyDate": date_text(style, study.study_date),
        "StudyDescription": study.description,
        "AdmittingDiagnosesDescription": study.admitting_diagnoses,
        "StudyID": study.study_id,
        "PatientAge": study.patient_age,
        "PatientID": p.patient_id,
        "PatientName": p.patient_name,
    }
    if style != "v4":
        row["PatientBirthDate"] = date_text(style, p.birth_date)
    row |= {"PatientSex": p.sex, "EthnicGroup": p.ethnic_group, "Collection": p.collection,
            "SeriesCount": s.series_count}  # fmt: skip
    return _authorized(style, row)


# --- series ---------------------------------------------------------------------------------------------

NBIA_SERIES_COLUMNS = {
    "v1": ("SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate", "SeriesDescription",
           "BodyPartExamined", "SeriesNumber", "AnnotationsFlag", "Collection", "PatientID", "Manufacturer",
           "ManufacturerModelName", "SoftwareVersions", "ImageCount", "TimeStamp", "LicenseName", "LicenseURI",
           "CollectionURI", "FileSize", "DateReleased", "StudyDesc", "StudyDate", "ThirdPartyAnalysis"),
    "v4": ("SeriesInstanceUID", "StudyInstanceUID", "Modality", "ProtocolName", "SeriesDate", "SeriesDescription",
           "BodyPartExamined", "SeriesNumber", "AnnotationsFlag", "Collection", "Site", "PatientID", "PatientSex",
           "PatientAge", "AdmittingDiagnosisDescription", "Manufacturer", "ManufacturerModelName",
           "SoftwareVersions", "ImageCount", "MaxSubmissionTimestamp", "LicenseName", "LicenseURI",
           "DataDescriptionURI", "FileSize", "ReleasedStatus", "DateReleased", "StudyDesc", "StudyDate",
           "ThirdPartyAnalysis", "Authorized"),
}  # fmt: skip


def _series_number_text(s: Series) -> str | None:
    """The float-looking text the seed and NBIA's metadata CSV give (``"4.000000"``)."""
    return None if s.series_number is None else f"{s.series_number:.6f}"


def series_row(style: Style, s: Series, data: Dataset) -> Row:
    row: Row = {
        "SeriesInstanceUID": s.series_instance_uid,
        "StudyInstanceUID": s.study_instance_uid,
        "Modality": s.modality,
        "ProtocolName": s.protocol,
        "SeriesDate": date_text(style, s.series_date),
        "SeriesDescription": s.description,
        "BodyPartExamined": s.body_part,
        "SeriesNumber": _series_number_text(s) if style == "legacy" else s.series_number,
        "AnnotationsFlag": s.annotations_flag,
        "Collection": s.collection,
    }
    if style == "legacy":
        # The real v3/v4 capture had no PatientID in getSeries rows: clients must not need it.
        row |= {
            "Manufacturer": s.manufacturer,
            "ManufacturerModelName": s.model,
            "SoftwareVersions": s.software,
            "ImageCount": s.image_count,
        }
        return row
    collection = data.collection(s.collection)
    study = data.study(s.study_instance_uid)
    patient = data.patient(s.collection, s.patient_id)
    if style == "v4":
        row |= {
            "Site": collection.site if collection else None,
            "PatientID": s.patient_id,
            "PatientSex": patient.sex if patient else None,
            "PatientAge": study.patient_age if study else None,
            "AdmittingDiagnosisDescription": study.admitting_diagnoses if study else None,
        }
    else:
        row["PatientID"] = s.patient_id
    row |= {
        "Manufacturer": s.manufacturer,
        "ManufacturerModelName": s.model,
        "SoftwareVersions": s.software,
        "ImageCount": s.image_count,
        ("TimeStamp" if style == "v1" else "MaxSubmissionTimestamp"): date_text(style, s.submitted or s.released),
        "LicenseName": collection.license_name if collection else None,
        "LicenseURI": collection.license_uri if collection else None,
        ("CollectionURI" if style == "v1" else "DataDescriptionURI"): (collection.doi or None) if collection else None,
        "FileSize": data.series_size(s),
    }
    if style == "v4":
        row["ReleasedStatus"] = "Yes"
    row |= {
        "DateReleased": date_text(style, s.released),
        "StudyDesc": study.description if study else None,
        "StudyDate": date_text(style, study.study_date) if study else None,
        "ThirdPartyAnalysis": s.third_party,
    }
    return _authorized(style, row)


CONTENTS_COLUMNS = (*NBIA_SERIES_COLUMNS["v1"][:20], "Date Released", *NBIA_SERIES_COLUMNS["v1"][21:])


def contents_row(s: Series, data: Dataset) -> Row:
    """A v1 getContentsByName row: the series columns, but ``Date Released`` with a space."""
    return {("Date Released" if k == "DateReleased" else k): v for k, v in series_row("v1", s, data).items()}


def size_row(style: Style, total: int | None, count: int | None) -> Row:
    if total is None:
        return {}
    if style == "legacy":
        return {"TotalSizeInBytes": f"{float(total)}", "ObjectCount": f"{count}"}
    return {"TotalSizeInBytes": total, "ObjectCount": count}


# --- NBIA's series metadata -------------------------------------------------------------------------------

SERIES_METADATA_COLUMNS = SERIES_METADATA_ATTRS  # (v4's CSV header, from the endpoint table)


def series_metadata_row(s: Series, data: Dataset) -> Row:
    """A row of v4 ``getSeriesMetadata`` (POST): every value as text, as in NBIA's CSV."""
    base = series_row("v4", s, data)
    patient = data.patient(s.collection, s.patient_id)
    study = data.study(s.study_instance_uid)
    template = data.template(s)
    thickness = template.slice_thickness_mm  # (what the served files carry, as the search reads it)
    row: Row = {
        "PatientID": s.patient_id,
        "PatientName": patient.patient_name if patient else None,
        "PatientSex": patient.sex if patient else None,
        "EthnicGroup": patient.ethnic_group if patient else None,
        "Phantom": patient.phantom if patient else None,
        "SpeciesCode": patient.species_code if patient else None,
        "SpeciesDescription": patient.species_description if patient else None,
        "StudyID": study.study_id if study else None,
        "SeriesNumber": _series_number_text(s),
        "PixelSpacing(mm)-Row": f"{template.pixel_spacing_mm:.6f}",
        "SliceThickness(mm)": None if thickness is None else f"{thickness:.6f}",
    }
    for column in SERIES_METADATA_COLUMNS:
        if column not in row:
            row[column] = base.get(column)
    return {c: (None if row[c] is None else str(row[c])) for c in SERIES_METADATA_COLUMNS}


SERIES_METADATA_V1_KEYS: Mapping[str, Callable[[Row], object]] = {
    "Series UID": lambda r: r["SeriesInstanceUID"],
    "Collection": lambda r: r["Collection"],
    "3rd Party Analysis": lambda r: r["ThirdPartyAnalysis"],
    "Data Description URI": lambda r: r["CollectionURI"],
    "Subject ID": lambda r: r["PatientID"],
    "Study UID": lambda r: r["StudyInstanceUID"],
    "Study Description": lambda r: r["StudyDesc"],
    "Study Date": lambda r: r["StudyDate"],
    "Series Description": lambda r: r["SeriesDescription"],
    "Manufacturer": lambda r: r["Manufacturer"],
    "Modality": lambda r: r["Modality"],
    "Number of Images": lambda r: r["ImageCount"],
    "File Size": lambda r: r["FileSize"],
    "Series Number": lambda r: r["SeriesNumber"],
    "License Name": lambda r: r["LicenseName"],
    "License URL": lambda r: r["LicenseURI"],
    "Date Released": lambda r: r["DateReleased"],
    "Series Date": lambda r: r["SeriesDate"],
    "Protocol Name": lambda r: r["ProtocolName"],
    "Body Part Examined": lambda r: r["BodyPartExamined"],
    "Annotations Flag": lambda r: r["AnnotationsFlag"],
    "Manufacturer Model Name": lambda r: r["ManufacturerModelName"],
    "Software Versions": lambda r: r["SoftwareVersions"],
    "TimeStamp": lambda r: r["TimeStamp"],
}


def series_metadata_v1_row(s: Series, data: Dataset) -> Row:
    """A row of v1 ``getSeriesMetaData`` (GET): NBIA's spaced keys."""
    base = series_row("v1", s, data)
    row = {key: get(base) for key, get in SERIES_METADATA_V1_KEYS.items()}
    row["SOP Class UID"] = data.template(s).sop_class_uid
    return row


# --- columns ----------------------------------------------------------------------------------------------


def columns(style: Style, endpoint_name: str) -> tuple[str, ...]:
    """The columns CSV, XML and HTML render for ``endpoint_name`` (the seed's name) in ``style``."""
    endpoint = ENDPOINTS[endpoint_name]
    if style == "legacy":
        return endpoint.attributes
    if endpoint.result == "Patient":
        if endpoint_name == "PatientsByModality":
            return ("PatientId", "Authorized") if style == "v4" else ("PatientId",)
        return NBIA_PATIENT_COLUMNS[style]
    if endpoint.result == "PatientStudy":
        return NBIA_STUDY_COLUMNS[style]
    if endpoint.result == "Series":
        return CONTENTS_COLUMNS if endpoint_name == "ContentsByName" else NBIA_SERIES_COLUMNS[style]
    return endpoint.attributes
