"""TciaGetSeriesMetadataOperator and TciaGetSimpleSearchOperator against the emulator: XCom and every output
format, chunks and pages, errors before anything is sent, the legacy refusal."""

from __future__ import annotations

import csv
import io
import json

import pytest

from airflow_provider_tcia.api.endpoints import SERIES_METADATA_ATTRS
from airflow_provider_tcia.api.simple_search import COLUMNS
from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.operators import TciaGetSeriesMetadataOperator, TciaGetSimpleSearchOperator
from tests.dags import files_under

pytestmark = pytest.mark.integration

GBM_SERIES = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
BRCA_SERIES = "1.3.6.1.4.1.14519.5.2.1.3344.4002.142000486987125226950494153345"
LIDC_DX = "1.3.6.1.4.1.14519.5.2.1.6279.6001.141365756818074696859567662357"
FORMATS = ["json", "jsonl", "csv", "xml", "html", "parquet"]


@pytest.fixture
def emulator(tcia_emulator_session, use_emulator):
    tcia_emulator_session.reset()
    tcia_emulator_session.clear_requests()
    use_emulator(tcia_emulator_session, "nbia")
    return tcia_emulator_session


def posts(emulator, endpoint: str) -> list[dict[str, str]]:
    return [dict(r["form"]) for r in emulator.requests() if r["endpoint"] == endpoint]


