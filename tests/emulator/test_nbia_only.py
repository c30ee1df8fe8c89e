"""NBIA's v4-only endpoints over real HTTP, as NBIA's server code answers them: parameter names checked
(query string, or a POST's form), JSON only (or text/plain), empty answers, and what each computes."""

from __future__ import annotations

import hashlib

import pytest

from airflow_provider_tcia.api.endpoints import ENDPOINTS
from tests.emulator.conftest import GBM_SERIES, GBM_SOP, GBM_STUDY, NBIA_V1, NBIA_V4, get

pytestmark = pytest.mark.integration

GBM_DOI = "https://doi.org/10.7937/K9/TCIA.2016.RNYFUYE9"
#: Each new endpoint: (method, a request that has rows, its allowed parameter names in order).
ASKED = {
    "getUpdatedSeries": ("GET", {"fromDate": "01-01-2000"}, "fromDate, format"),
    "getCollectionDescriptions": ("GET", {"collectionName": "TCGA-GBM"}, "collectionName"),
    "getCollectionValuesAndCounts": ("GET", {}, ""),
    "getModalityValuesAndCounts": ("GET", {"Collection": "TCGA-GBM"}, "Collection, BodyPartExamined"),
    "getBodyPartValuesAndCounts": ("GET", {"Collection": "TCGA-GBM"}, "Collection, Modality"),
    "getManufacturerValuesAndCounts": ("GET", {"Collection": "TCGA-GBM"}, "Collection, Modality, BodyPartExamined"),
    "getSpeciesValuesAndCounts": ("GET", {}, ""),
    "getDicomTags": ("GET", {"SeriesUID": GBM_SERIES}, "SeriesUID"),
    "getMD5Hierarchy": (
        "POST",
        {"SeriesInstanceUID": GBM_SERIES},
        "SeriesInstanceUID, StudyInstanceUID, PatientID, Collection",
    ),
    "getMD5HashForImage": ("GET", {"SOPInstanceUID": GBM_SOP}, "SOPInstanceUID"),
    "getCollectionOrSeriesForDOI": ("POST", {"DOI": GBM_DOI}, "DOI, CollectionOrSeries"),
}


def ask(http, emu, name, params, method="GET", base=NBIA_V4):
    if method == "POST":
        return http.post(f"{emu.url}{base}/{name}", data=params, timeout=30)
    return get(http, emu, f"{base}/{name}", **params)


def test_every_new_endpoint_is_here():
    assert set(ASKED) <= {e.name for e in ENDPOINTS.values() if e.nbia_only}


@pytest.mark.parametrize("name", sorted(ASKED))
def test_it_answers_and_checks_its_parameter_names(emu, http, name):
    method, params, allowed = ASKED[name]
    r = ask(http, emu, name, params, method)
    assert r.status_code == 200, r.text
    if ENDPOINTS[name].answer == "text":
        assert r.headers["Content-Type"].startswith("text/plain") and len(r.text) == 32
    else:
        assert r.headers["Content-Type"] == "application/json" and r.json()
    kind = "form" if method == "POST" else "query"
    bad = ask(http, emu, name, {**params, "bogus": "1"}, method)
    assert (bad.status_code, bad.text) == (
        400,
        f"Invalid {kind} parameter: 'bogus'. Allowed parameters are: [{allowed}]",
    )
    # the wrong method is refused, and the seed's server has none of them
    other = http.get if method == "POST" else http.post
    assert other(f"{emu.url}{NBIA_V4}/{name}", timeout=30).status_code == 405


@pytest.mark.parametrize(
    "name",
    ["getCollectionDescriptions", "getCollectionValuesAndCounts", "getDicomTags", "getCollectionOrSeriesForDOI"],
)
def test_json_only_so_format_is_an_unknown_parameter(emu, http, name):
    method, params, _ = ASKED[name]
    assert ask(http, emu, name, {**params, "format": "csv"}, method).status_code == 400


def test_updated_series_are_those_released_strictly_after_the_date(tcia_emulator, http):
    published = tcia_emulator.publish("TCGA-GBM", released="2031-05-06")
    uids = set(published["series_instance_uids"])

    def listed(from_date: str, base: str = NBIA_V4) -> set[str]:
        r = get(http, tcia_emulator, f"{base}/getUpdatedSeries", fromDate=from_date)
        return {row["SeriesInstanceUID"] for row in (r.json() if r.content else [])}

    assert uids <= listed("05-05-2031")
    assert not uids & listed("05-06-2031")  # (on the release date: not after it)
    assert uids <= listed("05/05/2031", NBIA_V1)  # v1: dd/MM/yyyy, strictly after too
    assert not uids & listed("06/05/2031", NBIA_V1)
    everything = get(http, tcia_emulator, f"{NBIA_V4}/getUpdatedSeries").json()
    assert uids <= {row["SeriesInstanceUID"] for row in everything}  # no fromDate: 01-01-1900
    assert get(http, tcia_emulator, f"{NBIA_V4}/getUpdatedSeries", fromDate="01-01-2099").content == b""
    assert get(http, tcia_emulator, f"{NBIA_V4}/getUpdatedSeries", fromDate="2031-05-05").status_code == 400


