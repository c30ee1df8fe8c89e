"""The flagship pipeline, event-driven: an AssetWatcher announces new studies; no DAG polls at all.

The ``tcia_flagship_new_studies`` asset has an :class:`~airflow.sdk.AssetWatcher` running
:class:`~airflow_provider_tcia.triggers.tcia.TciaNewStudiesEventTrigger` in the triggerer. Whenever studies
appear in the collection (``$TCIA_FLAGSHIP_COLLECTION``, default TCGA-BRCA) that it has not announced yet, it
records an asset event whose ``extra["payload"]["studies"]`` holds the new study rows, and this DAG runs:
``new_studies`` reads those rows, then — the same tasks as ``tcia_flagship_ingest`` — ``list_series`` (mapped
per study), ``download`` (mapped per series; idempotent, so a study announced twice after a triggerer
restart is not downloaded twice) and ``announce``, which updates ``tcia_flagship_downloaded_series`` and so
starts ``tcia_flagship_process``.

The watcher's arguments are fixed when the file is parsed (they are the trigger's identity), hence the
collection and poll interval come from environment variables, not params. A manual run processes the study
rows given in the ``studies`` param. See docs/sensors.md for what happens across triggerer restarts.

Asset watchers exist from Airflow 3.0: on Airflow 2.11 this file fails to load with a message saying so, and
``tcia_flagship_ingest`` (a deferrable sensor on a schedule) is the way to wait for new studies there.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task
from tcia_flagship_lib import (
    DEFAULT_COLLECTION,
    DEFAULT_LAYOUT,
    DEFAULT_OUTPUT_ROOT,
    POLL_INTERVAL,
    download_and_announce,
)

from airflow_provider_tcia.compat import AssetWatcher, asset, triggering_asset_events
from airflow_provider_tcia.triggers.tcia import TciaNewStudiesEventTrigger

NEW_STUDIES = asset(
    name="tcia_flagship_new_studies",
    uri="tcia-flagship://new-studies",
    watchers=[
        AssetWatcher(
            name="tcia_flagship_new_studies_watcher",
            trigger=TciaNewStudiesEventTrigger(collection=DEFAULT_COLLECTION, poll_interval=POLL_INTERVAL),
        )
    ],
)

with DAG(
    dag_id="tcia_flagship_event_ingest",
    schedule=[NEW_STUDIES],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "output_root": Param(DEFAULT_OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
        "layout": Param(DEFAULT_LAYOUT, enum=["zip", "extract"], description="One zip per series, or its files"),
        "studies": Param([], type="array", description="For manual runs: study rows to download"),
    },
    tags=["tcia", "example", "flagship"],
) as dag:

    @task
    def new_studies(**context) -> list[dict]:
        """The study rows the watcher announced (every event of this run), or the ``studies`` param."""
        params = context["params"]
        events = triggering_asset_events(context, NEW_STUDIES)
        rows = [study for event in events for study in (event.extra.get("payload") or {}).get("studies") or []]
        if not events:
            rows = list(params.get("studies") or [])
        print(f"{len(rows)} new stud{'y' if len(rows) == 1 else 'ies'} from {len(events)} asset event(s)")
        return rows

    download_and_announce(new_studies(), collection=DEFAULT_COLLECTION)