def read(path, fmt: str) -> list[dict]:
    """The rows of a written file, whatever its format."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(str(path)).to_pylist()
    text = path.read_text()
    if fmt == "json":
        return json.loads(text)
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [{"text": text}]


# --- getSeriesMetadata ----------------------------------------------------------------------------------------
def test_series_metadata_to_xcom_in_chunks(emulator, run_operator):
    op = TciaGetSeriesMetadataOperator(
        task_id="m", series_instance_uids=[GBM_SERIES, BRCA_SERIES, LIDC_DX], chunk_size=2
    )
    rows = run_operator(op)
    assert [r["SeriesInstanceUID"] for r in rows] == [GBM_SERIES, BRCA_SERIES, LIDC_DX]
    assert [p["list"] for p in posts(emulator, "getSeriesMetadata")] == [f"{GBM_SERIES},{BRCA_SERIES}", LIDC_DX]


def test_series_metadata_takes_get_series_rows_and_a_string(emulator, run_operator):
    rows = [{"SeriesInstanceUID": GBM_SERIES, "Modality": "MR"}, {"SeriesInstanceUID": BRCA_SERIES}]
    assert len(run_operator(TciaGetSeriesMetadataOperator(task_id="m", series_instance_uids=rows))) == 2
    text = f"{GBM_SERIES}, {BRCA_SERIES}\n{LIDC_DX}"
    assert len(run_operator(TciaGetSeriesMetadataOperator(task_id="m", series_instance_uids=text))) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_series_metadata_to_storage_in_every_format(emulator, run_operator, tmp_path, fmt):
    target = tmp_path / f"metadata.{fmt}"
    op = TciaGetSeriesMetadataOperator(
        task_id="m", series_instance_uids=[GBM_SERIES, BRCA_SERIES], chunk_size=1, output_path=str(target)
    )
    summary = run_operator(op)
    assert summary["rows"] == 2 and summary["format"] == fmt and summary["bytes"] == target.stat().st_size
    rows = read(target, fmt)
    if fmt == "csv":
        assert list(rows[0]) == list(SERIES_METADATA_ATTRS)  # one header, though two chunks were asked
    if fmt in ("xml", "html"):
        assert GBM_SERIES in rows[0]["text"] and BRCA_SERIES in rows[0]["text"]
    else:
        assert [r["SeriesInstanceUID"] for r in rows] == [GBM_SERIES, BRCA_SERIES]
    assert len(posts(emulator, "getSeriesMetadata")) == 2


@pytest.mark.parametrize(
    ("given", "match"),
    [
        (None, "needs series_instance_uids"),
        ([], "is empty"),
        ([GBM_SERIES, "TCGA-08-0244"], "is not a DICOM UID"),
        ([{"Modality": "MR"}], "a row without a SeriesInstanceUID"),
    ],
)
def test_series_metadata_bad_input_fails_before_anything_is_sent(emulator, run_operator, tmp_path, given, match):
    op = TciaGetSeriesMetadataOperator(task_id="m", series_instance_uids=given, output_path=f"{tmp_path}/m.csv")
    with pytest.raises(AirflowFailException, match=match):
        run_operator(op)
    assert emulator.requests() == [] and files_under(tmp_path) == []


# --- getSimpleSearch ------------------------------------------------------------------------------------------
def test_simple_search_to_xcom_every_page(emulator, run_operator):
    op = TciaGetSimpleSearchOperator(task_id="s", collections=["TCGA-GBM", "TCGA-BRCA"], modalities="MR", page_size=2)
    rows = run_operator(op)
    patients = len({r["PatientID"] for r in rows})
    assert patients > 4 and {r["Collection"] for r in rows} == {"TCGA-GBM", "TCGA-BRCA"}
    assert [p["start"] for p in posts(emulator, "getSimpleSearch")] == [str(s) for s in range(0, patients, 2)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_simple_search_to_storage_in_every_format(emulator, run_operator, tmp_path, fmt):
    target = tmp_path / f"search.{fmt}"
    op = TciaGetSimpleSearchOperator(
        task_id="s", collections="TCGA-GBM", date_range=["2010-01-01", "2016-12-31"], output_path=str(target)
    )
    summary = run_operator(op)
    assert summary["rows"] > 0 and summary["format"] == fmt
    rows = read(target, fmt)
    if fmt == "csv":
        assert list(rows[0]) == list(COLUMNS)
    elif fmt == "parquet":
        assert isinstance(rows[0]["SeriesIdentifier"], int) and rows[0]["Collection"] == "TCGA-GBM"
    elif fmt in ("json", "jsonl"):
        assert len(rows) == summary["rows"] and {r["Collection"] for r in rows} == {"TCGA-GBM"}
    else:
        assert "TCGA-GBM" in rows[0]["text"]


def test_simple_search_templated_criteria(emulator, run_operator):
    op = TciaGetSimpleSearchOperator(
        task_id="s",
        collections="{{ params.collection }}",
        date_range=("{{ params.start }}", "2015-12-31"),  # (release dates)
        patient_age_range=("{{ params.age }}", "70"),
        description="{{ params.words }}",
    )
    op.render_template_fields({"params": {"collection": "TCGA-GBM", "start": "2014-01-01", "age": "60", "words": "t1"}})
    assert {r["PatientID"] for r in run_operator(op)} == {"TCGA-06-6701"}
    form = posts(emulator, "getSimpleSearch")[0]
    assert form["fromDate1"] == "01-01-2014"
    assert (form["criteriaType2"], form["from2"], form["to2"]) == ("PatientAgeRangeCriteria", "60", "70")
    assert (form["criteriaType3"], form["value3"]) == ("DescriptionCriteria", "t1")


def test_simple_search_no_results_is_empty(emulator, run_operator, tmp_path):
    assert run_operator(TciaGetSimpleSearchOperator(task_id="s", collections="NO-SUCH")) == []
    summary = run_operator(
        TciaGetSimpleSearchOperator(task_id="s", collections="NO-SUCH", output_path=f"{tmp_path}/s.jsonl")
    )
    assert summary["rows"] == 0


@pytest.mark.parametrize(
    ("criteria", "match"),
    [
        ({}, "needs at least one criterion"),
        ({"collections": ["TCGA-GBM", ""]}, "holds an empty string"),
        ({"date_range": ("2005-01-01", "2001-01-01")}, "starts after it ends"),
        ({"date_range": ("yesterday", "2001-01-01")}, "is not a date"),
        ({"study_instance_uids": "TCGA-08-0244"}, "is not a DICOM UID"),
        ({"collections": "TCGA-GBM", "min_studies": 0}, "min_studies"),
        ({"collections": "TCGA-GBM", "sort_field": "age"}, "sort_field='age'"),
        ({"modalities": "MR", "all_modalities": True}, "at least two modalities"),
    ],
)
def test_simple_search_bad_criteria_fail_before_anything_is_sent(emulator, run_operator, tmp_path, criteria, match):
    op = TciaGetSimpleSearchOperator(task_id="s", output_path=f"{tmp_path}/s.json", **criteria)
    with pytest.raises(AirflowFailException, match=match):
        run_operator(op)
    assert emulator.requests() == [] and files_under(tmp_path) == []


# --- NBIA only ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "op",
    [
        TciaGetSeriesMetadataOperator(task_id="m", series_instance_uids=[GBM_SERIES]),
        TciaGetSimpleSearchOperator(task_id="s", collections="TCGA-GBM"),
    ],
    ids=["getSeriesMetadata", "getSimpleSearch"],
)
def test_a_legacy_connection_is_refused_before_anything_is_sent(
    tcia_emulator_session, use_emulator, run_operator, tmp_path, op
):
    tcia_emulator_session.clear_requests()
    use_emulator(tcia_emulator_session, "legacy")
    op.output_path = f"{tmp_path}/out.csv"
    with pytest.raises(AirflowFailException, match="served only by NBIA"):
        run_operator(op)
    assert tcia_emulator_session.requests() == [] and files_under(tmp_path) == []


def test_bad_arguments_fail_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="chunk_size"):
        TciaGetSeriesMetadataOperator(task_id="m", series_instance_uids=[GBM_SERIES], chunk_size=0)
    with pytest.raises(TciaBadRequestError, match="page_size"):
        TciaGetSimpleSearchOperator(task_id="s", collections="TCGA-GBM", page_size=0)
