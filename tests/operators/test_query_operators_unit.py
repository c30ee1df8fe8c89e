"""The query operators without a server: declarations, validation, XCom guard, output, restarts (HTTP mocked)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowException
from requests_mock import ANY

from airflow_provider_tcia.api.endpoints import QUERY_ENDPOINTS
from airflow_provider_tcia.compat import AirflowFailException, ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaIncompleteResponseError, TciaNotFoundError
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.operators import (
    QUERY_OPERATORS,
    TciaGetCollectionValuesOperator,
    TciaGetSeriesOperator,
    TciaGetSeriesSizeOperator,
    TciaNewPatientsInCollectionOperator,
    TciaNewStudiesInPatientCollectionOperator,
    TciaPatientsByModalityOperator,
    TciaQueryOperator,
)
from airflow_provider_tcia.storage import PARTIAL_MARK
from tests.airflow_compat import ExecutorSafeguard

KEY = "op-secret-key-987654321"
ROOT = "http://tcia.test"
LEGACY = f"{ROOT}/services/v2/TCIA/query"
SERIES = [
    {"SeriesInstanceUID": f"1.2.840.{i}", "Collection": "TCGA-GBM", "PatientID": f"TCGA-08-{i:04d}", "ImageCount": i}
    for i in range(1, 6)
]


@pytest.fixture(autouse=True)
def legacy_connection(monkeypatch):
    conn = {"conn_type": "tcia", "host": ROOT, "password": KEY, "extra": {"api": "legacy", "retry_backoff": 0.01}}
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", json.dumps(conn))
    monkeypatch.setattr(ExecutorSafeguard, "test_mode", True)


@pytest.fixture
def slept(monkeypatch):
    calls: list[float] = []
    monkeypatch.setattr("airflow_provider_tcia.api.retry.time.sleep", calls.append)
    monkeypatch.setattr("airflow_provider_tcia.hooks.tcia.time.sleep", calls.append)
    return calls


def run(op: TciaQueryOperator):
    return op.execute(context={})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# --- declarations ----------------------------------------------------------------------------------
def test_one_operator_per_query_endpoint():
    assert sorted(QUERY_OPERATORS) == sorted(ep.name for ep in QUERY_ENDPOINTS)
    for ep in QUERY_ENDPOINTS:
        op = QUERY_OPERATORS[ep.name]
        if ep.own_signature:
            continue  # (getSeriesMetadata, getSimpleSearch: tests/operators/test_paged_operators.py)
        names = [p.name for p in ep.params]
        assert op.endpoint == ep.name
        assert list(op.template_fields) == [*names, "tcia_conn_id", "output_path", "output_format"]
        signature = inspect.signature(op.__init__)
        assert [n for n in signature.parameters if n not in ("self", "kwargs")] == names
        assert all(signature.parameters[n].default is None for n in names)
        assert "execute" not in vars(op), "execute() is written once, on the base class"
        assert all(f":param {n}:" in op.__doc__ for n in names)


def test_parameters_are_kept_verbatim_until_execute():
    with DAG("tcia_unit_verbatim", schedule=None):
        op = TciaNewPatientsInCollectionOperator(
            task_id="new", collection="{{ params.collection }}", date="{{ data_interval_start }}", retries=3
        )
    assert (op.collection, op.date, op.retries) == ("{{ params.collection }}", "{{ data_interval_start }}", 3)


def test_unknown_keyword_arguments_are_rejected():
    # TypeError on Airflow 3, AirflowException on 2.11.
    unknown = (TypeError, AirflowException)
    with pytest.raises(unknown, match=r"(?s)Invalid arguments were passed to TciaGetSeriesOperator.*colection"):
        TciaGetSeriesOperator(task_id="s", colection="TCGA-GBM")
    with pytest.raises(TypeError, match="always queries getSeries"):
        TciaGetSeriesOperator(task_id="s", parameters={"collection": "TCGA-GBM"})
    with pytest.raises(TypeError, match="needs endpoint="):
        TciaQueryOperator(task_id="q")
    with pytest.raises(ValueError, match="unknown TCIA endpoint 'getSerie'"):
        TciaQueryOperator(task_id="q", endpoint="getSerie")
    with pytest.raises(TypeError, match="getImage is a download"):
        TciaQueryOperator(task_id="q", endpoint="getImage")
    with pytest.raises(ValueError, match="max_xcom_bytes must be a positive number"):
        TciaGetSeriesOperator(task_id="s", max_xcom_bytes=0)


def test_mapping_validates_the_endpoint_parameters():
    with DAG("tcia_unit_mapping", schedule=None):
        mapped = TciaGetSeriesOperator.partial(task_id="m", collection="TCGA-GBM").expand(
            patient_id=["TCGA-08-0001", "TCGA-08-0002"]
        )
        assert mapped.partial_kwargs["collection"] == "TCGA-GBM"
        with pytest.raises(TypeError, match=r"partial\(\) got an unexpected keyword argument 'patient'"):
            TciaGetSeriesOperator.partial(task_id="m2", patient="x").expand(collection=["a"])


def test_a_new_endpoint_operator_is_one_line():
    class MySeries(TciaQueryOperator):
        endpoint = "get_series"  # any spelling the table knows

    assert MySeries.endpoint == "getSeries"
    assert "collection" in MySeries.template_fields
    with pytest.raises(TypeError, match="is a download"):

        class Bad(TciaQueryOperator):
            endpoint = "getImage"


# --- to XCom ---------------------------------------------------------------------------------------
def test_rows_go_to_xcom_by_default(requests_mock):
    requests_mock.get(f"{LEGACY}/getSeries", json=SERIES)
    rows = run(TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM", modality="MR"))
    assert rows == SERIES
    sent = requests_mock.last_request
    assert sent.qs == {"collection": ["tcga-gbm"], "modality": ["mr"], "format": ["json"]}
    assert KEY not in json.dumps(rows)


def test_the_base_operator_serves_any_endpoint(requests_mock):
    requests_mock.get(f"{LEGACY}/PatientsByModality", json=[{"PatientID": "P1"}])
    op = TciaQueryOperator(
        task_id="q", endpoint="getPatientByCollectionAndModality", parameters={"collection": "C", "modality": "MR"}
    )
    assert run(op) == [{"PatientID": "P1"}]


def test_the_xcom_guard_refuses_a_large_result_and_names_output_path(requests_mock):
    requests_mock.get(f"{LEGACY}/getSeries", json=SERIES)
    op = TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM", max_xcom_bytes=300)
    with pytest.raises(AirflowFailException, match=r"more than 300 bytes of JSON.*max_xcom_bytes=300.*set output_path"):
        run(op)


def test_without_xcom_push_the_rows_are_read_but_not_returned(requests_mock):
    requests_mock.get(f"{LEGACY}/getSeries", json=SERIES)
    op = TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM", max_xcom_bytes=10, do_xcom_push=False)
    assert run(op) is None
    assert requests_mock.call_count == 1


# --- to object storage -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_text_formats_are_what_the_api_returned(requests_mock, tmp_path, fmt):
    body = {
        "csv": '"SeriesInstanceUID","Modality"\n"1.2","MR"\n"1.3","CT"\n',
        "xml": "<Results><Row><SeriesInstanceUID>1.2</SeriesInstanceUID></Row><Row><SeriesInstanceUID>1.3"
        "</SeriesInstanceUID></Row></Results>",
        "html": "<P><TABLE><TR><TH>SeriesInstanceUID</TH></TR><TR><TD>1.2</TD></TR><TR><TD>1.3</TD></TR></TABLE></P>",
    }[fmt]
    requests_mock.get(f"{LEGACY}/getSeries", text=body)
    target = tmp_path / "out" / f"series.{fmt}"
    summary = run(TciaGetSeriesOperator(task_id="s", collection="TCGA-GBM", output_path=f"file://{target}"))
    assert requests_mock.last_request.qs["format"] == [fmt]
    assert target.read_text() == body
    assert summary == {"path": f"file://{target}", "format": fmt, "rows": 2, "bytes": len(body.encode())}
    assert leftovers(tmp_path / "out") == [f"series.{fmt}"]


@pytest.mark.parametrize(("suffix", "fmt"), [("json", "json"), ("jsonl", "jsonl"), ("data", "jsonl")])
def test_json_formats_are_written_from_the_rows(requests_mock, tmp_path, suffix, fmt):
    requests_mock.get(f"{LEGACY}/getSeries", json=SERIES)
    target = tmp_path / f"series.{suffix}"
    op = TciaGetSeriesOperator(
        task_id="s", collection="TCGA-GBM", output_path=str(target), output_format=None if suffix != "data" else fmt
    )
    summary = run(op)
    text = target.read_text()
    assert (json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]) == SERIES
    assert summary == {"path": f"file://{target}", "format": fmt, "rows": 5, "bytes": len(text.encode())}


def test_output_path_may_be_an_object_storage_path(requests_mock, tmp_path):
    requests_mock.get(f"{LEGACY}/getCollectionValues", json=[{"Collection": "TCGA-GBM"}])
    target = ObjectStoragePath(f"file://{tmp_path}/c.json")
    assert run(TciaGetCollectionValuesOperator(task_id="c", output_path=target))["rows"] == 1
    assert json.loads(target.read_text()) == [{"Collection": "TCGA-GBM"}]


def test_an_existing_object_is_replaced_whole(requests_mock, tmp_path):
    requests_mock.get(f"{LEGACY}/getSeries", json=SERIES[:1])
    target = tmp_path / "series.json"
    target.write_text("old")
    run(TciaGetSeriesOperator(task_id="s", output_path=str(target)))
    assert json.loads(target.read_text()) == SERIES[:1]


def test_a_failed_request_leaves_nothing_at_the_destination(requests_mock, tmp_path):
    requests_mock.get(f"{LEGACY}/getSeries", status_code=404, text="no such thing")
    folder = tmp_path / "never"
    with pytest.raises(AirflowFailException, match=r"^TciaNotFoundError: ") as caught:  # no retry can fix it
        run(TciaGetSeriesOperator(task_id="s", collection="C", output_path=f"{folder}/series.csv"))
    assert isinstance(caught.value.__cause__, TciaNotFoundError)
    assert leftovers(tmp_path) == []  # not even the folder: nothing is created before the server answers
    assert KEY not in str(caught.value)


def test_a_body_cut_off_midway_is_started_over(monkeypatch, tmp_path, slept):
    calls = []

    def flaky_rows(self, endpoint, **params):
        calls.append(params)
        yield SERIES[0]
        if len(calls) < 3:
            raise TciaIncompleteResponseError("getSeries(): the connection broke while reading the body")
        yield from SERIES[1:]

    monkeypatch.setattr(TciaHook, "iter_rows", flaky_rows)
    target = tmp_path / "series.jsonl"
    summary = run(TciaGetSeriesOperator(task_id="s", collection="C", output_path=str(target)))
    assert summary["rows"] == 5 and len(calls) == 3 and len(slept) == 2 and all(s > 0 for s in slept)
    assert [json.loads(line) for line in target.read_text().splitlines()] == SERIES
    assert leftovers(tmp_path) == ["series.jsonl"]


def test_restarts_are_bounded_and_leave_nothing(monkeypatch, tmp_path, slept):
    def broken_rows(self, endpoint, **params):
        yield SERIES[0]
        raise TciaIncompleteResponseError("getSeries(): the connection broke while reading the body")

    monkeypatch.setattr(TciaHook, "iter_rows", broken_rows)
    monkeypatch.setenv(
        "AIRFLOW_CONN_TCIA_DEFAULT",
        json.dumps({"conn_type": "tcia", "host": ROOT, "extra": {"max_retries": 2, "retry_backoff": 0.01}}),
    )
    with pytest.raises(TciaIncompleteResponseError):
        run(TciaGetSeriesOperator(task_id="s", output_path=f"{tmp_path}/series.json"))
    assert len(slept) == 2
    assert leftovers(tmp_path) == []
    assert not any(PARTIAL_MARK in name for name in leftovers(tmp_path))


# --- bad input: a clear failure, nothing sent, nothing written ---------------------------------------
BAD_INPUT = [
    (TciaGetSeriesOperator, {"collection": ""}, r"getSeries: collection is empty"),
    # A UID is checked as one everywhere: a PatientID where a SeriesInstanceUID belongs is not sent.
    (TciaGetSeriesSizeOperator, {"series_instance_uid": "TCGA-08-0244"}, r"'TCGA-08-0244' is not a DICOM UID"),
    (TciaGetSeriesOperator, {"study_instance_uid": "1.2.x"}, r"getSeries: study_instance_uid='1.2.x' is not a DICOM"),
    (TciaGetSeriesOperator, {"collection": "   "}, r"getSeries: collection is empty"),
    (TciaPatientsByModalityOperator, {"collection": "C"}, r"PatientsByModality needs modality"),
    (
        TciaNewPatientsInCollectionOperator,
        {"collection": "C", "date": "not-a-date"},
        r"date='not-a-date' is not a date",
    ),
    (
        TciaNewPatientsInCollectionOperator,
        {"collection": "C", "date": "2024-13-45"},
        r"date='2024-13-45' is not a date",
    ),
    (TciaNewPatientsInCollectionOperator, {"collection": "", "date": "2024-01-01"}, r"collection is empty"),
    (TciaGetSeriesOperator, {"collection": ["A", "B"]}, r"collection must be a string, not list.*expand\(collection="),
    (TciaGetSeriesOperator, {"output_format": "avro"}, r"output_format='avro' is not one of"),
    (TciaGetSeriesOperator, {"output_path": "OUT/series.txt"}, r"its suffix '\.txt' names no format"),
    (TciaGetSeriesOperator, {"output_path": "OUT/series"}, r"it has no suffix"),
    (
        TciaGetSeriesOperator,
        {"output_format": "xml", "output_path": "OUT/s.csv"},
        r"does not match output_path's suffix",
    ),
    (TciaGetSeriesOperator, {"output_path": ""}, r"output_path rendered to an empty string"),
    (TciaGetSeriesOperator, {"output_path": "relative/series.json"}, r"is relative"),
    (TciaGetSeriesOperator, {"output_path": "OUT/folder/"}, r"names a folder"),
    (TciaGetSeriesOperator, {"output_path": 42}, r"output_path must be a URL or an ObjectStoragePath"),
    (TciaGetSeriesOperator, {"output_path": "nosuchfs://bucket/x.json"}, r"unsupported filesystem 'nosuchfs'"),
    (TciaGetSeriesOperator, {"output_format": "csv", "output_path": None}, r"output_format='csv' needs output_path"),
    (TciaGetSeriesOperator, {"tcia_conn_id": ""}, r"tcia_conn_id must name a connection"),
]


@pytest.mark.parametrize(("operator", "kwargs", "message"), BAD_INPUT)
def test_bad_input_fails_before_anything_is_sent_or_written(requests_mock, tmp_path, operator, kwargs, message):
    requests_mock.get(ANY, json=[])
    kwargs = {k: v.replace("OUT", str(tmp_path)) if isinstance(v, str) else v for k, v in kwargs.items()}
    kwargs.setdefault("output_path", f"{tmp_path}/result.json")
    op = operator(task_id="bad", **kwargs)
    with pytest.raises(AirflowFailException, match=message):
        run(op)
    assert requests_mock.call_count == 0
    assert leftovers(tmp_path) == []


def test_query_parameters_must_be_a_mapping():
    op = TciaQueryOperator(task_id="q", endpoint="getSeries", parameters=["collection"])
    with pytest.raises(AirflowFailException, match="parameters must be a mapping"):
        run(op)
    op = TciaQueryOperator(task_id="q", endpoint="getSeries", parameters={"colection": "C"})
    with pytest.raises(AirflowFailException, match="getSeries has no parameter 'colection'"):
        run(op)


@pytest.mark.parametrize(
    "date",
    ["2024-03-01T00:00:00+00:00", "2024-03-01", dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 5, tzinfo=dt.UTC)],
)
def test_a_rendered_date_is_sent_in_the_api_format(requests_mock, date):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    requests_mock.get(f"{LEGACY}/getCollectionValues", json=[{"Collection": "TCGA-GBM"}])
    op = TciaNewStudiesInPatientCollectionOperator(task_id="n", collection="TCGA-GBM", date=date, patient_id=1234)
    assert run(op) == []
    # No rows: the operator also asked whether TCGA-GBM is on the server (it is).
    assert [r.path.rsplit("/", 1)[-1] for r in requests_mock.request_history] == [
        "newstudiesinpatientcollection",
        "getcollectionvalues",
    ]
    assert requests_mock.request_history[0].qs == {
        "collection": ["tcga-gbm"],
        "date": ["2024-03-01"],
        "patientid": ["1234"],
        "format": ["json"],
    }
