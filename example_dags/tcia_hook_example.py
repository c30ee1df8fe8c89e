"""TciaHook in TaskFlow tasks: the connection check, a catalogue summary and an endpoint's metadata.

Shows the hook directly (for what the operators don't cover): ``test_connection()``, per-endpoint methods
with API-named parameters, ``iter_rows()`` streaming a large listing without holding it, and
``get_metadata()``. Only small summaries go to XCom. Point ``tcia_default`` at TCIA, TCIA's test server, NBIA
or the bundled emulator: the DAG does not change.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_tcia.hooks.tcia import TciaHook


@dag(
    dag_id="tcia_hook_example",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"collection": Param("TCGA-GBM", type="string", minLength=1), "tcia_conn_id": "tcia_default"},
    tags=["tcia", "example"],
)
def tcia_hook_example():
    @task
    def check_connection(params=None) -> str:
        ok, message = TciaHook(params["tcia_conn_id"]).test_connection()
        if not ok:
            raise RuntimeError(f"TCIA is not reachable: {message}")
        return message

    @task
    def summarise_collection(params=None) -> dict:
        hook = TciaHook(params["tcia_conn_id"])
        collection = params["collection"]
        modalities = sorted(row["Modality"] for row in hook.get_modality_values(collection=collection))
        series = images = 0
        for row in hook.iter_rows("getSeries", collection=collection):  # streamed, however many rows
            series += 1
            images += int(row.get("ImageCount") or 0)
        return {
            "collection": collection,
            "modalities": modalities,
            "patients": len(hook.get_patient(collection=collection)),
            "series": series,
            "images": images,
        }

    @task
    def describe_get_series(params=None) -> list[str]:
        metadata = TciaHook(params["tcia_conn_id"]).get_metadata("getSeries")
        return [attribute["Name"] for attribute in metadata["Result"]["Attributes"]]

    check_connection() >> [summarise_collection(), describe_get_series()]


dag = tcia_hook_example()
