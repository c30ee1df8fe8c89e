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
