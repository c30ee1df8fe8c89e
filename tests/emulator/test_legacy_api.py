"""The seed API (``/services/v2|v3|v4/TCIA/query/<endpoint>``) over real HTTP: every endpoint, every format,
``/metadata``, the key, the errors and the ``Date`` semantics."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
import requests

from airflow_provider_tcia.api.endpoints import ENDPOINTS, QUERY_ENDPOINTS
from tests.emulator.conftest import BRCA_SERIES, BRCA_STUDY, GBM_SERIES, GBM_SOP, LEGACY, LIDC_DX, get

pytestmark = pytest.mark.integration

#: A request that returns rows for every query endpoint of the seed.
QUERIES = {
    "getCollectionValues": {},
    "getModalityValues": {"Collection": "TCGA-GBM"},
    "getBodyPartValues": {"Collection": "TCGA-GBM"},
    "getManufacturerValues": {"Collection": "TCGA-GBM"},
    "getPatient": {"Collection": "TCGA-GBM"},
    "PatientsByModality": {"Collection": "TCGA-GBM", "Modality": "CT"},
    "getPatientStudy": {"Collection": "TCGA-BRCA", "PatientID": "TCGA-AR-A1AQ"},
    "getSeries": {"Collection": "TCGA-GBM", "PatientID": "TCGA-08-0244"},
    "getSeriesSize": {"SeriesInstanceUID": GBM_SERIES},
    "getSOPInstanceUIDs": {"SeriesInstanceUID": GBM_SERIES},
    "NewPatientsInCollection": {"Collection": "TCGA-GBM", "Date": "2016-01-01"},
    "NewStudiesInPatientCollection": {"Collection": "TCGA-GBM", "Date": "2016-01-01"},
    "ContentsByName": {"name": "sharedListApiUnitTest"},
}


def path(endpoint: str, version: str = "v2") -> str:
    return f"/services/{version}/{ENDPOINTS[endpoint].resource}/query/{endpoint}"


def test_every_query_endpoint_is_exercised():
    assert set(QUERIES) == {e.name for e in QUERY_ENDPOINTS if not e.nbia_only}


@pytest.mark.parametrize("endpoint", sorted(e.name for e in ENDPOINTS.values() if e.nbia_only))
def test_nbia_only_endpoints_are_not_here(emu, http, endpoint):
    """The seed's server has no NBIA-only endpoint (a legacy connection refuses or computes them)."""
    assert get(http, emu, path(endpoint)).status_code == 404
    assert get(http, emu, path(endpoint) + "/metadata").status_code == 404


@pytest.mark.parametrize("version", ["v2", "v3", "v4"])
@pytest.mark.parametrize("endpoint", sorted(QUERIES))
def test_json_by_default_with_the_seed_field_names(emu, http, endpoint, version):
    r = get(http, emu, path(endpoint, version), **QUERIES[endpoint])
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    rows = r.json()
    assert rows and all(isinstance(row, dict) for row in rows)
    allowed = set(ENDPOINTS[endpoint].attributes)
    for row in rows:
        assert set(row) <= allowed, set(row) - allowed
        assert None not in row.values()  # nulls are left out


@pytest.mark.parametrize("endpoint", sorted(QUERIES))
def test_csv_xml_and_html_hold_the_same_rows(emu, http, endpoint):
    params = QUERIES[endpoint]
    rows = get(http, emu, path(endpoint), **params).json()
    columns = ENDPOINTS[endpoint].attributes

    r = get(http, emu, path(endpoint), format="csv", **params)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(r.text)))
    assert tuple(parsed[0]) == columns
    assert len(parsed) - 1 == len(rows)
    first = dict(zip(columns, parsed[1], strict=True))
    for key, value in rows[0].items():
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        assert first[key] == expected
    if len(columns) > 1:
        assert r.text.splitlines()[0].startswith('"')  # several columns: fully quoted
    else:
        assert r.text.splitlines()[0] == columns[0]  # one column: unquoted

    r = get(http, emu, path(endpoint), format="xml", **params)
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    assert root.tag == "Results"
    xml_rows = root.findall("Row")
    assert len(xml_rows) == len(rows)
    assert {child.tag: child.text for child in xml_rows[0]} == {
        k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in rows[0].items()
    }

    r = get(http, emu, path(endpoint), format="HTML", **params)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.text.startswith("<P ALIGN='center'><TABLE BORDER=1><TR><TH>")
    assert r.text.count("<TR>") == len(rows) + 1
    with pytest.raises(requests.JSONDecodeError):
        r.json()


