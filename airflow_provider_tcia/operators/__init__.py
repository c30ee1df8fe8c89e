"""Operators: one per TCIA query endpoint, over :class:`~airflow_provider_tcia.operators.query.TciaQueryOperator`."""

from __future__ import annotations

from airflow_provider_tcia.operators.query import (
    DEFAULT_MAX_XCOM_BYTES,
    QUERY_OPERATORS,
    TciaGetBodyPartValuesOperator,
    TciaGetCollectionValuesOperator,
    TciaGetManufacturerValuesOperator,
    TciaGetModalityValuesOperator,
    TciaGetPatientOperator,
    TciaGetPatientStudyOperator,
    TciaGetSeriesOperator,
    TciaGetSeriesSizeOperator,
    TciaGetSharedListOperator,
    TciaGetSOPInstanceUIDsOperator,
    TciaNewPatientsInCollectionOperator,
    TciaNewStudiesInPatientCollectionOperator,
    TciaPatientsByModalityOperator,
    TciaQueryOperator,
    TciaResultTooLargeError,
)

__all__ = [
    "DEFAULT_MAX_XCOM_BYTES",
    "QUERY_OPERATORS",
    "TciaGetBodyPartValuesOperator",
    "TciaGetCollectionValuesOperator",
    "TciaGetManufacturerValuesOperator",
    "TciaGetModalityValuesOperator",
    "TciaGetPatientOperator",
    "TciaGetPatientStudyOperator",
    "TciaGetSOPInstanceUIDsOperator",
    "TciaGetSeriesOperator",
    "TciaGetSeriesSizeOperator",
    "TciaGetSharedListOperator",
    "TciaNewPatientsInCollectionOperator",
    "TciaNewStudiesInPatientCollectionOperator",
    "TciaPatientsByModalityOperator",
    "TciaQueryOperator",
    "TciaResultTooLargeError",
]
