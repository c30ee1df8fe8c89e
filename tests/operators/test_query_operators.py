"""The query operators against the bundled TCIA emulator over real sockets, on both APIs.

The example DAGs run with ``dag.test()`` (every query operator, XCom, every output format, dynamic mapping, a
templated date), on ``file://`` and on S3 (moto's server through Airflow's amazon provider and s3fs); faults
injected in the emulator check that a broken answer never leaves a partial object; bad templated input fails
the task before anything is sent or written.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_tcia.compat import AirflowFailException, ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaCorruptPayloadError
from airflow_provider_tcia.operators import TciaGetSeriesOperator, TciaNewPatientsInCollectionOperator
from airflow_provider_tcia.storage import PARTIAL_MARK
from tests.airflow_compat import AIRFLOW_VERSION
from tests.dags import files_under, load_dag, states, xcoms

pytestmark = pytest.mark.integration

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


# --- the example DAGs with dag.test() ------------------------------------------------------------------
@pytest.mark.tcia_emulator(api_key=KEY)
@pytest.mark.parametrize("api", APIS)
def test_query_examples_dag(airflow_db, tcia_emulator, use_emulator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    dag_run = load_dag("tcia_query_examples").test(run_conf={"output_root": f"file://{tmp_path}"})

    assert dag_run.state == "success", states(dag_run)
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


def test_query_examples_dag_to_s3(airflow_db, tcia_emulator, use_emulator, s3_bucket):
    hook = use_emulator(tcia_emulator, "legacy")
    dag_run = load_dag("tcia_query_examples").test(run_conf={"output_root": s3_bucket})

    assert dag_run.state == "success", states(dag_run)
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
def test_new_data_dag_finds_what_was_published(airflow_db, tcia_emulator, use_emulator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    published = [
        tcia_emulator.publish("TCGA-BRCA", patient_id=f"TCGA-NEW-{i}", series_count=2, modality="MR") for i in range(2)
    ]
    dag_run = load_dag("tcia_query_new_data").test(run_conf={"output_root": f"file://{tmp_path}"})

    assert dag_run.state == "success", states(dag_run)
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


def test_new_data_dag_with_nothing_new(airflow_db, tcia_emulator, use_emulator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    dag_run = load_dag("tcia_query_new_data").test(run_conf={"output_root": f"file://{tmp_path}"})

    assert dag_run.state == "success", states(dag_run)
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
def test_bad_templated_input_fails_and_writes_nothing(
    airflow_db, tcia_emulator, use_emulator, tmp_path, capfd, caplog, conf, message
):
    use_emulator(tcia_emulator, "legacy")
    dag_run = load_dag("tcia_query_new_data").test(run_conf={"output_root": f"file://{tmp_path}", **conf})
    logged = "".join(capfd.readouterr()) + caplog.text  # the console on Airflow 3, stdlib logging on 2.11

    assert dag_run.state == "failed"
    assert states(dag_run)[("new_studies", -1)] == "failed"
    assert states(dag_run)[("new_patients", -1)] == "failed"
    # The task log says why. (Airflow 3.0's dag.test() does not always print a failed task's log to the console.)
    if AIRFLOW_VERSION[:2] != (3, 0):
        assert f"AirflowFailException: TciaBadRequestError: {message}" in logged
    assert files_under(tmp_path) == [] and list(tmp_path.iterdir()) == []
    assert not [r for r in tcia_emulator.requests() if r["endpoint"].startswith("New")]


# --- one operator at a time: faults and guards -----------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_body_cut_off_midway_is_started_over(tcia_emulator, use_emulator, run_operator, tmp_path, api, fmt):
    hook = use_emulator(tcia_emulator, api)
    expected = hook.query("getSeries", collection="TCGA-BRCA", format="json" if fmt == "jsonl" else fmt)
    tcia_emulator.clear_requests()
    tcia_emulator.inject_fault("getSeries", "reset", count=1, after_bytes=1000)

    target = tmp_path / f"series.{fmt}"
    summary = run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", output_path=str(target)))

    if fmt == "jsonl":
        assert read_rows(ObjectStoragePath(f"file://{target}"), "jsonl") == expected
        assert summary["rows"] == len(expected)
    else:
        assert target.read_text() == expected
    faults = [r["fault"] for r in tcia_emulator.requests() if r["endpoint"] == "getSeries"]
    assert len(faults) == 2 and faults[0] == "reset" and not faults[1]
    assert files_under(tmp_path) == [target.name]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("kind", "error"), [("html_error", TciaCorruptPayloadError), ("truncate", Exception)])
def test_a_broken_answer_leaves_nothing_at_output_path(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, kind, error
):
    use_emulator(tcia_emulator, api, max_retries=1)
    tcia_emulator.inject_fault("getSeries", kind, count=5, after_bytes=700)
    with pytest.raises(error):
        run_operator(
            TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", output_path=f"{tmp_path}/out/series.json")
        )
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("api", APIS)
def test_transient_server_errors_are_retried(tcia_emulator, use_emulator, run_operator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    tcia_emulator.inject_fault("getSeries", "server_error", count=2, status=503)
    summary = run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM", output_path=f"{tmp_path}/s.json"))
    assert summary["rows"] == len(hook.get_series(collection="TCGA-GBM")) > 0


@pytest.mark.parametrize("api", APIS)
def test_the_xcom_guard_with_real_rows(tcia_emulator, use_emulator, run_operator, api):
    use_emulator(tcia_emulator, api)
    with pytest.raises(AirflowFailException, match="set output_path"):
        run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", max_xcom_bytes=2000))
    assert run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", max_xcom_bytes=10_000_000))


def test_bad_input_sends_nothing(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "legacy")
    tcia_emulator.clear_requests()
    op = TciaNewPatientsInCollectionOperator(
        task_id="n", collection="TCGA-BRCA", date="2024-02-30", output_path=f"{tmp_path}/new.json"
    )
    with pytest.raises(AirflowFailException, match="date='2024-02-30' is not a date"):
        run_operator(op)
    assert tcia_emulator.requests() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tcia_emulator(api_key=KEY)
def test_a_refused_key_is_not_repeated_anywhere(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "legacy", max_retries=0)
    with tcia_emulator.with_api_key("another-key-123456"), pytest.raises(Exception) as caught:
        run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", output_path=f"{tmp_path}/s.csv"))
    assert "401" in str(caught.value) and KEY not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("api", ["legacy", "nbia"])
@pytest.mark.parametrize("store", ["file", "s3"])
def test_series_to_parquet_on_any_object_storage(
    tcia_emulator, use_emulator, run_operator, tmp_path, request, api, store
):
    """getSeries through the emulator to a .parquet file (file:// and S3): the rows the hook returns, typed."""
    import pyarrow.parquet as pq

    hook = use_emulator(tcia_emulator, api)
    root = request.getfixturevalue("s3_bucket") if store == "s3" else f"file://{tmp_path}"
    summary = run_operator(
        TciaGetSeriesOperator(task_id="s", collection="TCGA-BRCA", output_path=f"{root}/series.parquet")
    )
    expected = hook.get_series(collection="TCGA-BRCA")
    assert summary["format"] == "parquet" and summary["rows"] == len(expected) > 0
    target = ObjectStoragePath(summary["path"])
    with target.open("rb") as fh:
        table = pq.read_table(fh)
    assert target.stat().st_size == summary["bytes"]
    assert table.column("SeriesInstanceUID").to_pylist() == [r["SeriesInstanceUID"] for r in expected]
    assert table.column("ImageCount").to_pylist() == [r.get("ImageCount") for r in expected]
    assert str(table.schema.field("ImageCount").type) == "int64"


# --- no rows from a collection the server does not have ---------------------------------------------------
def endpoints_asked(emulator) -> list[str]:
    return [r["endpoint"] for r in emulator.requests()]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("output", [None, "series.jsonl", "series.csv"])
def test_no_rows_from_an_unknown_collection_is_a_warning_naming_the_closest(
    tcia_emulator, use_emulator, run_operator, tmp_path, capfd, caplog, api, output
):
    """TCIA answers getSeries on a collection it does not have with no rows (status 200): the task still
    succeeds — an empty result can be right — but its log says the collection is not there."""
    use_emulator(tcia_emulator, api)
    tcia_emulator.clear_requests()
    kwargs = {"output_path": f"file://{tmp_path}/{output}"} if output else {}
    result = run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-NOPE", **kwargs))
    logged = "".join(capfd.readouterr()) + caplog.text

    if output is None:
        assert result == []
    else:
        assert result["rows"] == 0 and (tmp_path / output).exists()  # written, and empty
    warning = "getSeries(collection='TCGA-NOPE') returned no rows: collection 'TCGA-NOPE' is not on the server"
    assert warning in logged
    closest = logged.split(warning + " (closest: ")[1].split(")")[0].split(", ")
    assert {"TCGA-BRCA", "TCGA-GBM"} <= set(closest)
    assert endpoints_asked(tcia_emulator) == ["getSeries", "getCollectionValues"]


@pytest.mark.parametrize("api", APIS)
def test_no_rows_from_a_known_collection_is_no_warning(tcia_emulator, use_emulator, run_operator, capfd, caplog, api):
    use_emulator(tcia_emulator, api)
    tcia_emulator.clear_requests()
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    op = TciaNewPatientsInCollectionOperator(task_id="n", collection="TCGA-BRCA", date=tomorrow)
    assert run_operator(op) == []
    logged = "".join(capfd.readouterr()) + caplog.text
    assert "is not on the server" not in logged and "returned no rows" not in logged
    assert endpoints_asked(tcia_emulator) == ["NewPatientsInCollection", "getCollectionValues"]


def test_rows_found_need_no_check(tcia_emulator, use_emulator, run_operator):
    use_emulator(tcia_emulator, "nbia")
    tcia_emulator.clear_requests()
    assert run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM"))
    assert endpoints_asked(tcia_emulator) == ["getSeries"]


def test_a_collection_in_another_case_is_named_as_such(tcia_emulator, use_emulator, run_operator, capfd, caplog):
    use_emulator(tcia_emulator, "legacy")
    assert run_operator(TciaGetSeriesOperator(task_id="s", collection="tcga-gbm")) == []  # the emulator matches exactly
    logged = "".join(capfd.readouterr()) + caplog.text
    assert "it lists 'TCGA-GBM', which differs only in case" in logged


@pytest.mark.parametrize("api", APIS)
def test_a_failed_check_does_not_fail_the_task(tcia_emulator, use_emulator, run_operator, capfd, caplog, api):
    use_emulator(tcia_emulator, api, max_retries=1)
    tcia_emulator.inject_fault("getCollectionValues", "server_error", count=5, status=503)
    tcia_emulator.clear_requests()
    assert run_operator(TciaGetSeriesOperator(task_id="s", collection="TCGA-NOPE")) == []
    logged = "".join(capfd.readouterr()) + caplog.text
    assert "could not check whether collection 'TCGA-NOPE' is on the server" in logged
    assert "is not on the server (" not in logged
    assert [r["status"] for r in tcia_emulator.requests() if r["endpoint"] == "getCollectionValues"] == [503, 503]
