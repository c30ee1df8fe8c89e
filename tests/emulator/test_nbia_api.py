"""NBIA (``/nbia-api/services/v4|v1/<endpoint>``) over real HTTP: the differences from the seed the reference
lists — ``PatientId``, NBIA's names, empty bodies, date formats, strict v4 parameters, v1-only
getContentsByName, POST getSeriesMetadata, getMD5HashForImage — and every format."""

from __future__ import annotations

import csv
import hashlib
import io
import xml.etree.ElementTree as ET

import pytest

from airflow_provider_tcia.api.endpoints import QUERY_ENDPOINTS
from airflow_provider_tcia.api.generations import NbiaApi
from tests.emulator.conftest import (
    GBM_SERIES,
    GBM_SOP,
    LIDC_DX,
    LUNG4D_SERIES,
    NBIA_V1,
    NBIA_V4,
    VICTRE_SERIES,
    get,
)

pytestmark = pytest.mark.integration

QUERIES = {
    "getCollectionValues": {},
    "getModalityValues": {"Collection": "TCGA-GBM"},
    "getBodyPartValues": {"Collection": "TCGA-GBM"},
    "getManufacturerValues": {"Collection": "TCGA-GBM"},
    "getPatient": {"Collection": "TCGA-GBM"},
    "getPatientByCollectionAndModality": {"Collection": "TCGA-GBM", "Modality": "MR"},
    "getPatientStudy": {"Collection": "TCGA-GBM"},
    "getSeries": {"Collection": "TCGA-GBM"},
    "getSeriesSize": {"SeriesInstanceUID": GBM_SERIES},
    "getSOPInstanceUIDs": {"SeriesInstanceUID": GBM_SERIES},
    "NewPatientsInCollection": {"Collection": "TCGA-GBM"},
    "NewStudiesInPatientCollection": {"Collection": "TCGA-GBM"},
}
DATES = {"v4": {"fromDate": "01-01-2016"}, "v1": {"Date": "2016/01/01"}}


def params_for(name: str, version: str) -> dict[str, str]:
    params = dict(QUERIES[name])
    if name.startswith("New"):
        params |= DATES[version]
    return params


def test_every_nbia_query_endpoint_is_exercised():
    names = {NbiaApi("v4").path(e).rsplit("/", 1)[1] for e in QUERY_ENDPOINTS if not e.nbia_only}
    assert names - set(QUERIES) == {"getContentsByName"}  # tested on its own: v1 only
    # (NBIA-only endpoints: tests/emulator/test_nbia_only.py and their own files)


