"""getSimpleSearch's age, pixel-spacing, slice-thickness, description, phantom, exclude-commercial and time-point
criteria through the hook and the emulator, over HTTP: each narrows the result as NBIA's ``DICOMQueryHandlerImpl``
would, checked against the emulator's data computed here independently — the built-in catalogue, what was
published, and for pixel spacing and slice thickness the tags of the DICOM the emulator serves (getDicomTags)."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_tcia.api.simple_search import SimpleSearch
from airflow_provider_tcia.emulator.catalog import default_catalog
from airflow_provider_tcia.emulator.search import key_of

V4 = "/nbia-api/services/v4"
NON_COMMERCIAL = "Creative Commons Attribution-NonCommercial 4.0 International License"
NON_COMMERCIAL_URI = "https://creativecommons.org/licenses/by-nc/4.0/"


@pytest.fixture
def emulator(tcia_emulator_session):
    tcia_emulator_session.reset()
    tcia_emulator_session.clear_requests()
    yield tcia_emulator_session
    tcia_emulator_session.reset()  # (what a test published goes)


@pytest.fixture
def nbia(emulator, use_emulator):
    return use_emulator(emulator, "nbia", api_version="v4")


def _series_keys(rows) -> set[int]:
    return {r["SeriesIdentifier"] for r in rows}


def _post(emulator, form) -> requests.Response:
    return requests.post(emulator.url + f"{V4}/getSimpleSearch", data=form, timeout=30)


def _paging(start: int = 0, size: int = 100) -> list[tuple[str, str]]:
    return [("sortField", "subject"), ("sortDirection", "ascending"), ("start", str(start)), ("size", str(size))]


# --- patient age ------------------------------------------------------------------------------------------
def test_patient_age_range_in_whole_years_both_ends_included(nbia):
    catalog = default_catalog()
    ages = {s.study_instance_uid: s.patient_age for s in catalog.studies}
    everything = [s for s in catalog.series if ages.get(s.study_instance_uid)]
    years = {s.series_instance_uid: int(ages[s.study_instance_uid][:-1]) for s in everything}  # (all NNNY here)
    low, high = 50, 61  # (TCGA-GBM's 050Y and 061Y studies sit on the ends)
    expected = {key_of(uid) for uid, age in years.items() if low <= age <= high}
    rows = nbia.get_simple_search(SimpleSearch(patient_age_range=(low, high)))
    assert _series_keys(rows) == expected
    assert 0 < len(expected) < len(catalog.series)  # (it narrows: neither nothing nor everything)
    # a study without an age (LIDC-IDRI, VICTRE, CBIS-DDSM) never matches, whatever the range
    no_age = {s.collection for s in catalog.series if not ages.get(s.study_instance_uid)}
    wide = nbia.get_simple_search(SimpleSearch(patient_age_range=(0, 200)))
    assert no_age and not no_age & {r["Collection"] for r in wide}


def test_patient_age_in_months_and_weeks_is_rounded_down_to_years_days_never_match(emulator, nbia):
    ages = {"030M": 2, "155W": 2, "011M": 0, "400D": None, "002Y": 2}
    published = {age: emulator.publish("AGE-TEST", patient_age=age)["patient_id"] for age in ages}
    rows = nbia.get_simple_search(SimpleSearch(collections="AGE-TEST", patient_age_range=(2, 2)))
    assert {r["PatientID"] for r in rows} == {published[a] for a, years in ages.items() if years == 2}
    rows = nbia.get_simple_search(SimpleSearch(collections="AGE-TEST", patient_age_range=(0, 1)))
    assert {r["PatientID"] for r in rows} == {published["011M"]}


# --- pixel spacing and slice thickness: what the served DICOM says ----------------------------------------
def _served_tags(emulator, uid: str) -> dict[str, str]:
    rows = requests.get(emulator.url + f"{V4}/getDicomTags", params={"SeriesUID": uid}, timeout=30).json()
    return {r["element"]: r["data"] for r in rows}


@pytest.mark.parametrize("collection", ["LIDC-IDRI", "TCGA-BRCA"])
def test_pixel_spacing_and_slice_thickness_ranges_match_the_dicom_served(emulator, nbia, collection):
    uids = [s.series_instance_uid for s in default_catalog().series if s.collection == collection]
    tags = {uid: _served_tags(emulator, uid) for uid in uids}
    spacing = {uid: float(t["(0028,0030)"].split("\\")[0]) for uid, t in tags.items()}
    thickness = {uid: float(t["(0018,0050)"]) for uid, t in tags.items() if "(0018,0050)" in t}
    assert len(set(spacing.values())) > 1  # (so that a range can narrow)

    value = sorted(set(spacing.values()))[0]  # one exact value: both ends are included
    rows = nbia.get_simple_search(SimpleSearch(collections=collection, pixel_spacing_range=(value, value)))
    assert _series_keys(rows) == {key_of(uid) for uid, v in spacing.items() if v == value}
    assert 0 < len(rows) < len(uids)

    low, high = min(thickness.values()), max(thickness.values())
    rows = nbia.get_simple_search(SimpleSearch(collections=collection, slice_thickness_range=(low, high)))
    assert _series_keys(rows) == {key_of(uid) for uid in thickness}  # (a projection image has none: never)
    top = nbia.get_simple_search(SimpleSearch(collections=collection, slice_thickness_range=(high, 10_000)))
    assert _series_keys(top) == {key_of(uid) for uid, v in thickness.items() if v >= high}


# --- description ----------------------------------------------------------------------------------------------
def test_description_matches_any_word_in_study_or_series_description_or_protocol(nbia):
    catalog = default_catalog()
    studies = {s.study_instance_uid: s for s in catalog.studies}

    def texts(s):
        return [t.upper() for t in (studies[s.study_instance_uid].description, s.description, s.protocol) if t]

    def expected(*words: str) -> set[int]:
        return {key_of(s.series_instance_uid) for s in catalog.series if any(w in t for w in words for t in texts(s))}

    rows = nbia.get_simple_search(SimpleSearch(description="flair sag"))  # any word, case-insensitively
    assert _series_keys(rows) == expected("FLAIR", "SAG") and rows
    rows = nbia.get_simple_search(SimpleSearch(description='"ax t1"'))  # a quoted phrase is one word
    assert _series_keys(rows) == expected("AX T1") and rows
    assert expected("AX T1") < expected("AX", "T1")
    rows = nbia.get_simple_search(SimpleSearch(description="vibrant*phase"))  # * is a wildcard
    assert {r["PatientID"] for r in rows} == {"TCGA-OL-A5DA"}
    by_protocol = nbia.get_simple_search(SimpleSearch(description="ITV"))  # only 4D-Lung's protocol says so
    assert _series_keys(by_protocol) == expected("ITV") and {r["Collection"] for r in by_protocol} == {"4D-Lung"}


# --- phantom, exclude-commercial ----------------------------------------------------------------------------
def test_phantom_exclude_or_only(emulator, nbia):
    phantom = emulator.publish("PHANTOM-TEST", phantom=True)["patient_id"]
    person = emulator.publish("PHANTOM-TEST")["patient_id"]
    only = nbia.get_simple_search(SimpleSearch(collections="PHANTOM-TEST", phantom="only"))
    assert {r["PatientID"] for r in only} == {phantom}
    excluded = nbia.get_simple_search(SimpleSearch(collections="PHANTOM-TEST", phantom="exclude"))
    assert {r["PatientID"] for r in excluded} == {person}
    # NBIA's "0" (everything) and any other value filter nothing
    for value in ("0", "YES"):
        form = [("criteriaType0", "CollectionCriteria"), ("value0", "PHANTOM-TEST"),
                ("criteriaType1", "PhantomCriteria"), ("value1", value), *_paging()]  # fmt: skip
        assert _post(emulator, form).json()["totalPatients"] == 2


def test_exclude_commercial_leaves_out_non_commercial_licences(emulator, nbia):
    kept = emulator.publish("COMMERCIAL-OK")["patient_id"]
    emulator.publish("NON-COMMERCIAL", license_name=NON_COMMERCIAL, license_uri=NON_COMMERCIAL_URI)
    both = ["COMMERCIAL-OK", "NON-COMMERCIAL"]
    assert len(nbia.get_simple_search(SimpleSearch(collections=both))) == 2
    rows = nbia.get_simple_search(SimpleSearch(collections=both, exclude_commercial=True))
    assert [(r["Collection"], r["PatientID"]) for r in rows] == [("COMMERCIAL-OK", kept)]
    # only YES filters (DataLicenseCriteria): "true" is sent, and ignored
    form = [("criteriaType0", "CollectionCriteria"), ("value0", "NON-COMMERCIAL"),
            ("criteriaType1", "ExcludeCommercialCriteria"), ("value1", "true"), *_paging()]  # fmt: skip
    assert _post(emulator, form).json()["totalPatients"] == 1
    # every built-in collection is CC BY: nothing of the catalogue goes
    catalog_rows = nbia.get_simple_search(SimpleSearch(collections="TCGA-GBM", exclude_commercial=True))
    assert len(catalog_rows) == sum(1 for s in default_catalog().series if s.collection == "TCGA-GBM")


# --- time points ------------------------------------------------------------------------------------------------
def test_time_point_event_and_days_both_ends_included(emulator, nbia):
    studies = [("Diagnosis", 0), ("Diagnosis", 200), ("Diagnosis", -14), ("Surgery", 100), (None, None)]
    made = {}
    for event, days in studies:
        made[(event, days)] = emulator.publish("TIME-TEST", event_type=event, days_from_event=days)["patient_id"]

    def found(**criteria) -> set[str]:
        return {r["PatientID"] for r in nbia.get_simple_search(SimpleSearch(collections="TIME-TEST", **criteria))}

    def expected(event, low, high) -> set[str]:
        return {
            pid
            for (e, d), pid in made.items()
            if e == event and d is not None and (low is None or d >= low) and (high is None or d <= high)
        }

    for event, days in (("Diagnosis", (0, 200)), ("Diagnosis", (None, 0)), ("Diagnosis", (1, None)),
                        ("Surgery", (100, 100)), ("Surgery", (101, None))):  # fmt: skip
        assert found(time_point_event=event, time_point_days=days) == expected(event, *days)
    assert found(time_point_event="Diagnosis", time_point_days=(0, 200)) == {
        made[("Diagnosis", 0)],
        made[("Diagnosis", 200)],
    }


# --- NBIA's reading of the form -----------------------------------------------------------------------------------
def test_the_emulator_reads_the_new_criteria_as_searchutil_does(emulator):
    gbm = [("criteriaType0", "CollectionCriteria"), ("value0", "TCGA-GBM")]
    everyone = _post(emulator, [*gbm, *_paging()]).json()["totalPatients"]
    # of several range criteria of one type the last counts (DICOMQuery holds one)
    repeated = [*gbm, ("criteriaType1", "PatientAgeRangeCriteria"), ("from1", "0"), ("to1", "1"),
                ("criteriaType2", "PatientAgeRangeCriteria"), ("from2", "0"), ("to2", "200"), *_paging()]  # fmt: skip
    assert _post(emulator, repeated).json()["totalPatients"] == everyone
    # an empty end: NBIA writes no age condition
    empty = [*gbm, ("criteriaType1", "PatientAgeRangeCriteria"), ("from1", ""), ("to1", "1"), *_paging()]
    assert _post(emulator, empty).json()["totalPatients"] == everyone
    server_errors = [
        [("criteriaType1", "PixelSpacingRangeCriteria"), ("from1", "small"), ("to1", "1")],  # Double.parseDouble
        [("criteriaType1", "SliceThicknessRangeCriteria"), ("from1", "1")],  # no to1
        [("criteriaType1", "PatientAgeRangeCriteria"), ("to1", "1")],  # no from1
        [("criteriaType1", "TimePointCriteria"), ("fromDay1", "0")],  # no eventType1
        [("criteriaType1", "TimePointCriteria"), ("eventType1", "Diagnosis")],  # neither day
        [("criteriaType1", "TimePointCriteria"), ("eventType1", "Diagnosis"), ("toDay1", "1.5")],  # parseInt
        [("criteriaType1", "DescriptionCriteria")],  # no value1
    ]
    for fields in server_errors:
        answer = _post(emulator, [*gbm, *fields, *_paging()])
        assert (answer.status_code, answer.text) == (500, "Server was not able to process your request"), fields
