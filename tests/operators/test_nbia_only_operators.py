"""The operators (and hook methods) of NBIA's v4-only endpoints against the emulator over real sockets: every
output format, a missing or unknown parameter, no results, the refusal on a legacy connection with nothing
sent, and the counts a legacy connection computes from the seed's endpoints."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET

import pytest

from airflow_provider_tcia import operators
from airflow_provider_tcia.api.endpoints import ENDPOINTS
from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.operators.query import QUERY_OPERATORS
from tests.dags import files_under

pytestmark = pytest.mark.integration

GBM_SERIES = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
GBM_SOP = "1.3.6.1.4.1.14519.5.2.1.7695.4001.254637948180506182312529390348"
GBM_DOI = "https://doi.org/10.7937/K9/TCIA.2016.RNYFUYE9"
#: Each new endpoint: parameters that find rows, and parameters that find none (None: it has no such answer).
CASES: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {
    "getUpdatedSeries": ({"date": "2015-01-01"}, {"date": "2099-01-01"}),
    "getCollectionDescriptions": ({"collection": "TCGA-GBM"}, {"collection": "NOPE"}),
    "getCollectionValuesAndCounts": ({}, None),
    "getModalityValuesAndCounts": ({"collection": "TCGA-GBM"}, {"collection": "NOPE"}),
    "getBodyPartValuesAndCounts": ({"collection": "TCGA-GBM", "modality": "MR"}, {"collection": "NOPE"}),
    "getManufacturerValuesAndCounts": ({"collection": "TCGA-GBM"}, {"collection": "TCGA-GBM", "modality": "XA"}),
    "getSpeciesValuesAndCounts": ({}, None),
    "getDicomTags": ({"series_instance_uid": GBM_SERIES}, None),
    "getMD5Hierarchy": ({"series_instance_uid": GBM_SERIES}, {"collection": "NOPE"}),
    "getMD5HashForImage": ({"sop_instance_uid": GBM_SOP}, {"sop_instance_uid": "1.2.3.4"}),
    "getCollectionOrSeriesForDOI": ({"doi": GBM_DOI, "collection_or_series": "Series"}, {"doi": "10.0/none"}),
}
COMPUTED = sorted(n for n in CASES if ENDPOINTS[n].legacy_from)
REFUSED = sorted(n for n in CASES if not ENDPOINTS[n].legacy_from)


def make(name: str, **kwargs):
    return QUERY_OPERATORS[name](task_id="q", **kwargs)


def test_every_nbia_only_endpoint_of_this_change_is_here():
    assert set(CASES) <= {e.name for e in ENDPOINTS.values() if e.nbia_only}
    for name in CASES:
        assert getattr(operators, QUERY_OPERATORS[name].__name__) is QUERY_OPERATORS[name]
    assert COMPUTED == [
        "getBodyPartValuesAndCounts",
        "getCollectionValuesAndCounts",
        "getManufacturerValuesAndCounts",
        "getModalityValuesAndCounts",
    ]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_format(tcia_emulator_session, use_emulator, run_operator, tmp_path, name):
    """XCom, and json, jsonl, csv, xml, html and parquet at output_path: the same rows each time (NBIA sends
    these as JSON or text only, so csv, xml and html are rendered from the rows)."""
    pyarrow = pytest.importorskip("pyarrow.parquet")
    hook = use_emulator(tcia_emulator_session, "nbia")
    params, _ = CASES[name]
    rows = run_operator(make(name, **params))
    assert rows and rows == hook.query(name, **params)
    for fmt in ("json", "jsonl", "csv", "xml", "html", "parquet"):
        target = tmp_path / f"out.{fmt}"
        summary = run_operator(make(name, output_path=f"file://{target}", **params))
        assert summary["rows"] == len(rows) and summary["format"] == fmt, fmt
        data = target.read_bytes()
        if fmt == "json":
            assert json.loads(data) == rows
        elif fmt == "jsonl":
            assert [json.loads(line) for line in data.splitlines()] == rows
        elif fmt == "csv":
            assert len(list(csv.DictReader(io.StringIO(data.decode())))) == len(rows)
        elif fmt == "xml":
            assert len(ET.fromstring(data).findall("Row")) == len(rows)
        elif fmt == "html":
            assert data.decode().count("<TR>") == len(rows) + 1
        else:
            assert pyarrow.read_table(target).num_rows == len(rows)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if CASES[n][1] is not None])
def test_no_results_are_no_rows(tcia_emulator_session, use_emulator, run_operator, tmp_path, name):
    """NBIA's empty body (or, for two of them, ``[]``) is no rows; nothing is an error."""
    hook = use_emulator(tcia_emulator_session, "nbia")
    _, none = CASES[name]
    assert none is not None
    assert run_operator(make(name, **none)) == []
    target = tmp_path / "out.csv"
    assert run_operator(make(name, output_path=f"file://{target}", **none))["rows"] == 0
    if ENDPOINTS[name].answer == "text":
        assert getattr(hook, ENDPOINTS[name].method)(**none) is None


