"""Keep a copy current: an AssetWatcher announces new and revised series; this DAG downloads them.

TCIA corrects published data by republishing a series under the same SeriesInstanceUID with a new release
date. The ``tcia_updated_series`` asset has an :class:`~airflow.sdk.AssetWatcher` running
:class:`~airflow_provider_tcia.triggers.tcia.TciaUpdatedSeriesEventTrigger` (NBIA's getUpdatedSeries, kept to
``$TCIA_UPDATED_SERIES_COLLECTIONS``, comma-separated, default TCGA-BRCA) in the triggerer. Whenever a series
appears that it has not announced, or a revision of one it announced, it records an asset event whose
``extra["payload"]["series"]`` holds the getSeries rows, and this DAG runs: ``updated_series`` reads those rows
and ``download`` fetches them — a revision again, replacing the old copy; what is already current is skipped.

The watcher needs an NBIA connection (``$TCIA_UPDATED_SERIES_CONN_ID``, default ``tcia_default``, with
``api=nbia``); its arguments are fixed when the file is parsed. A manual run downloads the rows given in the
``series`` param. Asset watchers exist from Airflow 3.0: on Airflow 2.11 this file fails to load, saying so.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_tcia.compat import AirflowSkipException, AssetWatcher, asset, triggering_asset_events
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from airflow_provider_tcia.triggers.tcia import TciaUpdatedSeriesEventTrigger

COLLECTIONS = [c.strip() for c in os.environ.get("TCIA_UPDATED_SERIES_COLLECTIONS", "TCGA-BRCA").split(",")]
CONN_ID = os.environ.get("TCIA_UPDATED_SERIES_CONN_ID", "tcia_default")
POLL_INTERVAL = float(os.environ.get("TCIA_UPDATED_SERIES_POLL_INTERVAL", "300"))
OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")

UPDATED_SERIES = asset(
    name="tcia_updated_series",
    uri="tcia-example://updated-series",
    watchers=[
        AssetWatcher(
            name="tcia_updated_series_watcher",
            trigger=TciaUpdatedSeriesEventTrigger(
                collections=[c for c in COLLECTIONS if c], tcia_conn_id=CONN_ID, poll_interval=POLL_INTERVAL
            ),
        )
    ],
)

with DAG(
    dag_id="tcia_updated_series",
    schedule=[UPDATED_SERIES],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
        "series": Param([], type="array", description="For manual runs: getSeries rows to download"),
    },
    tags=["tcia", "example"],
) as dag:

    @task
    def updated_series(**context) -> list[dict]:
        """The rows the watcher announced (every event of this run; a series named twice: its last row), or
        the ``series`` param; nothing to download skips the download."""
        events = triggering_asset_events(context, UPDATED_SERIES)
        rows = [row for event in events for row in (event.extra.get("payload") or {}).get("series") or []]
        if not events:
            rows = list(context["params"].get("series") or [])
        latest = {row["SeriesInstanceUID"]: row for row in rows}
        print(f"{len(latest)} new or revised series from {len(events)} asset event(s)")
        if not latest:
            raise AirflowSkipException("no series to download")
        return list(latest.values())

    TciaDownloadSeriesOperator(
        task_id="download",
        series_instance_uids=updated_series(),
        destination="{{ params.output_root }}/tcia_updated_series",
        tcia_conn_id=CONN_ID,
        max_concurrency=4,
    )
