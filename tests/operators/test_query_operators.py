"""The query operators against the bundled TCIA emulator over real sockets, on both APIs.

Faults injected in the emulator check that a broken answer never leaves a partial object; bad input fails
the task before anything is sent or written. (The query example DAGs, which use every query operator, run in
``tests/example_dags/test_query_examples.py``.)
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_provider_tcia.compat import AirflowFailException, ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaCorruptPayloadError
from airflow_provider_tcia.operators import TciaGetSeriesOperator, TciaNewPatientsInCollectionOperator
from tests.dags import files_under

pytestmark = pytest.mark.integration

KEY = "emulator-key-5f3c9a7e21"
APIS = ["legacy", "nbia"]


def read_rows(path: ObjectStoragePath, fmt: str) -> list[dict]:
    text = path.read_text()
    return json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]


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
