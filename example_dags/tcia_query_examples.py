"""TCIA's query endpoints as operators: rows to XCom, listings to object storage, one query per patient.

Shows every query operator but the two "what is new" ones (see ``tcia_query_new_data``):

* small answers straight to XCom (collections, modalities, patients with a modality, a series' size, a
  shared list), to be used downstream like any return value;
* listings written to object storage under ``params.output_root`` in each output format — json (patients),
  jsonl (every series of the collection, which may be 100,000 rows), csv (body parts, the API's own CSV),
  xml (manufacturers) and html (studies) — with only a ``{path, format, rows, bytes}`` summary in XCom;
* dynamic task mapping: getSeries once per patient (``.partial(...).expand(patient_id=...)``), then
  getSeriesSize and getSOPInstanceUIDs of a series picked from those answers;
* a downstream task reading a listing back from object storage, streamed.

Nothing travels between tasks through local disk, so the DAG runs unchanged on Celery or Kubernetes. The
defaults point at real TCIA data (the legacy API's TCGA-BRCA); set ``output_root`` to ``s3://aws_conn@bucket/…``
(with the ``[s3]`` extra) to write to S3 instead of the local ``file://`` default.
"""

from __future__ import annotations

import json
import os
import re

import pendulum
from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_tcia.operators import (
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
    TciaPatientsByModalityOperator,
)

#: Where the listings go unless the run says otherwise.
OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")


def _slug(text: str) -> str:
    """A run id as a path segment (``manual__2024-01-01T00:00:00+00:00`` → ``manual__2024-01-01T00_00_00_00_00``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))


with DAG(
    dag_id="tcia_query_examples",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "collection": Param("TCGA-BRCA", type="string", description="The collection to explore"),
        "modality": Param("MR", type="string", description="A modality of that collection"),
        "body_part": Param("BREAST", type="string", description="A body part of that collection"),
        "patient_id": Param("TCGA-AR-A1AQ", type="string", description="A patient whose studies to list"),
        "max_patients": Param(3, type="integer", minimum=1, description="How many patients to map getSeries over"),
        "shared_list": Param("sharedListApiUnitTest", type="string", description="A shared list's name"),
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
    },
    user_defined_filters={"slug": _slug},
    tags=["tcia", "example"],
) as dag:
    # Each run writes under its own folder, so runs never overwrite each other.
    out = "{{ params.output_root }}/tcia_query_examples/{{ run_id | slug }}"

    # --- small answers: straight to XCom ---------------------------------------------------------
    collections = TciaGetCollectionValuesOperator(task_id="collections")
    modalities = TciaGetModalityValuesOperator(task_id="modalities", collection="{{ params.collection }}")
    patients_with_modality = TciaPatientsByModalityOperator(
        task_id="patients_with_modality", collection="{{ params.collection }}", modality="{{ params.modality }}"
    )
    shared_list = TciaGetSharedListOperator(task_id="shared_list", name="{{ params.shared_list }}")

    # --- listings: to object storage, one format each (the format follows the suffix) ---------------
    body_parts = TciaGetBodyPartValuesOperator(
        task_id="body_parts",
        collection="{{ params.collection }}",
        modality="{{ params.modality }}",
        output_path=f"{out}/body_parts.csv",
    )
    manufacturers = TciaGetManufacturerValuesOperator(
        task_id="manufacturers",
        collection="{{ params.collection }}",
        modality="{{ params.modality }}",
        body_part_examined="{{ params.body_part }}",
        output_path=f"{out}/manufacturers.xml",
    )
    patients = TciaGetPatientOperator(
        task_id="patients", collection="{{ params.collection }}", output_path=f"{out}/patients.json"
    )
    studies = TciaGetPatientStudyOperator(
        task_id="studies",
        collection="{{ params.collection }}",
        patient_id="{{ params.patient_id }}",
        output_path=f"{out}/studies.html",
    )
    all_series = TciaGetSeriesOperator(
        task_id="all_series", collection="{{ params.collection }}", output_path=f"{out}/series.jsonl"
    )

    # --- dynamic task mapping: one getSeries per patient ----------------------------------------------
    @task
    def pick_patients(rows: list[dict], params=None) -> list[str]:
        return sorted({row["PatientID"] for row in rows})[: params["max_patients"]]

    series_per_patient = TciaGetSeriesOperator.partial(
        task_id="series_per_patient", collection="{{ params.collection }}", modality="{{ params.modality }}"
    ).expand(patient_id=pick_patients(patients_with_modality.output))

    @task
    def pick_series(answers: list[list[dict]]) -> str:
        uids = sorted(row["SeriesInstanceUID"] for rows in answers for row in rows)
        if not uids:
            raise ValueError("none of the picked patients has a series of that modality")
        return uids[0]

    series_uid = pick_series(series_per_patient.output)
    series_size = TciaGetSeriesSizeOperator(task_id="series_size", series_instance_uid=series_uid)
    sop_uids = TciaGetSOPInstanceUIDsOperator(
        task_id="sop_uids", series_instance_uid=series_uid, output_path=f"{out}/sop_instance_uids.csv"
    )

    # --- downstream: read a listing back from object storage, streamed -------------------------------
    @task
    def summarise(listing: dict, sizes: list[dict], sops: dict, collection_rows: list[dict]) -> dict:
        studies_seen: set[str] = set()
        images = 0
        with ObjectStoragePath(listing["path"]).open("r") as fh:
            # One series per line: memory does not grow with the listing. (readline: Airflow 2.11's file
            # object is not iterable.)
            for line in iter(fh.readline, ""):
                row = json.loads(line)
                studies_seen.add(row["StudyInstanceUID"])
                images += int(row.get("ImageCount") or 0)
        return {
            "collections": len(collection_rows),
            "series": listing["rows"],
            "studies": len(studies_seen),
            "images": images,
            "picked_series_bytes": sizes[0]["TotalSizeInBytes"] if sizes else None,
            "picked_series_instances": sops["rows"],
        }

    summary = summarise(all_series.output, series_size.output, sop_uids.output, collections.output)
    [modalities, body_parts, manufacturers, patients, studies, shared_list] >> summary