@pytest.mark.parametrize("version", ["v4", "v1"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_endpoint_answers_json_by_default_and_every_format(emu, http, name, version):
    base = NBIA_V4 if version == "v4" else NBIA_V1
    params = params_for(name, version)
    r = get(http, emu, f"{base}/{name}", **params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    rows = r.json()
    assert rows and all(None not in row.values() for row in rows)

    text = get(http, emu, f"{base}/{name}", format="csv", **params).text
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(rows)
    assert {k: v for k, v in parsed[0].items() if v} == {
        k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in rows[0].items() if v != ""
    }
    root = ET.fromstring(get(http, emu, f"{base}/{name}", format="XML", **params).content)
    assert len(root.findall("Row")) == len(rows)
    html = get(http, emu, f"{base}/{name}", format="html", **params).text
    assert html.count("<TR>") == len(rows) + 1
    # NBIA's other spellings of CSV.
    assert get(http, emu, f"{base}/{name}", format="CSVQUOTED", **params).text == text
    download = get(http, emu, f"{base}/{name}", format="csv-download", **params)
    assert download.text == text and "attachment" in download.headers["Content-Disposition"]


def test_patient_rows_say_patientid_with_a_lower_case_d(emu, http):
    v1 = get(http, emu, f"{NBIA_V1}/getPatient", Collection="LIDC-IDRI").json()
    assert v1[0] == {
        "PatientId": "LIDC-IDRI-0001",
        "PatientName": "",
        "Collection": "LIDC-IDRI",
        "Phantom": "NO",
        "SpeciesCode": "337915000",
        "SpeciesDescription": "Homo sapiens",
    }
    v4 = get(http, emu, f"{NBIA_V4}/getPatient", Collection="TCGA-GBM", PatientId="TCGA-06-6701").json()
    assert v4 == [
        {
            "PatientId": "TCGA-06-6701",
            "PatientName": "TCGA-06-6701",
            "PatientSex": "F",
            "Collection": "TCGA-GBM",
            "Phantom": "NO",
            "SpeciesCode": "337915000",
            "SpeciesDescription": "Homo sapiens",
            "Authorized": 1,
        }
    ]
    by_modality = get(http, emu, f"{NBIA_V4}/getPatientByCollectionAndModality", Collection="TCGA-GBM", Modality="CT")
    assert by_modality.json() == [{"PatientId": "TCGA-14-1825", "Authorized": 1}]
    new = get(http, emu, f"{NBIA_V1}/NewPatientsInCollection", Collection="TCGA-GBM", Date="2019/01/01").json()
    assert [p["PatientId"] for p in new] == ["TCGA-06-6701", "TCGA-19-5958"]
    # The seed's name is not NBIA's.
    assert get(http, emu, f"{NBIA_V4}/PatientsByModality", Collection="TCGA-GBM", Modality="CT").status_code == 404


def test_series_rows_per_version(emu, http):
    (v1,) = get(http, emu, f"{NBIA_V1}/getSeries", SeriesInstanceUID=LIDC_DX).json()
    assert v1["SeriesDate"] == "2000-01-01 00:00:00.0"
    assert v1["DateReleased"] == "2015-09-01 00:00:00.0"
    assert v1["SeriesNumber"] == 3000923 and v1["AnnotationsFlag"] is True
    assert v1["CollectionURI"] == "https://doi.org/10.7937/K9/TCIA.2015.LO9QL9SX"
    assert v1["ManufacturerModelName"] == "Revolution XQi ADS_28.2" and v1["ImageCount"] == 2
    assert v1["LicenseName"] == "Creative Commons Attribution 3.0 Unported License"
    assert "DataDescriptionURI" not in v1 and "Authorized" not in v1
    size = get(http, emu, f"{NBIA_V1}/getSeriesSize", SeriesInstanceUID=LIDC_DX).json()
    assert size == [{"TotalSizeInBytes": v1["FileSize"], "ObjectCount": 2}]

    (v4,) = get(http, emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=VICTRE_SERIES).json()
    assert {k: v4[k] for k in ("Site", "PatientID", "PatientSex", "Manufacturer", "ImageCount")} == {
        "Site": "FDA",
        "PatientID": "1215936303",
        "PatientSex": "F",
        "Manufacturer": "VICTRE",
        "ImageCount": 57,
    }
    assert v4["MaxSubmissionTimestamp"] == "02-25-2019" and v4["DateReleased"] == "03-08-2019"
    assert v4["StudyDate"] == "01-06-2018" and v4["StudyDesc"] == "DBT Reconstructed Volume"
    assert v4["DataDescriptionURI"] == "https://doi.org/10.7937/TCIA.2019.ho23nxaw"
    assert v4["ReleasedStatus"] == "Yes" and v4["Authorized"] == 1 and "CollectionURI" not in v4

    (study,) = get(http, emu, f"{NBIA_V4}/getPatientStudy", Collection="4D-Lung").json()
    assert study["StudyDate"] == "09-15-1997" and study["SeriesCount"] == 2 and "PatientBirthDate" not in study


def test_no_result_is_an_empty_body(emu, http):
    for base in (NBIA_V4, NBIA_V1):
        for name, params in (
            ("getSeries", {"Collection": "fake_collection"}),
            ("getPatient", {"Collection": "fake_collection", "format": "csv"}),
            ("getSOPInstanceUIDs", {"SeriesInstanceUID": "1.2.3"}),
            ("getSeriesSize", {"SeriesInstanceUID": "1.2.3"}),
        ):
            r = get(http, emu, f"{base}/{name}", **params)
            assert (r.status_code, r.content) == (200, b""), (base, name)


def test_dates_v4_fromdate_on_or_after_v1_date_strictly_after(emu, http):
    # TCGA-14-1825 was released on 2016-08-22.
    v4 = get(http, emu, f"{NBIA_V4}/NewPatientsInCollection", Collection="TCGA-GBM", fromDate="08-22-2016").json()
    assert [p["PatientId"] for p in v4] == ["TCGA-06-6701", "TCGA-14-1825", "TCGA-19-5958"]
    v1 = get(http, emu, f"{NBIA_V1}/NewPatientsInCollection", Collection="TCGA-GBM", Date="2016/08/22").json()
    assert [p["PatientId"] for p in v1] == ["TCGA-06-6701", "TCGA-19-5958"]
    studies = get(
        http, emu, f"{NBIA_V4}/NewStudiesInPatientCollection", Collection="TCGA-GBM", fromDate="07-22-2019",
        PatientID="TCGA-06-6701",
    ).json()  # fmt: skip
    assert len(studies) == 1 and studies[0]["StudyDate"] == "01-15-2002"
    # Each generation's own format only.
    for base, params in (
        (NBIA_V4, {"fromDate": "2016-08-22"}),
        (NBIA_V1, {"Date": "2016-08-22"}),
        (NBIA_V4, {"Date": "2016/08/22"}),
    ):
        r = get(http, emu, f"{base}/NewPatientsInCollection", Collection="TCGA-GBM", **params)
        assert r.status_code == 400, (base, params)


def test_v4_rejects_unknown_query_parameters_and_v1_ignores_them(emu, http):
    r = get(http, emu, f"{NBIA_V4}/getSeries", Collection="TCGA-GBM", api_key="k")
    assert r.status_code == 400
    assert r.text.startswith("Invalid query parameter: 'api_key'. Allowed parameters are: [Collection, PatientID,")
    r = get(http, emu, f"{NBIA_V4}/getPatientStudy", Collection="TCGA-GBM", PatientId="TCGA-08-0244")
    assert r.status_code == 400  # getPatientStudy spells it PatientID
    assert get(http, emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES, NewFileNames="No").status_code == 200
    assert get(http, emu, f"{NBIA_V1}/getSeries", Collection="TCGA-GBM", api_key="k").status_code == 200


def test_errors(emu, http):
    r = get(http, emu, f"{NBIA_V4}/getPatientByCollectionAndModality", Collection="TCGA-GBM")
    assert (r.status_code, r.text) == (400, "A parameter, Collection and Modality, are required for this API call.")
    r = get(http, emu, f"{NBIA_V4}/NewPatientsInCollection", Collection="TCGA-GBM")
    assert (r.status_code, r.text) == (400, "A parameter, Collection and Date are required for this API call.")
    r = get(http, emu, f"{NBIA_V4}/getSingleImage", SeriesInstanceUID=GBM_SERIES)
    assert r.text == "A parameter, SeriesInstanceUID and SOPInstanceUID, are required for this API call."
    r = get(http, emu, f"{NBIA_V4}/getImage")
    assert (r.status_code, r.text) == (400, "A parameter, SeriesInstanceUID, is required for this API call.")
    r = get(http, emu, f"{NBIA_V4}/getSeries", format="yaml")
    assert (r.status_code, r.text) == (500, "Server was not able to process your request")
    assert get(http, emu, f"{NBIA_V4}/getNothing").status_code == 404
    assert get(http, emu, f"{NBIA_V4}/getSeries/metadata").status_code == 404  # no /metadata on NBIA
    r = get(http, emu, f"{NBIA_V1}/getImage", SeriesInstanceUID="1.2.3")
    assert (r.status_code, r.text) == (400, "Image with given SeriesInstanceUID,1.2.3, is not in public domain.")
    r = get(http, emu, f"{NBIA_V4}/getImage", SeriesInstanceUID="1.2.3")
    assert r.status_code == 400 and r.text.startswith("The user has not been granted the access to image")


def test_get_contents_by_name_is_v1_only_and_always_json(emu, http):
    r = get(http, emu, f"{NBIA_V1}/getContentsByName", name="sharedListApiUnitTest", format="csv")
    assert r.headers["Content-Type"] == "application/json"
    rows = r.json()
    assert [row["SeriesInstanceUID"] for row in rows] == [
        GBM_SERIES,
        "1.3.6.1.4.1.14519.5.2.1.3344.4002.142000486987125226950494153345",
        LIDC_DX,
    ]
    assert "Date Released" in rows[0] and "DateReleased" not in rows[0]
    assert list(rows[0])[-4:] == ["Date Released", "StudyDesc", "StudyDate", "ThirdPartyAnalysis"]
    assert get(http, emu, f"{NBIA_V4}/getContentsByName", name="sharedListApiUnitTest").status_code == 404
    r = get(http, emu, f"{NBIA_V1}/getContentsByName")
    assert (r.status_code, r.text) == (400, "A parameter, name, is required for this API call.")


def test_post_get_series_metadata_answers_csv(emu, http):
    url = emu.url + f"{NBIA_V4}/getSeriesMetadata"
    r = http.post(url, data={"list": f"{LUNG4D_SERIES},1.2.3,{GBM_SERIES}"}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0].startswith('"PatientID","PatientName","PatientSex","EthnicGroup","Phantom","SpeciesCode"')
    assert lines[0].endswith('"ReleasedStatus","DateReleased","ThirdPartyAnalysis","Authorized"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["SeriesInstanceUID"] for row in rows] == [LUNG4D_SERIES, GBM_SERIES]
    lung = rows[0]
    assert (lung["PatientID"], lung["PatientName"], lung["Collection"], lung["Site"]) == (
        "100_HM10395", "P100", "4D-Lung", "VCU",
    )  # fmt: skip
    assert lung["SeriesNumber"] == "500.000000" and lung["ImageCount"] == "50"
    assert lung["SeriesDescription"] == "P4^P100^S100^I0, Gated, 0.0%"
    assert lung["DateReleased"] == "10-19-2016" and lung["MaxSubmissionTimestamp"] == "07-20-2015"
    as_json = http.post(url, data={"list": LUNG4D_SERIES, "format": "json"}, timeout=10).json()
    assert as_json[0]["FileSize"] == lung["FileSize"]
    r = http.post(url, data={}, timeout=10)
    assert (r.status_code, r.text) == (
        400, "A form parameter, list, containing at least one SeriesInstanceUID is required.",
    )  # fmt: skip
    assert http.get(url, timeout=10).status_code == 405
    assert http.post(url, data={"list": "1.2.3"}, timeout=10).content == b""


def test_series_metadata_spacing_and_thickness_are_those_of_the_served_files(emu, http):
    """getSeriesMetadata's PixelSpacing(mm)-Row and SliceThickness(mm) say what the series' DICOM carries (what
    getDicomTags reads from its first image, and what the simple search's range criteria select on)."""
    url = emu.url + f"{NBIA_V4}/getSeriesMetadata"
    for uid in (LUNG4D_SERIES, GBM_SERIES):
        row = http.post(url, data={"list": uid, "format": "json"}, timeout=10).json()[0]
        tags = {t["name"]: t["data"] for t in get(http, emu, f"{NBIA_V4}/getDicomTags", SeriesUID=uid).json()}
        assert float(row["PixelSpacing(mm)-Row"]) == pytest.approx(float(tags["PixelSpacing"].split("\\")[0]))
        assert float(row["SliceThickness(mm)"]) == pytest.approx(float(tags["SliceThickness"]))


def test_v1_get_series_metadata_has_spaced_keys(emu, http):
    (row,) = get(http, emu, f"{NBIA_V1}/getSeriesMetaData", SeriesInstanceUID=LIDC_DX).json()
    assert row["Series UID"] == LIDC_DX and row["Subject ID"] == "LIDC-IDRI-0001"
    assert row["Number of Images"] == 2 and row["SOP Class UID"] == "1.2.840.10008.5.1.4.1.1.1.1"
    assert row["Data Description URI"] == "https://doi.org/10.7937/K9/TCIA.2015.LO9QL9SX"
    assert get(http, emu, f"{NBIA_V1}/getSeriesMetaData", SeriesInstanceUID="1.2.3").status_code == 204


def test_get_md5_hash_for_image_v4_and_v1s_spelling(emu, http):
    """NBIA keeps each image's MD5 (getMD5HashForImage, text/plain); v1 spells it getM5HashForImage with
    SOPInstanceUid. It is the MD5 of what getSingleImage sends."""
    image = get(http, emu, f"{NBIA_V4}/getSingleImage", SeriesInstanceUID=GBM_SERIES, SOPInstanceUID=GBM_SOP)
    expected = hashlib.md5(image.content).hexdigest()
    r = get(http, emu, f"{NBIA_V4}/getMD5HashForImage", SOPInstanceUID=GBM_SOP)
    assert (r.status_code, r.headers["Content-Type"], r.text) == (200, "text/plain", expected)
    assert get(http, emu, f"{NBIA_V1}/getM5HashForImage", SOPInstanceUid=GBM_SOP).text == expected
    assert get(http, emu, f"{NBIA_V1}/getMD5HashForImage", SOPInstanceUID=GBM_SOP).status_code == 404
    assert get(http, emu, f"{NBIA_V4}/getM5HashForImage", SOPInstanceUid=GBM_SOP).status_code == 404
    # An unknown image: no MD5, an empty body (as NBIA answers no rows).
    assert get(http, emu, f"{NBIA_V4}/getMD5HashForImage", SOPInstanceUID="1.2.3.4").content == b""
    bad = get(http, emu, f"{NBIA_V4}/getMD5HashForImage", SOPInstanceUid=GBM_SOP)
    assert bad.status_code == 400 and "Invalid query parameter: 'SOPInstanceUid'" in bad.text
    assert get(http, emu, f"{NBIA_V4}/getMD5HashForImage").status_code == 400
