"""``tcia_nbia_search`` with ``dag.test()`` against the emulator on NBIA: every page of a criteria search and a
series list's metadata in chunks (the request log shows each), read back from object storage; on a legacy
connection both NBIA-only tasks fail before anything is sent."""

from __future__ import annotations

import pytest

from airflow_provider_tcia.api.simple_search import SimpleSearch
from tests.dags import load_example, run_example, states, xcoms

pytestmark = [pytest.mark.integration, pytest.mark.example_dag("tcia_nbia_search")]


def test_nbia_search_example(airflow_db, tcia_emulator, use_emulator, tmp_path):
    hook = use_emulator(tcia_emulator, "nbia")
    dag_run = run_example(load_example("tcia_nbia_search").dag, run_conf={"output_root": f"file://{tmp_path}"})

    assert set(states(dag_run).values()) == {"success"}
    asked = tcia_emulator.requests()  # (the run's, before the checks below ask again)
    values = xcoms(dag_run)
    expected = hook.get_simple_search(
        SimpleSearch(collections="TCGA-GBM", modalities=["MR", "CT"], date_range=("2010-01-01", "2015-12-31"))
    )
    assert values[("search", -1)]["rows"] == len(expected) and values[("search", -1)]["format"] == "jsonl"
    series = hook.get_series(collection="TCGA-GBM", patient_id="TCGA-08-0244")
    report = values[("report", -1)]
    assert report["series_per_patient"] == {
        p: sum(1 for r in expected if r["PatientID"] == p) for p in {r["PatientID"] for r in expected}
    }
    assert report["metadata_rows"] == len(series) and report["metadata_modalities"] == ["MR"]

    pages = [dict(r["form"])["start"] for r in asked if r["endpoint"] == "getSimpleSearch"]
    patients = len(report["series_per_patient"])
    assert pages == [str(s) for s in range(0, patients, 2)]
    chunks = [dict(r["form"])["list"].count(",") + 1 for r in asked if r["endpoint"] == "getSeriesMetadata"]
    assert sum(chunks) == len(series) and max(chunks) <= 2


def test_nbia_search_example_on_a_legacy_connection(airflow_db, tcia_emulator, use_emulator, tmp_path):
    use_emulator(tcia_emulator, "legacy")
    dag_run = run_example(
        load_example("tcia_nbia_search").dag, run_conf={"output_root": f"file://{tmp_path}"}, expect="failed"
    )
    assert states(dag_run)[("search", -1)] == "failed" and states(dag_run)[("metadata", -1)] == "failed"
    assert not any(r["endpoint"] in ("getSimpleSearch", "getSeriesMetadata") for r in tcia_emulator.requests())
