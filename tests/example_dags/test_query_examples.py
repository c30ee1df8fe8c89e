"""The query example DAGs with ``dag.test()`` against the bundled emulator: ``tcia_query_examples`` (every query
operator, XCom, every output format, dynamic mapping) on both APIs, on ``file://`` and on S3 (moto's server
through Airflow's amazon provider and s3fs), and ``tcia_query_new_data`` (a templated date: what was published
since, nothing new, bad templated input failing the task before anything is sent or written, and an error no
retry can fix failing its task on the first try).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.storage import PARTIAL_MARK
from tests.airflow_compat import AIRFLOW_VERSION
from tests.dags import files_under, load_example, run_example, states, xcoms

pytestmark = pytest.mark.integration
EXAMPLES = pytest.mark.example_dag("tcia_query_examples")
NEW_DATA = pytest.mark.example_dag("tcia_query_new_data")

KEY = "emulator-key-5f3c9a7e21"
APIS = ["legacy", "nbia"]
#: Which output of the examples DAG is in which format (the DAG picks it by the path's suffix).
EXAMPLE_OUTPUTS = {
    "body_parts": ("csv", "getBodyPartValues", {"collection": "TCGA-BRCA", "modality": "MR"}),
    "manufacturers": (
        "xml",
        "getManufacturerValues",
        {"collection": "TCGA-BRCA", "modality": "MR", "body_part_examined": "BREAST"},
    ),
    "patients": ("json", "getPatient", {"collection": "TCGA-BRCA"}),
    "studies": ("html", "getPatientStudy", {"collection": "TCGA-BRCA", "patient_id": "TCGA-AR-A1AQ"}),
    "all_series": ("jsonl", "getSeries", {"collection": "TCGA-BRCA"}),
}


def read_rows(path: ObjectStoragePath, fmt: str) -> list[dict]:
    text = path.read_text()
    return json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]


@pytest.mark.tcia_emulator(api_key=KEY)
@pytest.mark.parametrize("api", APIS)
@EXAMPLES
def test_query_examples_dag(airflow_db, tcia_emulator, use_emulator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    dag_run = run_example(load_example("tcia_query_examples").dag, run_conf={"output_root": f"file://{tmp_path}"})

    assert set(states(dag_run).values()) == {"success"}
    values = xcoms(dag_run)

    # Small answers went to XCom as rows, the same as the hook's.
    assert values[("collections", -1)] == hook.get_collection_values()
    assert values[("modalities", -1)] == hook.get_modality_values(collection="TCGA-BRCA")
    assert values[("patients_with_modality", -1)] == hook.patients_by_modality("TCGA-BRCA", "MR")
    assert values[("shared_list", -1)] == hook.get_shared_list("sharedListApiUnitTest")
    # getSeries mapped over three patients, then the size and SOP UIDs of a series picked from them.
    picked = values[("pick_patients", -1)]
    assert len(picked) == 3
    for index, patient in enumerate(picked):
        expected = hook.get_series(collection="TCGA-BRCA", modality="MR", patient_id=patient)
        assert expected and values[("series_per_patient", index)] == expected
    uid = values[("pick_series", -1)]
    assert values[("series_size", -1)] == hook.get_series_size(uid)

    # Listings went to object storage, each in its format, with a true summary.
    for task_id, (fmt, endpoint, params) in EXAMPLE_OUTPUTS.items():
        summary = values[(task_id, -1)]
        path = ObjectStoragePath(summary["path"])
        assert summary["format"] == fmt and path.name.endswith(f".{fmt}")
        assert summary["bytes"] == path.stat().st_size
        rows = hook.query(endpoint, **params)
        assert summary["rows"] == len(rows) > 0
        if fmt in ("json", "jsonl"):
            assert read_rows(path, fmt) == rows
        else:
            assert path.read_text() == hook.query(endpoint, format=fmt, **params)
    sops = values[("sop_uids", -1)]
    assert sops["rows"] == len(hook.get_sop_instance_uids(uid)) == values[("series_size", -1)][0]["ObjectCount"]

    summary = values[("summarise", -1)]
    all_series = hook.get_series(collection="TCGA-BRCA")
    assert summary["series"] == len(all_series)
    assert summary["studies"] == len({row["StudyInstanceUID"] for row in all_series})
    assert summary["images"] == sum(row["ImageCount"] for row in all_series)

    written = files_under(tmp_path)
    assert len(written) == 6 and not any(PARTIAL_MARK in name for name in written)
    assert KEY not in json.dumps(list(values.values()))
    assert all(KEY not in (tmp_path / name).read_text() for name in written)


@EXAMPLES
def test_query_examples_dag_to_s3(airflow_db, tcia_emulator, use_emulator, s3_bucket):
    hook = use_emulator(tcia_emulator, "legacy")
    dag_run = run_example(load_example("tcia_query_examples").dag, run_conf={"output_root": s3_bucket})

    values = xcoms(dag_run)
    for task_id, (fmt, endpoint, params) in EXAMPLE_OUTPUTS.items():
        summary = values[(task_id, -1)]
        assert summary["path"].startswith(f"{s3_bucket}/tcia_query_examples/")
        path = ObjectStoragePath(summary["path"])
        assert summary["bytes"] == path.stat()["size"]
        if fmt in ("json", "jsonl"):
            assert read_rows(path, fmt) == hook.query(endpoint, **params)
        else:
            assert path.read_text() == hook.query(endpoint, format=fmt, **params)
    keys = [str(p) for p in ObjectStoragePath(s3_bucket).rglob("*") if p.is_file()]
    assert len(keys) == 6 and not any(PARTIAL_MARK in key for key in keys)
    assert values[("summarise", -1)]["series"] == values[("all_series", -1)]["rows"] > 0


@pytest.mark.parametrize("api", APIS)
@NEW_DATA
def test_new_data_dag_finds_what_was_published(airflow_db, tcia_emulator, use_emulator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    published = [
        tcia_emulator.publish("TCGA-BRCA", patient_id=f"TCGA-NEW-{i}", series_count=2, modality="MR") for i in range(2)
    ]
    dag_run = run_example(load_example("tcia_query_new_data").dag, run_conf={"output_root": f"file://{tmp_path}"})

    values = xcoms(dag_run)
    assert sorted(row["PatientID"] for row in values[("new_patients", -1)]) == ["TCGA-NEW-0", "TCGA-NEW-1"]
    studies = values[("new_studies", -1)]
    written = read_rows(ObjectStoragePath(studies["path"]), "jsonl")
    assert sorted(row["StudyInstanceUID"] for row in written) == sorted(p["study_instance_uid"] for p in published)
    assert studies["rows"] == 2
    for index, patient in enumerate(sorted(p["patient_id"] for p in published)):
        uids = {row["SeriesInstanceUID"] for row in values[("new_series", index)]}
        assert uids == set(next(p for p in published if p["patient_id"] == patient)["series_instance_uids"])
    assert values[("report", -1)] == {
        "new_patients": 2,
        "new_studies": 2,
        "new_studies_path": studies["path"],
        "series_of_new_patients": 4,
    }
    # The date went out in the API's own format (legacy YYYY-MM-DD, NBIA v4 fromDate MM-DD-YYYY).
    sent = [r for r in tcia_emulator.requests() if r["endpoint"] == "NewPatientsInCollection"]
    names = {name for r in sent for name, _ in r["query"]}
    assert ("Date" if api == "legacy" else "fromDate") in names
    assert hook.new_patients_in_collection("TCGA-BRCA", dt.date(2000, 1, 1))  # the seed data is older


@NEW_DATA
def test_new_data_dag_with_nothing_new(airflow_db, tcia_emulator, use_emulator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    dag_run = run_example(load_example("tcia_query_new_data").dag, run_conf={"output_root": f"file://{tmp_path}"})

    values = xcoms(dag_run)
    assert values[("new_patients", -1)] == []
    assert values[("report", -1)]["new_patients"] == values[("report", -1)]["series_of_new_patients"] == 0
    assert values[("new_studies", -1)]["rows"] == 0


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"since": "last tuesday"}, "date='last tuesday' is not a date"),
        ({"collection": ""}, "NewStudiesInPatientCollection: collection is empty"),
    ],
)
@NEW_DATA
def test_bad_templated_input_fails_and_writes_nothing(
    airflow_db, tcia_emulator, use_emulator, tmp_path, capfd, caplog, conf, message
):
    use_emulator(tcia_emulator, "legacy")
    dag = load_example("tcia_query_new_data").dag
    dag_run = run_example(dag, expect="failed", run_conf={"output_root": f"file://{tmp_path}", **conf})
    logged = "".join(capfd.readouterr()) + caplog.text  # the console on Airflow 3, stdlib logging on 2.11

    assert states(dag_run)[("new_studies", -1)] == "failed"
    assert states(dag_run)[("new_patients", -1)] == "failed"
    # The task log says why. (Airflow 3.0's dag.test() does not always print a failed task's log to the console.)
    if AIRFLOW_VERSION[:2] != (3, 0):
        assert f"AirflowFailException: TciaBadRequestError: {message}" in logged
    assert files_under(tmp_path) == [] and list(tmp_path.iterdir()) == []
    assert not [r for r in tcia_emulator.requests() if r["endpoint"].startswith("New")]


@pytest.mark.tcia_emulator(api_key=KEY)
@pytest.mark.parametrize(
    "connection",
    [
        pytest.param(lambda emulator: emulator.connection_json(api="legacy", api_key="not-the-key"), id="wrong-key"),
        pytest.param(
            lambda emulator: json.dumps({**json.loads(emulator.connection_json(api="nbia")), "extra": {"api": "nbai"}}),
            id="typo-in-the-connection",
        ),
    ],
)
@NEW_DATA
def test_a_task_that_no_retry_can_fix_fails_on_its_first_try(airflow_db, tcia_emulator, monkeypatch, connection):
    """Its query tasks given retries=2, an error no retry can fix (``task_errors.fail_fast``) fails each of them
    after one try."""
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", connection(tcia_emulator))
    dag = load_example("tcia_query_new_data").dag
    for task_id in ("new_patients", "new_studies"):
        task = dag.get_task(task_id)
        task.retries, task.retry_delay = 2, dt.timedelta(0)
    run = run_example(dag, expect="failed", run_conf={"output_root": f"file://{airflow_db}/fail-fast"})
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    for task_id in ("new_patients", "new_studies"):
        assert str(tis[task_id].state) == "failed"
        assert tis[task_id].try_number == 1  # not up_for_retry: its retries were not used
