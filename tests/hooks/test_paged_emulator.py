"""getSeriesMetadata (chunks of UIDs) and getSimpleSearch (every page) through the hook and the emulator, over HTTP."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from airflow_provider_tcia.api.endpoints import SERIES_METADATA_ATTRS
from airflow_provider_tcia.api.simple_search import COLUMNS, SimpleSearch
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.hooks.paged import SERIES_METADATA_CHUNK

GBM_SERIES = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
BRCA_SERIES = "1.3.6.1.4.1.14519.5.2.1.3344.4002.142000486987125226950494153345"
LIDC_DX = "1.3.6.1.4.1.14519.5.2.1.6279.6001.141365756818074696859567662357"
UNKNOWN = "1.2.3.4.5.6.7.8.9"
V4 = "/nbia-api/services/v4"


@pytest.fixture
def emulator(tcia_emulator_session):
    tcia_emulator_session.reset()
    tcia_emulator_session.clear_requests()
    return tcia_emulator_session


@pytest.fixture(params=["v4", "v1"])
def nbia(request, emulator, use_emulator):
    """A hook on NBIA (v1 connections ask v4, which alone serves both endpoints)."""
    return use_emulator(emulator, "nbia", api_version=request.param)


def _posts(emulator, endpoint: str) -> list[dict]:
    return [r for r in emulator.requests() if r["endpoint"] == endpoint]


def _form(entry: dict) -> dict[str, str]:
    return dict(entry["form"])


# --- getSeriesMetadata ------------------------------------------------------------------------------------
def test_series_metadata_rows_have_the_v4_columns_and_unknown_uids_are_absent(nbia, emulator):
    rows = nbia.get_series_metadata([GBM_SERIES, UNKNOWN, BRCA_SERIES])
    assert [r["SeriesInstanceUID"] for r in rows] == [GBM_SERIES, BRCA_SERIES]
    assert list(rows[0]) == [c for c in SERIES_METADATA_ATTRS if c in rows[0]]  # (JSON leaves nulls out)
    assert {"PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "ImageCount"} <= set(rows[0])
    assert rows[0]["Collection"] == "TCGA-GBM" and rows[0]["PatientID"] == "TCGA-08-0244"
    (post,) = _posts(emulator, "getSeriesMetadata")
    assert post["method"] == "POST" and post["path"] == f"{V4}/getSeriesMetadata" and post["query"] == []
    assert _form(post) == {"list": f"{GBM_SERIES},{UNKNOWN},{BRCA_SERIES}", "format": "json"}


def test_series_metadata_in_chunks_the_request_log_shows_each(nbia, emulator):
    uids = [GBM_SERIES, BRCA_SERIES, LIDC_DX, UNKNOWN, GBM_SERIES]
    rows = list(nbia.iter_series_metadata(iter(uids), chunk_size=2))  # (an iterator: read once)
    assert [r["SeriesInstanceUID"] for r in rows] == [GBM_SERIES, BRCA_SERIES, LIDC_DX, GBM_SERIES]
    chunks = [_form(p)["list"].split(",") for p in _posts(emulator, "getSeriesMetadata")]
    assert chunks == [uids[0:2], uids[2:4], uids[4:5]]
    assert SERIES_METADATA_CHUNK * 67 < 2_000_000  # (a full chunk's form stays under Tomcat's 2 MB)


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_series_metadata_text_formats_are_rendered_from_the_rows(nbia, emulator, fmt):
    text = nbia.get_series_metadata([GBM_SERIES, BRCA_SERIES], format=fmt, chunk_size=1)
    assert len(_posts(emulator, "getSeriesMetadata")) == 2
    if fmt == "csv":
        records = list(csv.reader(io.StringIO(text)))
        assert records[0] == list(SERIES_METADATA_ATTRS)  # one header for every chunk
        assert [r[records[0].index("SeriesInstanceUID")] for r in records[1:]] == [GBM_SERIES, BRCA_SERIES]
    else:
        assert text.count(GBM_SERIES) == text.count(BRCA_SERIES) == 1


def test_series_metadata_none_found_is_empty(nbia):
    assert nbia.get_series_metadata([UNKNOWN]) == []
    assert nbia.get_series_metadata([UNKNOWN], format="csv").splitlines() == [
        ",".join(f'"{c}"' for c in SERIES_METADATA_ATTRS)
    ]


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ([], r"empty; give at least one SeriesInstanceUID; nothing was sent"),
        (iter([]), r"empty; give at least one SeriesInstanceUID; nothing was sent"),
        ([GBM_SERIES, "TCGA-08-0244"], r"series_instance_uids\[1\]='TCGA-08-0244' is not a DICOM UID"),
        (GBM_SERIES, r"must be an iterable of SeriesInstanceUIDs"),
        ([GBM_SERIES, 7], r"series_instance_uids\[1\] must be a DICOM UID string"),
    ],
)
def test_series_metadata_refuses_bad_uids_before_anything_is_sent(nbia, emulator, given, match):
    with pytest.raises(TciaBadRequestError, match=match):
        nbia.get_series_metadata(given)
    assert emulator.requests() == []


def test_series_metadata_an_iterator_is_checked_chunk_by_chunk(nbia, emulator):
    rows = nbia.iter_series_metadata(iter([GBM_SERIES, BRCA_SERIES, "not-a-uid"]), chunk_size=2)
    assert next(rows)["SeriesInstanceUID"] == GBM_SERIES
    with pytest.raises(TciaBadRequestError, match="not-a-uid"):
        list(rows)
    assert len(_posts(emulator, "getSeriesMetadata")) == 1  # (the chunk with the bad UID was never sent)


def test_series_metadata_emulator_quirks(emulator):
    url = emulator.url + f"{V4}/getSeriesMetadata"
    missing = requests.post(url, data={"format": "json"}, timeout=30)
    assert (missing.status_code, missing.text) == (
        400,
        "A form parameter, list, containing at least one SeriesInstanceUID is required.",
    )
    unknown = requests.post(url, data={"list": GBM_SERIES, "sort": "x"}, timeout=30)
    assert unknown.status_code == 400 and "Invalid form parameter: 'sort'" in unknown.text
    default = requests.post(url, data={"list": GBM_SERIES}, timeout=30)  # CSV by default
    assert default.status_code == 200 and default.text.startswith('"PatientID","PatientName","PatientSex",')
    assert requests.get(url, params={"list": GBM_SERIES}, timeout=30).status_code == 405


# --- getSimpleSearch -----------------------------------------------------------------------------------------
def test_simple_search_flattens_patients_to_series_rows(nbia, emulator):
    rows = nbia.get_simple_search(SimpleSearch(collections=["TCGA-GBM"], modalities="MR"))
    assert rows and all(set(r) == set(COLUMNS) for r in rows)
    assert {r["Collection"] for r in rows} == {"TCGA-GBM"} and {r["Modality"] for r in rows} == {"MR"}
    patients = [r["PatientID"] for r in rows]
    assert patients == sorted(patients)  # sortField=subject, ascending
    by_patient = {r["PatientID"]: r for r in rows}
    assert by_patient["TCGA-06-6701"]["TotalNumberOfStudies"] == 2
    assert sum(1 for r in rows if r["PatientID"] == "TCGA-06-6701") == 3  # one row per series
    assert len({r["SeriesIdentifier"] for r in rows}) == len(rows)
    (post,) = _posts(emulator, "getSimpleSearch")
    assert post["method"] == "POST" and post["query"] == []
    assert _form(post) == {
        "criteriaType0": "CollectionCriteria", "value0": "TCGA-GBM",
        "criteriaType1": "ImageModalityCriteria", "value1": "MR",
        "sortField": "subject", "sortDirection": "ascending", "start": "0", "size": "500",
    }  # fmt: skip


def test_simple_search_fetches_every_page_the_request_log_shows_each(nbia, emulator):
    criteria = SimpleSearch(collections=["TCGA-GBM", "TCGA-BRCA"])
    one_page = nbia.get_simple_search(criteria)
    emulator.clear_requests()
    paged = nbia.get_simple_search(criteria, page_size=3)
    assert paged == one_page
    patients = len({r["PatientID"] for r in paged})
    assert patients > 6
    starts = [(_form(p)["start"], _form(p)["size"]) for p in _posts(emulator, "getSimpleSearch")]
    assert starts == [(str(s), "3") for s in range(0, patients, 3)]


def test_simple_search_criteria_combine(nbia):
    # (release dates, as NBIA's: TCGA-06-6701's first study was released in 2014, the others' series in 2011,
    # 2016 and 2019)
    dated = nbia.get_simple_search(SimpleSearch(collections="TCGA-GBM", date_range=("2014-01-01", "2015-12-31")))
    assert {r["PatientID"] for r in dated} == {"TCGA-06-6701"}
    both = nbia.get_simple_search(SimpleSearch(collections="LIDC-IDRI", modalities=["CT", "DX"], all_modalities=True))
    assert {r["PatientID"] for r in both} == {"LIDC-IDRI-0001"}
    assert {r["PatientID"] for r in nbia.get_simple_search(SimpleSearch(collections="TCGA-GBM", min_studies=2))} == {
        "TCGA-06-6701"
    }
    by_series = nbia.get_simple_search(SimpleSearch(series_instance_uids=[GBM_SERIES]))
    assert [(r["PatientID"], r["Modality"]) for r in by_series] == [("TCGA-08-0244", "MR")]


def test_simple_search_no_results_is_empty(nbia, emulator):
    assert nbia.get_simple_search(SimpleSearch(collections="NO-SUCH-COLLECTION")) == []
    assert len(_posts(emulator, "getSimpleSearch")) == 1
    assert nbia.get_simple_search(SimpleSearch(collections="NO-SUCH-COLLECTION"), format="csv").splitlines() == [
        ",".join(f'"{c}"' for c in COLUMNS)
    ]


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_simple_search_text_formats(nbia, fmt):
    text = nbia.get_simple_search(SimpleSearch(patient_ids="TCGA-08-0244"), format=fmt)
    assert "TCGA-08-0244" in text and "TCGA-GBM" in text
    if fmt == "csv":
        assert next(csv.reader(io.StringIO(text))) == list(COLUMNS)


def test_simple_search_refuses_what_is_not_criteria_before_anything_is_sent(nbia, emulator):
    with pytest.raises(TciaBadRequestError, match="criteria must be a SimpleSearch"):
        nbia.get_simple_search({"collections": ["TCGA-GBM"]})  # type: ignore[arg-type]
    with pytest.raises(TciaBadRequestError, match="page_size"):
        nbia.get_simple_search(SimpleSearch(collections="TCGA-GBM"), page_size=0)
    assert emulator.requests() == []


def test_simple_search_emulator_answers_as_v4(emulator):
    url = emulator.url + f"{V4}/getSimpleSearch"
    form = SimpleSearch(collections="TCGA-GBM").form(0, 2)
    answer = requests.post(url, data=form, timeout=30).json()
    assert set(answer) == {"resultSet", "totalPatients", "bodyParts", "modalities", "collections", "species", "sort"}
    assert answer["sort"] == "subject-ascending" and answer["totalPatients"] > 2 and len(answer["resultSet"]) == 2
    patient = answer["resultSet"][0]
    assert {"id", "subjectId", "project", "totalNumberOfSeries", "totalNumberOfStudies", "studyIdentifiers"} <= set(
        patient
    )
    study = patient["studyIdentifiers"][0]
    assert all(isinstance(k, int) for k in study["seriesIdentifiers"])  # NBIA's keys, not UIDs
    assert {"value": "TCGA-GBM", "count": answer["totalPatients"]} in answer["collections"]

    unknown = requests.post(url, data=[*form, ("format", "json")], timeout=30)
    assert unknown.status_code == 400 and unknown.text.startswith("Invalid parameter(s): format.")
    no_sort = requests.post(url, data=[f for f in form if f[0] != "sortField"], timeout=30)
    assert (no_sort.status_code, no_sort.text) == (500, "Server was not able to process your request")
    past = requests.post(url, data=SimpleSearch(collections="TCGA-GBM").form(99, 2), timeout=30)
    assert past.status_code == 500  # (NBIA's subList beyond the result)
    assert (
        json.loads(requests.post(url, data=SimpleSearch(collections="NOPE").form(0, 5), timeout=30).text)["resultSet"]
        == []
    )


# --- NBIA only ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v2", "v4"])
def test_a_legacy_connection_refuses_both_before_anything_is_sent(emulator, use_emulator, version):
    legacy = use_emulator(emulator, "legacy", api_version=version)
    with pytest.raises(TciaBadRequestError, match=r"getSeriesMetadata is served only by NBIA.*api=nbia"):
        legacy.get_series_metadata(iter([GBM_SERIES]))
    with pytest.raises(TciaBadRequestError, match=r"getSimpleSearch is served only by NBIA.*api=nbia"):
        legacy.get_simple_search(SimpleSearch(collections="TCGA-GBM"), format="csv")
    with pytest.raises(TciaBadRequestError, match=r"call the hook's get_simple_search\(\)"):
        legacy.query("getSimpleSearch", collections="TCGA-GBM")
    assert emulator.requests() == []


# --- streaming and retries -----------------------------------------------------------------------------------
def test_series_metadata_reads_its_input_a_chunk_at_a_time(nbia, emulator):
    taken: list[str] = []

    def uids():
        for uid in [GBM_SERIES, BRCA_SERIES, LIDC_DX, GBM_SERIES, BRCA_SERIES]:
            taken.append(uid)
            yield uid

    rows = nbia.iter_series_metadata(uids(), chunk_size=2)
    assert taken == [GBM_SERIES] and emulator.requests() == []  # (the first UID, to refuse an empty input)
    assert next(rows)["SeriesInstanceUID"] == GBM_SERIES
    assert len(taken) == 2 and len(_posts(emulator, "getSeriesMetadata")) == 1  # one chunk read, one asked
    assert len(list(rows)) == 4 and len(taken) == 5


def test_simple_search_asks_a_page_only_when_its_rows_are_wanted(nbia, emulator):
    rows = nbia.iter_simple_search(SimpleSearch(collections=["TCGA-GBM", "TCGA-BRCA"]), page_size=2)
    assert emulator.requests() == []
    next(rows)
    assert len(_posts(emulator, "getSimpleSearch")) == 1
    list(rows)
    assert len(_posts(emulator, "getSimpleSearch")) > 3


@pytest.mark.parametrize("endpoint", ["getSeriesMetadata", "getSimpleSearch"])
def test_a_chunk_or_page_cut_off_is_asked_again_alone(nbia, emulator, endpoint):
    def fetch():
        if endpoint == "getSeriesMetadata":
            return nbia.get_series_metadata([GBM_SERIES, BRCA_SERIES, LIDC_DX], chunk_size=1)
        return nbia.get_simple_search(SimpleSearch(collections=["TCGA-GBM", "TCGA-BRCA"]), page_size=3)

    expected = fetch()
    emulator.clear_requests()
    # The second request's body breaks off: that request alone is asked again, the rows are the same.
    emulator.inject_fault(endpoint, "server_error", count=1, status=503)  # (the first request: retried, too)
    emulator.inject_fault(endpoint, "truncate", count=1, after_bytes=200)
    assert fetch() == expected
    forms = [p["form"] for p in _posts(emulator, endpoint)]
    assert [p["fault"] for p in _posts(emulator, endpoint)][:2] == ["server_error", "truncate"]
    assert forms[0] == forms[1] == forms[2]  # the same chunk or page, three times
    assert len(forms) == 2 + len({tuple(map(tuple, f)) for f in forms})
