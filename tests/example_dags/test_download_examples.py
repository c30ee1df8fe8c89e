"""The download example DAGs with ``dag.test()`` against the bundled emulator, on both APIs: mapped and in-task
concurrency, the Asset outlet and the consumer DAG scheduled on it, and a second run that finds everything in
place."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_provider_tcia.storage import PARTIAL_MARK
from tests.airflow_compat import asset_event_extras, scheduled_on, triggering_events_context
from tests.dags import files_under, load_example, run_example, states

pytestmark = [pytest.mark.integration, pytest.mark.example_dag("tcia_download_examples", "tcia_download_consumer")]


def image_requests(emulator) -> list[dict]:
    return [r for r in emulator.requests() if r["endpoint"] in ("getImage", "getImageWithMD5Hash")]


@pytest.mark.parametrize("api", ["legacy", "nbia"])
def test_download_examples_dag(airflow_db, tcia_emulator, use_emulator, tmp_path, api):
    use_emulator(tcia_emulator, api)
    data = tcia_emulator.publish("TCIA-DL-TEST", series_count=3, image_count=2, patient_id="DL-0001")
    module = load_example("tcia_download_examples")
    conf = {"collection": "TCIA-DL-TEST", "patient_id": "DL-0001", "output_root": f"file://{tmp_path}"}
    dag_run = run_example(module.dag, run_conf=conf)

    tis = states(dag_run)
    assert sorted(k for k in tis if k[0] == "download_each_series") == [("download_each_series", i) for i in range(3)]
    root = tmp_path / "tcia_download_examples"
    names = files_under(root)
    assert not any(PARTIAL_MARK in n or Path(n).name.startswith(".") for n in names)
    study = data["study_instance_uid"]
    for uid in data["series_instance_uids"]:
        assert f"zips/{uid}.zip" in names and f"zips/{uid}.manifest.json" in names
        assert f"extracted/DL-0001/{study}/{uid}.manifest.json" in names
    asset = module.DOWNLOADED_SERIES
    extras = asset_event_extras(name="tcia_example_downloaded_series", uri=asset.uri, run_id=dag_run.run_id)
    assert len(extras) == 1
    assert sorted(extras[0]["series"]) == sorted(data["series_instance_uids"])
    assert extras[0]["downloaded"] == 3 and extras[0]["layout"] == "extract"

    # The consumer DAG is scheduled on that Asset; its task reads the series from the events that triggered it.
    consumer = module.consumer
    assert scheduled_on(consumer) == [asset]
    read = consumer.get_task("new_series").python_callable
    events = [SimpleNamespace(extra=extra) for extra in extras]
    assert sorted(read(**triggering_events_context(asset, events))) == sorted(data["series_instance_uids"])
    manual = run_example(consumer)  # a manual run has no triggering events: nothing new, and it says so
    assert [ti.xcom_pull(task_ids="new_series") for ti in manual.get_task_instances()] == [[]]

    # A second run finds everything in place.
    before = len(image_requests(tcia_emulator))
    run_example(module.dag, run_conf=conf)
    assert len(image_requests(tcia_emulator)) == before