def test_counts_are_distinct_patients(emu, http):
    series = get(http, emu, f"{NBIA_V4}/getSeries", Collection="TCGA-GBM").json()
    patients: dict[str, set[str]] = {}
    for row in series:
        patients.setdefault(row["Modality"], set()).add(row["PatientID"])
    counts = get(http, emu, f"{NBIA_V4}/getModalityValuesAndCounts", Collection="TCGA-GBM").json()
    assert counts == [{"Modality": m, "Count": len(p), "Authorized": 1} for m, p in sorted(patients.items())]
    assert len(series) > sum(len(p) for p in patients.values())  # (several series a patient: not a series count)
    body_parts = get(http, emu, f"{NBIA_V4}/getBodyPartValuesAndCounts", Collection="TCGA-GBM").json()
    assert body_parts == [{"BodyPart": "BRAIN", "Count": 5, "Authorized": 1}]
    assert get(http, emu, f"{NBIA_V4}/getModalityValuesAndCounts", Collection="NOPE").content == b""


def test_md5_hierarchy_is_over_the_sorted_md5s_below(emu, http):
    def md5h(**form: str) -> str:
        r = http.post(f"{emu.url}{NBIA_V4}/getMD5Hierarchy", data=form, timeout=30)
        assert r.status_code == 200
        return r.text

    sops = [
        row["SOPInstanceUID"]
        for row in get(http, emu, f"{NBIA_V4}/getSOPInstanceUIDs", SeriesInstanceUID=GBM_SERIES).json()
    ]
    images = [get(http, emu, f"{NBIA_V4}/getMD5HashForImage", SOPInstanceUID=s).text for s in sops]
    series_md5 = hashlib.md5("".join(sorted(images)).encode()).hexdigest()
    assert md5h(SeriesInstanceUID=GBM_SERIES) == series_md5
    in_study = [
        r["SeriesInstanceUID"] for r in get(http, emu, f"{NBIA_V4}/getSeries", StudyInstanceUID=GBM_STUDY).json()
    ]
    study_md5 = hashlib.md5("".join(sorted(md5h(SeriesInstanceUID=u) for u in in_study)).encode()).hexdigest()
    assert md5h(StudyInstanceUID=GBM_STUDY) == study_md5
    assert md5h(PatientID="TCGA-08-0244") == hashlib.md5(study_md5.encode()).hexdigest()  # (one study)
    assert len(md5h(Collection="TCGA-GBM")) == 32
    assert md5h() == md5h(Collection="NOPE") == ""  # as NBIA's code: nothing given or found, an empty body


def test_dicom_tags_are_those_of_the_first_image(emu, http):
    rows = get(http, emu, f"{NBIA_V4}/getDicomTags", SeriesUID=GBM_SERIES).json()
    by_name = {row["name"]: row for row in rows}
    assert by_name["Modality"] == {"element": "(0008,0060)", "name": "Modality", "data": "MR"}
    assert by_name["SOPInstanceUID"]["data"] == GBM_SOP and by_name["SeriesInstanceUID"]["data"] == GBM_SERIES
    assert by_name["Rows"]["element"] == "(0028,0010)" and by_name["Rows"]["data"].isdigit()
    assert not any(row["element"].startswith("(0002,") or row["element"] == "(7FE0,0010)" for row in rows)
    unknown = get(http, emu, f"{NBIA_V4}/getDicomTags", SeriesUID="1.2.3.4")
    assert unknown.status_code == 400 and "has not been granted the access" in unknown.text
    missing = get(http, emu, f"{NBIA_V4}/getDicomTags")
    assert (missing.status_code, missing.text) == (400, "A parameter, SeriesUID, is required for this API call.")


def test_descriptions_and_dois(emu, http):
    one = get(http, emu, f"{NBIA_V4}/getCollectionDescriptions", collectionName="TCGA-GBM").json()
    assert [set(row) for row in one] == [{"collectionName", "description", "descriptionURI", "id"}]
    assert one[0]["descriptionURI"] == GBM_DOI and one[0]["description"].startswith("<p>")
    every = get(http, emu, f"{NBIA_V4}/getCollectionDescriptions").json()
    assert {row["collectionName"] for row in every} >= {"TCGA-GBM", "TCGA-BRCA"}
    assert get(http, emu, f"{NBIA_V4}/getCollectionDescriptions", collectionName="NOPE").text == "[]"

    url = f"{emu.url}{NBIA_V4}/getCollectionOrSeriesForDOI"
    assert http.post(url, data={"DOI": GBM_DOI}, timeout=30).json() == [
        {"collection": "TCGA-GBM", "thirdPartyAnanlysis": "NO", "authorized": 1}
    ]
    per_series = http.post(url, data={"DOI": GBM_DOI, "CollectionOrSeries": "series"}, timeout=30).json()
    assert GBM_SERIES in {row["seriesInstanceUID"] for row in per_series}
    assert http.post(url, data={"DOI": "10.0/nothing"}, timeout=30).text == "[]"
    assert http.post(url, data={}, timeout=30).text == "[]"  # (NBIA checks no DOI: nothing matches)


def test_species_counts(emu, http):
    rows = get(http, emu, f"{NBIA_V4}/getSpeciesValuesAndCounts").json()
    assert [row["Species"] for row in rows] == ["Homo sapiens"] and rows[0]["Count"] > 1