@pytest.mark.parametrize("api", ["nbia", "legacy"])
@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("getDicomTags", {}, "getDicomTags needs series_instance_uid; nothing was sent"),
        ("getMD5HashForImage", {}, "getMD5HashForImage needs sop_instance_uid; nothing was sent"),
        ("getCollectionOrSeriesForDOI", {}, "getCollectionOrSeriesForDOI needs doi; nothing was sent"),
        ("getMD5Hierarchy", {}, r"exactly one of series_instance_uid, study_instance_uid, patient_id, collection"),
        ("getMD5Hierarchy", {"collection": "A", "patient_id": "B"}, r"\(given: patient_id, collection\)"),
        ("getUpdatedSeries", {"date": "2024-02-30"}, "date='2024-02-30' is not a date"),
    ],
)
def test_a_missing_or_bad_parameter_fails_before_sending(
    tcia_emulator_session, use_emulator, run_operator, api, name, params, message
):
    use_emulator(tcia_emulator_session, api)
    tcia_emulator_session.clear_requests()
    with pytest.raises(AirflowFailException, match=message):
        run_operator(make(name, **params))
    assert tcia_emulator_session.requests() == []


def test_an_unknown_parameter_is_a_type_error_here_and_v4s_400_there(tcia_emulator_session, use_emulator):
    """The hook's methods take only the table's parameters; what v4 answers a stray one is in its text."""
    hook = use_emulator(tcia_emulator_session, "nbia")
    with pytest.raises(TciaBadRequestError, match="getDicomTags has no parameter 'format_'"):
        hook.query("getDicomTags", series_instance_uid=GBM_SERIES, format_="x")
    with pytest.raises(TypeError):
        hook.get_dicom_tags(GBM_SERIES, bogus="1")  # type: ignore[call-arg]
    url = f"{tcia_emulator_session.url}/nbia-api/services/v4/getCollectionDescriptions"
    import requests

    r = requests.get(url, params={"collectionName": "TCGA-GBM", "format": "json"}, timeout=30)
    assert (r.status_code, r.text) == (
        400,
        "Invalid query parameter: 'format'. Allowed parameters are: [collectionName]",
    )


@pytest.mark.parametrize("name", REFUSED)
def test_refused_on_a_legacy_connection_with_nothing_sent(
    tcia_emulator_session, use_emulator, run_operator, tmp_path, name
):
    hook = use_emulator(tcia_emulator_session, "legacy")
    tcia_emulator_session.clear_requests()
    params, _ = CASES[name]
    message = rf"{name} is served only by NBIA.*api=nbia.*nothing was sent"
    with pytest.raises(AirflowFailException, match=message):
        run_operator(make(name, **params))
    with pytest.raises(AirflowFailException, match=message):
        run_operator(make(name, output_path=f"file://{tmp_path}/out.csv", **params))
    with pytest.raises(TciaBadRequestError, match=message):
        getattr(hook, ENDPOINTS[name].method)(**params)
    assert tcia_emulator_session.requests() == []
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("name", COMPUTED)
def test_computed_on_a_legacy_connection_from_the_seeds_endpoints(
    tcia_emulator_session, use_emulator, run_operator, name
):
    """The same values and counts of distinct patients as NBIA's, without Authorized."""
    params, _ = CASES[name]
    nbia = use_emulator(tcia_emulator_session, "nbia").query(name, **params)
    legacy = use_emulator(tcia_emulator_session, "legacy")
    tcia_emulator_session.clear_requests()
    rows = run_operator(make(name, **params))
    assert rows == [{k: v for k, v in row.items() if k != "Authorized"} for row in nbia]
    asked = {(r["path"].rsplit("/", 1)[-1]) for r in tcia_emulator_session.requests()}
    assert asked == set(ENDPOINTS[name].legacy_from)
    assert all(r["path"].startswith("/services/") for r in tcia_emulator_session.requests())
    # CSV, XML and HTML keep NBIA's columns on both APIs: Authorized is there, and empty
    text = legacy.query(name, format="csv", **params).splitlines()
    assert text[0] == f'"{next(iter(rows[0]))}","Count","Authorized"' and text[1].endswith(',""')


def test_v1_connections_ask_v1_where_it_has_the_endpoint_else_v4(tcia_emulator_session, use_emulator):
    hook = use_emulator(tcia_emulator_session, "nbia", api_version="v1")
    tcia_emulator_session.clear_requests()
    md5 = hook.get_md5_hash_for_image(GBM_SOP)
    assert md5 is not None and len(md5) == 32
    assert hook.get_updated_series(date="2015-01-01")
    assert hook.get_dicom_tags(GBM_SERIES)
    paths = [r["path"] for r in tcia_emulator_session.requests()]
    assert paths == [
        "/nbia-api/services/v1/getM5HashForImage",
        "/nbia-api/services/v1/getUpdatedSeries",
        "/nbia-api/services/v4/getDicomTags",
    ]
    updated = tcia_emulator_session.requests()[1]["query"]
    assert [tuple(pair) for pair in updated] == [("fromDate", "01/01/2015"), ("format", "json")]  # (dd/MM/yyyy)


def test_md5_hierarchy_from_the_hook_matches_the_images(tcia_emulator_session, use_emulator):
    hook = use_emulator(tcia_emulator_session, "nbia")
    sops = [row["SOPInstanceUID"] for row in hook.get_sop_instance_uids(GBM_SERIES)]
    images = sorted(hook.get_md5_hash_for_image(s) or "" for s in sops)
    assert hook.get_md5_hierarchy(series_instance_uid=GBM_SERIES) == hashlib.md5("".join(images).encode()).hexdigest()
    tcia_emulator_session.clear_requests()
    hook.get_md5_hierarchy(collection="TCGA-GBM")
    (sent,) = tcia_emulator_session.requests()
    assert sent["method"] == "POST" and list(sent["query"]) == []  # (the level went in the form, not the URL)
