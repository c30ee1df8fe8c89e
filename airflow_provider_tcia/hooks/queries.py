"""The hook's methods, one per TCIA query endpoint, written out so type checkers and IDEs see them.

Each method is :meth:`~airflow_provider_tcia.hooks.tcia.TciaHook.query` on its endpoint, with the endpoint's
parameters as arguments: the required ones positional or by keyword, the optional ones by keyword only. A
misspelt parameter is a ``TypeError`` at run time and an error for a type checker. ``format="json"`` (the
default) returns the rows; ``csv``, ``xml`` or ``html`` the text the server returned (the overloads say so).

The endpoint table (:mod:`airflow_provider_tcia.api.endpoints`) stays the source of truth: adding an endpoint
there fails ``tests/api/test_typed_api.py`` until its method is here, and the test prints the code to paste.
Validation (required, empty, UIDs, dates) is the table's, in :meth:`query`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, overload


class TciaQueryMethods:
    """One method per query endpoint, mixed into :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`."""

    if TYPE_CHECKING:
        # TciaHook's, as these methods call it; declared here for the type checker only.
        def query(self, endpoint: str, *, format: str, **params: Any) -> list[dict[str, Any]] | str: ...
        def text_value(self, endpoint: str, **params: Any) -> str | None: ...

    @overload
    def get_collection_values(self, *, format: Literal["json"] = "json") -> list[dict[str, Any]]: ...
    @overload
    def get_collection_values(self, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_collection_values(self, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Set of all collection names (``getCollectionValues``).

        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getCollectionValues", format=format)

    @overload
    def get_modality_values(
        self,
        *,
        collection: str | None = None,
        body_part_examined: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_modality_values(
        self, *, collection: str | None = None, body_part_examined: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_modality_values(
        self, *, collection: str | None = None, body_part_examined: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of all modality values (``getModalityValues``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param body_part_examined: A DICOM body part, e.g. BRAIN.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getModalityValues", collection=collection, body_part_examined=body_part_examined, format=format
        )

    @overload
    def get_body_part_values(
        self, *, collection: str | None = None, modality: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_body_part_values(
        self, *, collection: str | None = None, modality: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_body_part_values(
        self, *, collection: str | None = None, modality: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of all body part values (``getBodyPartValues``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param modality: A DICOM modality, e.g. MR.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getBodyPartValues", collection=collection, modality=modality, format=format)

    @overload
    def get_manufacturer_values(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_manufacturer_values(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: str,
    ) -> list[dict[str, Any]] | str: ...
    def get_manufacturer_values(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: str = "json",
    ) -> list[dict[str, Any]] | str:
        """Set of all manufacturer values (``getManufacturerValues``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param modality: A DICOM modality, e.g. MR.
        :param body_part_examined: A DICOM body part, e.g. BRAIN.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getManufacturerValues",
            collection=collection,
            modality=modality,
            body_part_examined=body_part_examined,
            format=format,
        )

    @overload
    def get_patient(
        self, *, collection: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_patient(self, *, collection: str | None = None, format: str) -> list[dict[str, Any]] | str: ...
    def get_patient(self, *, collection: str | None = None, format: str = "json") -> list[dict[str, Any]] | str:
        """Set of patient objects (``getPatient``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getPatient", collection=collection, format=format)

    @overload
    def patients_by_modality(
        self, collection: str, modality: str, *, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def patients_by_modality(self, collection: str, modality: str, *, format: str) -> list[dict[str, Any]] | str: ...
    def patients_by_modality(
        self, collection: str, modality: str, *, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of patient objects with at least one series of a modality (``PatientsByModality``).

        :param collection: A collection name, e.g. TCGA-GBM (required).
        :param modality: A DICOM modality, e.g. MR (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("PatientsByModality", collection=collection, modality=modality, format=format)

    @overload
    def get_patient_study(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_patient_study(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        format: str,
    ) -> list[dict[str, Any]] | str: ...
    def get_patient_study(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        format: str = "json",
    ) -> list[dict[str, Any]] | str:
        """Set of patient-study objects (``getPatientStudy``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param patient_id: A patient ID.
        :param study_instance_uid: A study's StudyInstanceUID.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getPatientStudy",
            collection=collection,
            patient_id=patient_id,
            study_instance_uid=study_instance_uid,
            format=format,
        )

    @overload
    def get_series(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        body_part_examined: str | None = None,
        manufacturer_model_name: str | None = None,
        manufacturer: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_series(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        body_part_examined: str | None = None,
        manufacturer_model_name: str | None = None,
        manufacturer: str | None = None,
        format: str,
    ) -> list[dict[str, Any]] | str: ...
    def get_series(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        body_part_examined: str | None = None,
        manufacturer_model_name: str | None = None,
        manufacturer: str | None = None,
        format: str = "json",
    ) -> list[dict[str, Any]] | str:
        """Set of series objects (``getSeries``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param patient_id: A patient ID.
        :param study_instance_uid: A study's StudyInstanceUID.
        :param modality: A DICOM modality, e.g. MR.
        :param series_instance_uid: A series' SeriesInstanceUID.
        :param body_part_examined: A DICOM body part, e.g. BRAIN.
        :param manufacturer_model_name: Equipment model.
        :param manufacturer: Equipment manufacturer.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getSeries",
            collection=collection,
            patient_id=patient_id,
            study_instance_uid=study_instance_uid,
            modality=modality,
            series_instance_uid=series_instance_uid,
            body_part_examined=body_part_examined,
            manufacturer_model_name=manufacturer_model_name,
            manufacturer=manufacturer,
            format=format,
        )

    @overload
    def get_series_size(
        self, series_instance_uid: str, *, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_series_size(self, series_instance_uid: str, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_series_size(self, series_instance_uid: str, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Total byte size and object count of a series (``getSeriesSize``).

        :param series_instance_uid: A series' SeriesInstanceUID (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getSeriesSize", series_instance_uid=series_instance_uid, format=format)

    @overload
    def get_sop_instance_uids(
        self, series_instance_uid: str, *, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_sop_instance_uids(self, series_instance_uid: str, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_sop_instance_uids(self, series_instance_uid: str, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Set of SOP instance UIDs of a series (``getSOPInstanceUIDs``).

        :param series_instance_uid: A series' SeriesInstanceUID (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getSOPInstanceUIDs", series_instance_uid=series_instance_uid, format=format)

    @overload
    def new_patients_in_collection(
        self, collection: str, date: str | dt.date, *, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def new_patients_in_collection(
        self, collection: str, date: str | dt.date, *, format: str
    ) -> list[dict[str, Any]] | str: ...
    def new_patients_in_collection(
        self, collection: str, date: str | dt.date, *, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of patient objects added to a collection after a date (``NewPatientsInCollection``).

        :param collection: A collection name, e.g. TCGA-GBM (required).
        :param date: Only what was added after this date (YYYY-MM-DD) (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("NewPatientsInCollection", collection=collection, date=date, format=format)

    @overload
    def new_studies_in_patient_collection(
        self,
        collection: str,
        date: str | dt.date,
        *,
        patient_id: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def new_studies_in_patient_collection(
        self, collection: str, date: str | dt.date, *, patient_id: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def new_studies_in_patient_collection(
        self, collection: str, date: str | dt.date, *, patient_id: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of patient-study objects added to a collection (or a patient of it) after a date (``NewStudiesInPatientCollection``).

        :param collection: A collection name, e.g. TCGA-GBM (required).
        :param date: Only what was added after this date (YYYY-MM-DD) (required).
        :param patient_id: A patient ID.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "NewStudiesInPatientCollection", collection=collection, date=date, patient_id=patient_id, format=format
        )

    @overload
    def get_shared_list(self, name: str, *, format: Literal["json"] = "json") -> list[dict[str, Any]]: ...
    @overload
    def get_shared_list(self, name: str, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_shared_list(self, name: str, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Set of series objects in a shared list (``ContentsByName``).

        :param name: The shared list's name (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("ContentsByName", name=name, format=format)

    @overload
    def get_updated_series(
        self, *, date: str | dt.date | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_updated_series(self, *, date: str | dt.date | None = None, format: str) -> list[dict[str, Any]] | str: ...
    def get_updated_series(
        self, *, date: str | dt.date | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Set of series objects released after a date (``getUpdatedSeries``).

        :param date: Only series released after this date (YYYY-MM-DD); all when left out.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getUpdatedSeries", date=date, format=format)

    @overload
    def get_collection_descriptions(
        self, *, collection: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_collection_descriptions(
        self, *, collection: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_collection_descriptions(
        self, *, collection: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """The collections' descriptions (HTML) and DOIs (``getCollectionDescriptions``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getCollectionDescriptions", collection=collection, format=format)

    @overload
    def get_collection_values_and_counts(self, *, format: Literal["json"] = "json") -> list[dict[str, Any]]: ...
    @overload
    def get_collection_values_and_counts(self, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_collection_values_and_counts(self, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Each collection and its number of patients (``getCollectionValuesAndCounts``).

        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getCollectionValuesAndCounts", format=format)

    @overload
    def get_modality_values_and_counts(
        self, *, collection: str | None = None, body_part_examined: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_modality_values_and_counts(
        self, *, collection: str | None = None, body_part_examined: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_modality_values_and_counts(
        self, *, collection: str | None = None, body_part_examined: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Each modality and its number of patients (``getModalityValuesAndCounts``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param body_part_examined: A DICOM body part, e.g. BRAIN.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getModalityValuesAndCounts", collection=collection, body_part_examined=body_part_examined, format=format
        )

    @overload
    def get_body_part_values_and_counts(
        self, *, collection: str | None = None, modality: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_body_part_values_and_counts(
        self, *, collection: str | None = None, modality: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_body_part_values_and_counts(
        self, *, collection: str | None = None, modality: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """Each body part and its number of patients (``getBodyPartValuesAndCounts``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param modality: A DICOM modality, e.g. MR.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getBodyPartValuesAndCounts", collection=collection, modality=modality, format=format)

    @overload
    def get_manufacturer_values_and_counts(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: Literal["json"] = "json",
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_manufacturer_values_and_counts(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: str,
    ) -> list[dict[str, Any]] | str: ...
    def get_manufacturer_values_and_counts(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        format: str = "json",
    ) -> list[dict[str, Any]] | str:
        """Each manufacturer and its number of patients (``getManufacturerValuesAndCounts``).

        :param collection: A collection name, e.g. TCGA-GBM.
        :param modality: A DICOM modality, e.g. MR.
        :param body_part_examined: A DICOM body part, e.g. BRAIN.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getManufacturerValuesAndCounts",
            collection=collection,
            modality=modality,
            body_part_examined=body_part_examined,
            format=format,
        )

    @overload
    def get_species_values_and_counts(self, *, format: Literal["json"] = "json") -> list[dict[str, Any]]: ...
    @overload
    def get_species_values_and_counts(self, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_species_values_and_counts(self, *, format: str = "json") -> list[dict[str, Any]] | str:
        """Each species and its number of patients (``getSpeciesValuesAndCounts``).

        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getSpeciesValuesAndCounts", format=format)

    @overload
    def get_dicom_tags(self, series_instance_uid: str, *, format: Literal["json"] = "json") -> list[dict[str, Any]]: ...
    @overload
    def get_dicom_tags(self, series_instance_uid: str, *, format: str) -> list[dict[str, Any]] | str: ...
    def get_dicom_tags(self, series_instance_uid: str, *, format: str = "json") -> list[dict[str, Any]] | str:
        """The DICOM tags of one image of a series (``getDicomTags``).

        :param series_instance_uid: A series' SeriesInstanceUID (required).
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query("getDicomTags", series_instance_uid=series_instance_uid, format=format)

    @overload
    def get_collection_or_series_for_doi(
        self, doi: str, *, collection_or_series: str | None = None, format: Literal["json"] = "json"
    ) -> list[dict[str, Any]]: ...
    @overload
    def get_collection_or_series_for_doi(
        self, doi: str, *, collection_or_series: str | None = None, format: str
    ) -> list[dict[str, Any]] | str: ...
    def get_collection_or_series_for_doi(
        self, doi: str, *, collection_or_series: str | None = None, format: str = "json"
    ) -> list[dict[str, Any]] | str:
        """The collections (or series) a DOI covers (``getCollectionOrSeriesForDOI``).

        :param doi: A DOI, as TCIA records it (https://doi.org/10.7937/...) (required).
        :param collection_or_series: Series for one row per series; else one per collection.
        :param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text).
        """
        return self.query(
            "getCollectionOrSeriesForDOI", doi=doi, collection_or_series=collection_or_series, format=format
        )

    def get_md5_hierarchy(
        self,
        *,
        series_instance_uid: str | None = None,
        study_instance_uid: str | None = None,
        patient_id: str | None = None,
        collection: str | None = None,
    ) -> str | None:
        """One MD5 over a series, study, patient or collection (of its children's MD5s, sorted) (``getMD5Hierarchy``).

        Give exactly one level. A series' MD5 is the MD5 of its images' MD5s, sorted and concatenated; a study's
        the MD5 of its series' MD5s, and so on up. NBIA only (POST form, text/plain).

        :param series_instance_uid: A series' SeriesInstanceUID.
        :param study_instance_uid: A study's StudyInstanceUID.
        :param patient_id: A patient ID.
        :param collection: A collection name, e.g. TCGA-GBM.
        :return: the MD5 in lower-case hex, or ``None`` when NBIA answers nothing (nothing matched).
        """
        return self.text_value(
            "getMD5Hierarchy",
            series_instance_uid=series_instance_uid,
            study_instance_uid=study_instance_uid,
            patient_id=patient_id,
            collection=collection,
        )

    def get_md5_hash_for_image(self, sop_instance_uid: str) -> str | None:
        """The MD5 of one DICOM file, as NBIA stores it (``getMD5HashForImage``; v1: ``getM5HashForImage``).

        NBIA only (text/plain); the download engine checks single images with it.

        :param sop_instance_uid: A SOPInstanceUID (required).
        :return: the MD5 in lower-case hex, or ``None`` when NBIA answers nothing (an image it has not).
        """
        return self.text_value("getMD5HashForImage", sop_instance_uid=sop_instance_uid)
