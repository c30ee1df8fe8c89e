"""What TCIA added to a collection since the last run: a weekly DAG driven by ``{{ data_interval_start }}``.

Shows the two "what is new" operators with a templated date — NewPatientsInCollection to XCom,
NewStudiesInPatientCollection to a JSON Lines file under ``params.output_root`` — and then getSeries mapped
over each new patient. The date is sent in whichever format the connection's API wants (``YYYY-MM-DD`` for the
legacy API, ``MM-DD-YYYY`` for NBIA v4) with the legacy meaning "added after that day". Set ``since`` (an
ISO date) to look further back, e.g. for a first run; a manual run looks back one week.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_tcia.operators import (
    TciaGetSeriesOperator,
    TciaNewPatientsInCollectionOperator,
    TciaNewStudiesInPatientCollectionOperator,
)

OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")

with DAG(
    dag_id="tcia_query_new_data",
    schedule="@weekly",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={
        "collection": Param("TCGA-BRCA", type="string", description="The collection to watch"),
        "since": Param(
            None, type=["null", "string"], description="ISO date to look back to (default: the interval start)"
        ),
        "output_root": Param(OUTPUT_ROOT, type="string", description="Object storage URL to write under"),
    },
    tags=["tcia", "example"],
) as dag:
    # When the run was due: Airflow 3's run_after (a manual run may have no logical date); 2.11's logical date.
    run_day = "(dag_run.run_after if dag_run.run_after is defined else dag_run.logical_date)"
    # A scheduled run looks back over its data interval; a manual run's interval is a single instant, so it
    # looks back a week from when it runs instead.
    since = (
        "{{ params.since or (data_interval_start if dag_run.run_type == 'scheduled'"
        f" else {run_day} - macros.timedelta(days=7)) }}}}"
    )

    new_patients = TciaNewPatientsInCollectionOperator(
        task_id="new_patients", collection="{{ params.collection }}", date=since
    )
    new_studies = TciaNewStudiesInPatientCollectionOperator(
        task_id="new_studies",
        collection="{{ params.collection }}",
        date=since,
        output_path="{{ params.output_root }}/tcia_query_new_data/{{ params.collection }}/{{ "
        + run_day
        + " | ds }}/new_studies.jsonl",
    )

    @task
    def patient_ids(rows: list[dict]) -> list[str]:
        return sorted({row["PatientID"] for row in rows})

    # No new patient: the mapped task has nothing to do and is skipped.
    new_series = TciaGetSeriesOperator.partial(task_id="new_series", collection="{{ params.collection }}").expand(
        patient_id=patient_ids(new_patients.output)
    )

    @task(trigger_rule="none_failed")
    def report(patients: list[dict], studies: dict, series: list[list[dict]] | None = None) -> dict:
        return {
            "new_patients": len(patients),
            "new_studies": studies["rows"],
            "new_studies_path": studies["path"],
            "series_of_new_patients": sum(len(rows) for rows in series or []),
        }

    report(new_patients.output, new_studies.output, new_series.output)
