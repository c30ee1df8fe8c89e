"""Downloading what a TCIA manifest lists: the ``.tcia`` file from TCIA's portal, or one a colleague sends.

A TCIA user who has picked series in TCIA's portal (the cart's "Download" button) holds a ``.tcia`` manifest,
the file NBIA Data Retriever opens. ``tcia_manifest_download`` downloads what such a file lists into object
storage, verified; when it is given none, it makes one itself first, as the hand-off to colleagues who use
TCIA's own tools:

* ``choose_manifest`` — with the ``manifest`` param (a URL of a ``.tcia``, ``.csv`` or ``.tsv`` manifest on any
  object storage) it goes straight to the download; without it, it takes the selection route below;
* ``series`` → ``write_selection`` — getSeries of ``params.patient_id`` in ``params.collection`` (the reviewed
  selection), written by :class:`~airflow_provider_tcia.operators.manifest.TciaWriteManifestOperator` as
  ``<output_root>/tcia_manifest_download/<run>/selection.tcia``: NBIA's own manifest (getManifestText) on an NBIA
  connection, built in the same layout on the legacy API. NBIA Data Retriever and tcia_utils' ``manifestToList``
  open it as they open one from the portal;
* ``manifest_to_download`` — the manifest's URL, whichever route made it;
* ``download`` — :class:`~airflow_provider_tcia.operators.download.TciaDownloadSeriesOperator` with
  ``manifest=``: the manifest is read and checked whole before anything is sent (a file that is not a manifest
  fails the task naming the line, nothing downloaded), then every series it lists is downloaded in one task,
  four at a time (``max_concurrency``), each verified before it is moved into place, to
  ``<output_root>/tcia_manifest_download/series``. Shared by every run: a series already there and verified is
  skipped, so a second manifest that overlaps the first downloads only what is new;
* ``check_downloads`` — reads the manifest back and checks that every series it lists is under the destination
  and verified (:func:`~airflow_provider_tcia.downloads.layout.verified_series`), and summarises the run.

Run it with ``airflow dags test tcia_manifest_download`` (or trigger it in the UI) against TCIA or the bundled
emulator; give ``{"manifest": "file:///data/manifest-1700000000000.tcia"}`` (or ``s3://aws_conn@bucket/…``) as
the run's conf to download a manifest of your own. Everything goes under ``params.output_root``
(``file:///tmp/airflow-tcia-examples`` unless ``TCIA_EXAMPLE_OUTPUT`` says otherwise). Only small summaries go
through XCom, so the DAG runs unchanged on the Celery and Kubernetes executors.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, TriggerRule, task

from airflow_provider_tcia.downloads.layout import verified_series
from airflow_provider_tcia.downloads.tcia_manifest import iter_manifest, manifest_file
from airflow_provider_tcia.operators import TciaGetSeriesOperator
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from airflow_provider_tcia.operators.manifest import TciaWriteManifestOperator

OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")
#: Where the series land, shared by every run (re-runs skip what is there and verified).
DESTINATION = "{{ params.output_root }}/tcia_manifest_download/series"
#: The folder of one run (its run id, with ":" and "+" made path-safe), where the selection's manifest goes.
RUN_FOLDER = "{{ params.output_root }}/tcia_manifest_download/{{ run_id | replace(':', '_') | replace('+', '_') }}"

with DAG(
    dag_id="tcia_manifest_download",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={
        "manifest": Param(
            "",
            type="string",
            description="URL of a .tcia, .csv or .tsv manifest to download; empty: write one of the selection below",
        ),
        "collection": Param("LIDC-IDRI", type="string", description="The selection's collection"),
        "patient_id": Param("LIDC-IDRI-0002", type="string", description="The selection's patient"),
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage root for what is written"),
    },
    tags=["tcia", "example", "download", "manifest"],
) as dag:

    @task.branch
    def choose_manifest(**context) -> list[str]:
        """A given manifest goes straight to the download; without one, the selection is written first."""
        if (context["params"].get("manifest") or "").strip():
            return ["manifest_to_download"]
        return ["series", "manifest_to_download"]

    series = TciaGetSeriesOperator(
        task_id="series", collection="{{ params.collection }}", patient_id="{{ params.patient_id }}"
    )
    # The hand-off: a .tcia that NBIA Data Retriever and tcia_utils open as they open one from TCIA's portal.
    selection = TciaWriteManifestOperator(
        task_id="write_selection", series_instance_uids=series.output, output_path=f"{RUN_FOLDER}/selection.tcia"
    )

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def manifest_to_download(**context) -> str:
        """The manifest's URL: the ``manifest`` param, or the one ``write_selection`` wrote."""
        given = (context["params"].get("manifest") or "").strip()
        if given:
            return given
        return context["ti"].xcom_pull(task_ids="write_selection")["path"]

    manifest = manifest_to_download()

    # One task for the whole manifest: it is read and checked whole before the first request.
    download = TciaDownloadSeriesOperator(
        task_id="download", manifest=manifest, destination=DESTINATION, max_concurrency=4
    )

    @task
    def check_downloads(manifest_url: str, summaries: list[dict[str, Any]], destination: str) -> dict[str, Any]:
        """Every series the manifest lists is under the destination and verified; what the run did."""
        listed = [ref.series_instance_uid for ref in iter_manifest(*manifest_file(manifest_url))]
        verified = {str(path) for path in verified_series(destination)}
        by_uid = {s["series_instance_uid"]: s for s in summaries}
        missing = [uid for uid in listed if uid not in by_uid or by_uid[uid]["path"] not in verified]
        if missing:
            raise ValueError(f"{len(missing)} series of {manifest_url} are not verified under {destination}: {missing}")
        return {
            "manifest": manifest_url,
            "series": len(set(listed)),
            "downloaded": sum(1 for s in summaries if not s["skipped"]),
            "skipped": sum(1 for s in summaries if s["skipped"]),
            "bytes": sum(s["bytes"] for s in summaries),
            "verified_at_destination": len(verified),
        }

    choose = choose_manifest()
    choose >> [series, manifest]
    selection >> manifest
    check_downloads(manifest, download.output, DESTINATION)
