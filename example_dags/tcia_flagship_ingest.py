"""The flagship pipeline, part 1: wait for new studies (deferrable sensor), download them, update an asset.

A daily DAG. ``wait_for_new_studies`` (:class:`~airflow_provider_tcia.sensors.tcia.TciaNewStudiesSensor`,
``deferrable=True``) waits in the triggerer — no worker slot held — for studies added to ``params.collection``
on or after ``params.since``, by default on or after the day before the run (Airflow 3's cron timetable gives
scheduled runs an empty data interval; the one-day overlap means no day is left out). Then ``list_series`` asks getSeries for
each new study (mapped per study), ``download`` fetches each series in its own mapped task to
``{output_root}/tcia_flagship/downloads/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>.zip`` (or
extracted, ``params.layout``; streamed,
verified against the file count and MD5s, written atomically, skipped when already there), and ``announce``
updates the ``tcia_flagship_downloaded_series`` asset with where each series landed, which starts
``tcia_flagship_process``.

Nothing passes between tasks through local disk (object storage and XCom only), so this runs unchanged on
the Local, Celery or Kubernetes executor. ``tcia_flagship_event_ingest`` is the same pipeline started by an
asset watcher instead of a sensor.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param
from tcia_flagship_lib import (
    DEFAULT_COLLECTION,
    DEFAULT_LAYOUT,
    DEFAULT_OUTPUT_ROOT,
    POLL_INTERVAL,
    SENSOR_TIMEOUT,
    download_and_announce,
)

from airflow_provider_tcia.sensors.tcia import TciaNewStudiesSensor

with DAG(
    dag_id="tcia_flagship_ingest",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "collection": Param(DEFAULT_COLLECTION, type="string", description="The collection to watch"),
        "since": Param(
            None,
            type=["null", "string"],
            description="ISO date: studies added on or after it (default: the day before the run)",
        ),
        "output_root": Param(DEFAULT_OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
        "layout": Param(DEFAULT_LAYOUT, enum=["zip", "extract"], description="One zip per series, or its files"),
    },
    tags=["tcia", "example", "flagship"],
) as dag:
    new_studies = TciaNewStudiesSensor(
        task_id="wait_for_new_studies",
        collection="{{ params.collection }}",
        since="{{ params.since }}",  # unset: the data interval's start, or the day before the run if it is empty
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=SENSOR_TIMEOUT,
        max_rows_in_xcom=500,
    )
    download_and_announce(new_studies.output, collection="{{ params.collection }}")
