"""The flagship pipeline, part 2: process what arrived — a DICOM header index and a contact sheet.

Scheduled on the ``tcia_flagship_downloaded_series`` asset, which the ingest DAGs (``tcia_flagship_ingest``
with its deferrable sensor, ``tcia_flagship_event_ingest`` with its asset watcher) update after downloading
new series. Each run reads the series named in its triggering asset events straight from object storage
(folders of DICOM files or zips — nothing is copied to local disk), and writes under
``{output_root}/tcia_flagship/processed/<run_id>/``:

* ``index.csv`` — one row per series: DICOM header fields (collection, patient, study and series with their
  dates and descriptions, modality, manufacturer, matrix, spacing …; pixel spacing also as two numbers in
  mm), instance count and location;
* ``index.parquet`` — the same, typed (integers, floats), when pyarrow is installed (the ``parquet`` extra);
* ``contact_sheet.png`` — the middle slice of each new series in 256-pixel tiles, windowed as its header
  says (CT in Hounsfield units), labelled with collection, patient, modality, image count and description;
* ``thumbnails/<SeriesInstanceUID>.png`` — the tiles.

One mapped task per series reads its headers and its middle slice; only paths and small dicts go through
XCom, so the DAG runs unchanged on the Local, Celery or Kubernetes executor. A manual run (no asset event)
processes the series listed in the ``series`` param, or else every series under the downloads folder.
Needs the ``examples`` extra (pydicom, numpy, pillow).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, get_current_context, task
from tcia_flagship_lib import (
    DEFAULT_OUTPUT_ROOT,
    DOWNLOADED_SERIES,
    downloads_root,
    items,
    parquet_available,
    processed_root,
    series_in_events,
    series_under,
    summarise_series,
    write_contact_sheet,
    write_index,
)

from airflow_provider_tcia.compat import triggering_asset_events

with DAG(
    dag_id="tcia_flagship_process",
    schedule=[DOWNLOADED_SERIES],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "output_root": Param(
            DEFAULT_OUTPUT_ROOT, type="string", description="Object storage URL to read and write under"
        ),
        "series": Param(
            [],
            type="array",
            description="For manual runs: series locations to process (default: every downloaded series)",
        ),
    },
    tags=["tcia", "example", "flagship"],
) as dag:

    @task
    def arrived(**context) -> list[str]:
        """The series this run processes: those its asset events announce, else the ``series`` param,
        else everything downloaded so far."""
        params = context["params"]
        events = triggering_asset_events(context, DOWNLOADED_SERIES)
        if events:
            locations = series_in_events(events)
        else:  # a manual run
            locations = list(params.get("series") or []) or series_under(downloads_root(params["output_root"]))
        print(f"{len(locations)} series to process")
        return locations

    @task(map_index_template="{{ location.rsplit('/', 1)[-1] }}")
    def summarise(location: str, params=None) -> dict:
        """Headers of one series and a thumbnail of its middle slice (written to object storage)."""
        run_id = get_current_context()["run_id"]
        return summarise_series(location, f"{processed_root(params['output_root'], run_id)}/thumbnails")

    @task(trigger_rule="none_failed")
    def index(rows, params=None, run_id=None) -> dict:
        """``index.csv``, and ``index.parquet`` beside it when pyarrow is installed."""
        rows = [r for r in items(rows) if r]
        folder = processed_root(params["output_root"], run_id)
        result = write_index(rows, f"{folder}/index.csv")
        if parquet_available():
            result["parquet"] = write_index(rows, f"{folder}/index.parquet")["path"]
        else:
            result["parquet"] = None
            print("no index.parquet: pyarrow is not installed (pip install 'airflow-provider-tcia[parquet]')")
        return result

    @task(trigger_rule="none_failed")
    def contact_sheet(rows, params=None, run_id=None) -> dict:
        rows = [r for r in items(rows) if r]
        if not rows:
            return {"path": None, "series": 0}
        return write_contact_sheet(rows, f"{processed_root(params['output_root'], run_id)}/contact_sheet.png")

    @task(trigger_rule="none_failed")
    def report(index_result: dict, sheet_result: dict) -> dict:
        summary = {
            "series": index_result["series"],
            "index": index_result["path"],
            "index_parquet": index_result.get("parquet"),
            "contact_sheet": sheet_result["path"],
        }
        print(summary)
        return summary

    summaries = summarise.expand(location=arrived())
    report(index(summaries), contact_sheet(summaries))