def test_row_values_look_like_the_real_capture(emu, http):
    rows = get(http, emu, path("getSeries"), SeriesInstanceUID=BRCA_SERIES).json()
    assert rows == [
        {
            "SeriesInstanceUID": BRCA_SERIES,
            "StudyInstanceUID": BRCA_STUDY,
            "Modality": "MR",
            "ProtocolName": "VIBRANT BREAST/",
            "SeriesDate": "2001-11-21",
            "SeriesDescription": "LT SAG FSE T2",
            "BodyPartExamined": "BREAST",
            "SeriesNumber": "4.000000",
            "Collection": "TCGA-BRCA",
            "Manufacturer": "GE MEDICAL SYSTEMS",
            "ManufacturerModelName": "SIGNA EXCITE",
            "SoftwareVersions": "11",
            "ImageCount": 36,
        }
    ]
    study = get(http, emu, path("getPatientStudy"), StudyInstanceUID=BRCA_STUDY).json()
    assert study == [
        {
            "StudyInstanceUID": BRCA_STUDY,
            "StudyDate": "2001-11-21",
            "StudyDescription": "*MRI - BREAST",
            "PatientAge": "049Y",
            "PatientID": "TCGA-AR-A1AQ",
            "PatientName": "TCGA-AR-A1AQ",
            "PatientSex": "F",
            "Collection": "TCGA-BRCA",
            "SeriesCount": 11,
        }
    ]
    size = get(http, emu, path("getSeriesSize"), SeriesInstanceUID=GBM_SERIES).json()
    assert list(size[0]) == ["TotalSizeInBytes", "ObjectCount"]
    assert size[0]["TotalSizeInBytes"].endswith(".0") and size[0]["ObjectCount"] == "24"
    sops = get(http, emu, path("getSOPInstanceUIDs"), SeriesInstanceUID=GBM_SERIES).json()
    assert sops[0] == {"SOPInstanceUID": GBM_SOP} and len(sops) == 24


def test_filters(emu, http):
    assert get(http, emu, path("getCollectionValues")).json()[:2] == [
        {"Collection": "4D-Lung"},
        {"Collection": "CBIS-DDSM"},
    ]
    assert get(http, emu, path("getModalityValues"), BodyPartExamined="BRAIN").json() == [
        {"Modality": "CT"},
        {"Modality": "MR"},
    ]
    assert {"BodyPartExamined": "BD CT ABD WO_W "} in get(http, emu, path("getBodyPartValues")).json()
    makers = get(http, emu, path("getManufacturerValues"), Collection="TCGA-GBM", Modality="MR").json()
    assert makers == [{"Manufacturer": "GE MEDICAL SYSTEMS"}, {"Manufacturer": "SIEMENS"}]
    series = get(http, emu, path("getSeries"), Collection="TCGA-GBM", Manufacturer="SIEMENS", Modality="MR").json()
    assert {s["ManufacturerModelName"] for s in series} == {"Avanto"} and len(series) == 3
    series = get(http, emu, path("getSeries"), ManufacturerModelName="GENESIS_SIGNA", BodyPartExamined="BRAIN").json()
    assert len(series) == 6  # TCGA-08-0244: 3, TCGA-02-0003: 2, TCGA-19-5958: 1
    patients = get(http, emu, path("PatientsByModality"), Collection="TCGA-GBM", Modality="CT").json()
    assert patients == [
        {"PatientID": "TCGA-14-1825", "PatientName": "TCGA-14-1825", "PatientSex": "F", "Collection": "TCGA-GBM"}
    ]
    listed = get(http, emu, "/services/v4/SharedList/query/ContentsByName", name="sharedListApiUnitTest").json()
    assert [s["SeriesInstanceUID"] for s in listed] == [GBM_SERIES, BRCA_SERIES, LIDC_DX]


