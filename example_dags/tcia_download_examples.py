"""Downloading series from TCIA: verified, atomic and idempotent, mapped per series or many in one task.

``tcia_download_examples`` asks getSeries for a patient's series, then downloads them twice to show both ways:

* ``download_each_series`` — dynamic task mapping, one task per series (``.expand(series_instance_uids=...)``
  over the getSeries rows), each writing ``<SeriesInstanceUID>.zip`` and its manifest;
* ``download_in_one_task`` — every series in one task with bounded concurrency (``max_concurrency``),
  extracted and nested as ``<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/``; this task declares the
  :data:`DOWNLOADED_SERIES` Asset as its outlet, and its event carries the list of series written;
* ``check_manifests`` reads the manifests back from object storage and checks every series was verified.

``tcia_download_consumer`` is scheduled on that Asset: it runs after each successful download and reads the
event's ``extra``. Run ``tcia_download_examples`` twice: the second run skips every series ("skipped: already
present and verified") without downloading anything.

Everything goes under ``params.output_root`` (``file:///tmp/airflow-tcia-examples`` unless the environment
variable ``TCIA_EXAMPLE_OUTPUT`` says otherwise; ``s3://aws_conn@bucket/prefix`` works the same with the
``[s3]`` extra). Tasks pass only small summaries through XCom and read data from object storage, so the DAGs
run unchanged on the Celery and Kubernetes executors.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_tcia.compat import asset, triggering_asset_events
from airflow_provider_tcia.operators import TciaGetSeriesOperator
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator

OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")
#: The downloaded series, as an Asset other DAGs can be scheduled on.
DOWNLOADED_SERIES = asset(name="tcia_example_downloaded_series", uri="tcia-example://downloads/series")

with DAG(
    dag_id="tcia_download_examples",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "collection": Param("LIDC-IDRI", type="string", description="The collection"),
        "patient_id": Param("LIDC-IDRI-0002", type="string", description="The patient whose series to download"),
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage root for the downloads"),
    },
    tags=["tcia", "example", "download"],
) as dag:
    series = TciaGetSeriesOperator(
        task_id="get_series",
        collection="{{ params.collection }}",
        patient_id="{{ params.patient_id }}",
    )

    # One task per series: ImageCount of each row is checked against the zip, md5hashes.csv (NBIA) too.
    each = TciaDownloadSeriesOperator.partial(
        task_id="download_each_series",
        destination="{{ params.output_root }}/tcia_download_examples/zips",
        layout="zip",
        max_concurrency=1,
    ).expand(series_instance_uids=series.output)

    # Every series in one task, a few at a time; extracted under PatientID/StudyInstanceUID.
    together = TciaDownloadSeriesOperator(
        task_id="download_in_one_task",
        series_instance_uids=series.output,
        destination="{{ params.output_root }}/tcia_download_examples/extracted",
        layout="extract",
        nested=True,
        max_concurrency=4,
        outlets=[DOWNLOADED_SERIES],
    )

    @task
    def check_manifests(zips: list[dict[str, Any]], extracted: list[dict[str, Any]]) -> dict[str, int]:
        """Read each series' manifest back from object storage: every one verified, same files both ways."""
        files = {}
        for summary in [*zips, *extracted]:
            data = ObjectStoragePath(summary["path"])
            manifest_path = data.parent / f"{summary['series_instance_uid']}.manifest.json"
            manifest = json.loads(manifest_path.read_text())
            if not manifest["verified"] or manifest["files"] != summary["files"]:
                raise ValueError(f"{manifest_path} does not match what the task reported: {summary}")
            previous = files.setdefault(summary["series_instance_uid"], manifest["files"])
            if previous != manifest["files"]:
                raise ValueError(
                    f"series {summary['series_instance_uid']}: {previous} files zipped, {manifest['files']} extracted"
                )
        return {"series": len(files), "files": sum(files.values())}

    check_manifests(each.output, together.output)


with DAG(
    dag_id="tcia_download_consumer",
    schedule=[DOWNLOADED_SERIES],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["tcia", "example", "download"],
) as consumer:

    @task
    def new_series(**context) -> list[str]:
        """The series written by the download runs that triggered this run (from the Asset events' extra)."""
        written: list[str] = []
        for event in triggering_asset_events(context, DOWNLOADED_SERIES):
            written.extend(event.extra.get("series", []))
            print(f"{event.extra.get('downloaded')} series downloaded to {event.extra.get('destination')}")
        return written

    new_series()
