"""NBIA's many-request queries: a criteria search, every page, and many series' metadata, in chunks.

Needs a ``tcia`` connection with ``api=nbia`` (TCIA's current API; a legacy connection refuses both tasks before
anything is sent):

* ``search``: getSimpleSearch with typed criteria (a collection, modalities, a window of release dates from
  templates),
  every page of patients, one row per series, written as JSON Lines under ``params.output_root`` — a
  ``{path, format, rows, bytes}`` summary goes to XCom;
* ``series``: getSeries of the collection's chosen patient, rows to XCom;
* ``metadata``: getSeriesMetadata of those series (getSeries rows are taken as they are), sent in chunks of
  ``chunk_size`` UIDs, written as the API's CSV columns;
* ``report``: reads both files back from object storage, streamed.
"""

from __future__ import annotations

import csv
import io
import json
import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_tcia.operators import (
    TciaGetSeriesMetadataOperator,
    TciaGetSeriesOperator,
    TciaGetSimpleSearchOperator,
)

#: Where the files go unless the run says otherwise.
OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")


with DAG(
    dag_id="tcia_nbia_search",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "collection": Param("TCGA-GBM", type="string", description="The collection to search"),
        "released_from": Param("2010-01-01", type="string", description="Series released from (YYYY-MM-DD)"),
        "released_to": Param("2015-12-31", type="string", description="Series released until (YYYY-MM-DD)"),
        "patient_id": Param("TCGA-08-0244", type="string", description="A patient whose series' metadata to get"),
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
    },
    tags=["tcia", "example", "nbia"],
) as dag:
    # Each run writes under its own folder (its run id, with ":" and "+" made path-safe).
    out = "{{ params.output_root }}/tcia_nbia_search/{{ run_id | replace(':', '_') | replace('+', '_') }}"

    search = TciaGetSimpleSearchOperator(
        task_id="search",
        collections="{{ params.collection }}",
        modalities=["MR", "CT"],
        date_range=("{{ params.released_from }}", "{{ params.released_to }}"),  # (TCIA's release dates)
        page_size=2,  # (small, to show the paging; NBIA's portal asks hundreds at a time)
        output_path=f"{out}/search.jsonl",
    )
    series = TciaGetSeriesOperator(
        task_id="series", collection="{{ params.collection }}", patient_id="{{ params.patient_id }}"
    )
    metadata = TciaGetSeriesMetadataOperator(
        task_id="metadata", series_instance_uids=series.output, chunk_size=2, output_path=f"{out}/metadata.csv"
    )

    @task
    def report(search_summary: dict, metadata_summary: dict) -> dict:
        """How many series each search patient has, and the modalities the metadata lists — read back."""
        with ObjectStoragePath(search_summary["path"]).open("rb") as fh:
            found = [json.loads(line)["PatientID"] for line in io.TextIOWrapper(fh, encoding="utf-8")]
        with ObjectStoragePath(metadata_summary["path"]).open("rb") as fh:
            rows = list(csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline="")))
        return {
            "series_per_patient": {p: found.count(p) for p in sorted(set(found))},
            "metadata_modalities": sorted({r["Modality"] for r in rows}),
            "metadata_rows": len(rows),
        }

    report(search.output, metadata.output)