def test_date_selects_what_was_released_strictly_after(emu, http):
    # TCGA-GBM releases: 2011-02-01 (two patients), 2014-09-10, 2016-08-22, 2019-07-22, 2020-03-03.
    new = get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-GBM", Date="2016-08-22").json()
    assert [p["PatientID"] for p in new] == ["TCGA-06-6701", "TCGA-19-5958"]
    new = get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-GBM", Date="2016-08-21").json()
    assert [p["PatientID"] for p in new] == ["TCGA-06-6701", "TCGA-14-1825", "TCGA-19-5958"]
    everything = get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-GBM", Date="0001-01-01").json()
    assert len(everything) == 5
    assert get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-GBM", Date="9999-01-01").json() == []
    studies = get(http, emu, path("NewStudiesInPatientCollection"), Collection="TCGA-GBM", Date="2014-09-10").json()
    assert [s["PatientID"] for s in studies] == ["TCGA-06-6701", "TCGA-14-1825", "TCGA-19-5958"]
    one = get(
        http, emu, path("NewStudiesInPatientCollection"), Collection="TCGA-GBM", Date="2014-09-09",
        PatientID="TCGA-06-6701",
    ).json()  # fmt: skip
    assert len(one) == 2 and {s["SeriesCount"] for s in one} == {2, 1}
    # The seed's own example (TCIApathfinder's test) selects rows.
    assert get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-BRCA", Date="2014-01-01").json()


def test_no_match_is_200_and_an_empty_list(emu, http):
    for endpoint, params in (
        ("getSeries", {"Collection": "fake_collection"}),
        ("getPatient", {"Collection": "fake_collection"}),
        ("getModalityValues", {"Collection": "fake_collection"}),
        ("PatientsByModality", {"Collection": "TCGA-GBM", "Modality": "fake_modality"}),
        ("getSOPInstanceUIDs", {"SeriesInstanceUID": "1.2.3"}),
        ("ContentsByName", {"name": "no-such-list"}),
    ):
        r = get(http, emu, path(endpoint), **params)
        assert (r.status_code, r.json()) == (200, []), endpoint
    assert get(http, emu, path("getSeries"), Collection="nope", format="csv").text.count("\n") == 1
    assert get(http, emu, path("getSeries"), Collection="nope", format="xml").text.endswith("<Results></Results>")
    # An unknown series' size is one row without values.
    assert get(http, emu, path("getSeriesSize"), SeriesInstanceUID="1.2.3").json() == [{}]


@pytest.mark.parametrize(
    ("endpoint", "params", "message"),
    [
        ("getSeriesSize", {}, "A parameter, SeriesInstanceUID, is required for this API call."),
        ("getSOPInstanceUIDs", {}, "A parameter, SeriesInstanceUID, is required for this API call."),
        ("getImage", {}, "A parameter, SeriesInstanceUID, is required for this API call."),
        (
            "getSingleImage",
            {"SeriesInstanceUID": GBM_SERIES},
            "A parameter, SeriesInstanceUID and SOPInstanceUID, are required for this API call.",
        ),
        (
            "PatientsByModality",
            {"Collection": "TCGA-GBM"},
            "A parameter, Collection and Modality, are required for this API call.",
        ),
        ("NewPatientsInCollection", {"Collection": "TCGA-GBM"}, "A parameter, Collection and Date are required"),
        ("NewStudiesInPatientCollection", {"Date": "2014-01-01"}, "A parameter, Collection and Date are required"),
        ("ContentsByName", {}, "A parameter, name, is required for this API call."),
    ],
)
def test_a_missing_required_parameter_is_400_with_a_plain_message(emu, http, endpoint, params, message):
    r = get(http, emu, path(endpoint), **params)
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.startswith(message)


def test_other_errors(emu, http):
    r = get(http, emu, f"{LEGACY}/fakeEndpoint")
    assert r.status_code == 404
    assert get(http, emu, "/services/v4/TCIA/query/ContentsByName", name="x").status_code == 404
    assert get(http, emu, "/services/v9/TCIA/query/getSeries").status_code == 404
    bad_date = get(http, emu, path("NewPatientsInCollection"), Collection="TCGA-GBM", Date="01/01/2014")
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.text
    bad_format = get(http, emu, path("getSeries"), format="lxml")
    assert bad_format.status_code == 500 and "errorMessage" in bad_format.json()
    assert http.post(emu.url + path("getSeries"), timeout=10).status_code == 405


def test_unknown_query_parameters_are_ignored(emu, http):
    r = get(http, emu, path("getCollectionValues"), api_key="anything", whatever="x")
    assert r.status_code == 200 and r.json()


@pytest.mark.parametrize("endpoint", sorted(e.name for e in ENDPOINTS.values() if not e.nbia_only))
def test_metadata(emu, http, endpoint):
    r = get(http, emu, path(endpoint) + "/metadata")
    assert r.status_code == 200
    meta = r.json()
    assert meta["QueryName"] == endpoint
    assert meta["Description"]
    assert [p["Name"] for p in meta["Parameters"]] == [p.api_name for p in ENDPOINTS[endpoint].params]
    assert meta["Result"]["Name"] == ENDPOINTS[endpoint].result
    assert [a["Name"] for a in meta["Result"]["Attributes"]] == list(ENDPOINTS[endpoint].attributes)
    assert all({"Name", "Description", "DICOM"} <= set(a) for a in meta["Result"]["Attributes"])


def test_with_an_api_key_requests_without_it_are_401(tcia_emulator_factory, http):
    emu = tcia_emulator_factory(api_key="s3cret")
    url = emu.url + path("getCollectionValues")
    assert http.get(url, timeout=10).status_code == 401
    assert http.get(url, headers={"api_key": "wrong"}, timeout=10).status_code == 401
    assert http.get(url + "/metadata", timeout=10).status_code == 401
    assert http.get(emu.url + path("getImage"), params={"SeriesInstanceUID": GBM_SERIES}, timeout=10).status_code == 401
    assert http.get(url, headers={"api_key": "s3cret"}, timeout=10).status_code == 200
    assert http.get(url, params={"api_key": "s3cret"}, timeout=10).status_code == 200
    # NBIA asks for no key.
    assert http.get(emu.url + "/nbia-api/services/v4/getCollectionValues", timeout=10).status_code == 200
    # The key never reaches the request log.
    logged = emu.requests()
    assert len(logged) == 7
    assert "s3cret" not in repr(logged)
    assert logged[4]["headers"]["api_key"] == "***"
    assert ["api_key", "***"] in logged[5]["query"]


def test_the_key_can_change_while_running(tcia_emulator, http):
    url = tcia_emulator.url + path("getCollectionValues")
    assert http.get(url, timeout=10).status_code == 200
    with tcia_emulator.with_api_key("k2"):
        assert http.get(url, timeout=10).status_code == 401
        assert http.get(url, headers={"api_key": "k2"}, timeout=10).status_code == 200
        assert ":k2@" in tcia_emulator.connection_uri()
    assert http.get(url, timeout=10).status_code == 200


@pytest.mark.tcia_emulator(dataset="test")
def test_the_test_dataset_is_a_small_set_of_tcga_gbm(tcia_emulator, http):
    url = tcia_emulator.url
    assert http.get(url + path("getCollectionValues"), timeout=10).json() == [{"Collection": "TCGA-GBM"}]
    patients = http.get(url + path("getPatient"), params={"Collection": "TCGA-GBM"}, timeout=10).json()
    assert [p["PatientID"] for p in patients] == ["TCGA-08-0244", "TCGA-06-6701"]
    # What the seed's own client tests asked of its test server.
    assert http.get(url + path("getBodyPartValues"), params={"Modality": "MR"}, timeout=10).json() == [
        {"BodyPartExamined": "BRAIN"}
    ]
    series = http.get(url + path("getSeries"), params={"Collection": "TCGA-GBM", "Modality": "MR"}, timeout=10)
    assert GBM_SERIES in {s["SeriesInstanceUID"] for s in series.json()}
    assert http.get(url + path("getImage"), params={"SeriesInstanceUID": GBM_SERIES}, timeout=10).status_code == 200
