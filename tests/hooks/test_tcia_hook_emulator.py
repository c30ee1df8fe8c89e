"""TciaHook against the bundled emulator over real sockets: every method on both APIs, faults, secrecy."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import zipfile

import pytest

from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaCorruptPayloadError,
    TciaServerError,
)

KEY = "emulator-key-7f3a9c"
GBM_SERIES = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
GBM_SOP = "1.3.6.1.4.1.14519.5.2.1.7695.4001.254637948180506182312529390348"
# Every API generation the hook speaks, as (api, api_version).
APIS = [("legacy", "v2"), ("legacy", "v4"), ("nbia", "v4"), ("nbia", "v1")]


@pytest.fixture(params=APIS, ids=[f"{a}-{v}" for a, v in APIS])
def hook(request, use_emulator, tcia_emulator_session):
    tcia_emulator_session.reset()
    api, version = request.param
    return use_emulator(tcia_emulator_session, api, api_version=version)


def test_catalogue_values(hook):
    collections = {r["Collection"] for r in hook.get_collection_values()}
    assert {"TCGA-GBM", "TCGA-BRCA", "LIDC-IDRI"} <= collections
    assert {r["Modality"] for r in hook.get_modality_values(collection="TCGA-GBM")} >= {"MR"}
    assert "BRAIN" in {r["BodyPartExamined"] for r in hook.get_body_part_values(collection="TCGA-GBM", modality="MR")}
    manufacturers = {r["Manufacturer"] for r in hook.get_manufacturer_values(collection="TCGA-GBM", modality="MR")}
    assert {"GE MEDICAL SYSTEMS", "SIEMENS"} <= manufacturers


def test_patients_studies_series(hook):
    patients = hook.get_patient(collection="TCGA-GBM")
    ids = {p["PatientID"] for p in patients}  # NBIA's PatientId normalised
    assert {"TCGA-08-0244", "TCGA-06-6701"} <= ids
    assert all("PatientId" not in p for p in patients)
    assert {p["PatientID"] for p in hook.patients_by_modality("TCGA-GBM", "MR")} <= ids

    studies = hook.get_patient_study(collection="TCGA-GBM", patient_id="TCGA-08-0244")
    assert [s["StudyInstanceUID"] for s in studies] == [
        "1.3.6.1.4.1.14519.5.2.1.7695.4001.130563880911723253267280582465"
    ]
    series = hook.get_series(study_instance_uid=studies[0]["StudyInstanceUID"])
    assert GBM_SERIES in {s["SeriesInstanceUID"] for s in series}
    row = next(s for s in series if s["SeriesInstanceUID"] == GBM_SERIES)
    assert row["Modality"] == "MR" and row["Collection"] == "TCGA-GBM"
    assert isinstance(row["ImageCount"], int)

    size = hook.get_series_size(GBM_SERIES)
    assert size == [{"TotalSizeInBytes": size[0]["TotalSizeInBytes"], "ObjectCount": row["ImageCount"]}]
    sops = hook.get_sop_instance_uids(GBM_SERIES)
    assert len(sops) == row["ImageCount"] and GBM_SOP in {s["SOPInstanceUID"] for s in sops}


def test_no_match_is_an_empty_list(hook):
    assert hook.get_series(collection="NO-SUCH-COLLECTION") == []
    assert hook.get_patient(collection="NO-SUCH-COLLECTION") == []


def test_shared_list(hook):
    rows = hook.get_shared_list("sharedListApiUnitTest")
    assert rows and all(r["SeriesInstanceUID"] for r in rows)
    assert hook.get_shared_list("sharedListApiUnitTest", format="csv").startswith('"SeriesInstanceUID"')


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_text_formats(hook, fmt):
    text = hook.get_patient(collection="TCGA-GBM", format=fmt)
    assert "TCGA-08-0244" in text
    first = {"csv": '"Patient', "xml": "<?xml", "html": "<P ALIGN='center'><TABLE"}[fmt]
    assert text.startswith(first)


def test_iter_rows_and_iter_text_stream(hook):
    rows = list(hook.iter_rows("getSeries", collection="TCGA-BRCA"))
    assert len(rows) == len(hook.get_series(collection="TCGA-BRCA")) > 5
    body = b"".join(hook.iter_text("getSeries", format="json", collection="TCGA-BRCA"))
    assert len(json.loads(body)) == len(rows)


def test_metadata(hook):
    metadata = hook.get_metadata("getSeries")
    assert metadata["QueryName"] == "getSeries"
    names = [a["Name"] for a in metadata["Result"]["Attributes"]]
    assert "SeriesInstanceUID" in names and "ImageCount" in names
    assert {p["Name"] for p in metadata["Parameters"]} >= {"Collection", "PatientID", "SeriesInstanceUID"}


def test_download_series_zip(hook):
    with hook.stream_image(GBM_SERIES) as stream:
        assert KEY not in stream.url
        data = b"".join(stream)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        dicoms = [n for n in archive.namelist() if n.endswith(".dcm")]
        expected_count = hook.get_series_size(GBM_SERIES)[0]["ObjectCount"]
        assert len(dicoms) == expected_count
        assert ("md5hashes.csv" in archive.namelist()) == stream.md5_included
        assert stream.md5_included == (hook.config.generation.name == "nbia")


def test_download_single_image(hook):
    with hook.stream_single_image(GBM_SERIES, GBM_SOP) as stream:
        data = b"".join(stream)
    assert data[128:132] == b"DICM"
    assert GBM_SOP.encode() in data


def test_md5_of_a_single_image(hook):
    """NBIA's getMD5HashForImage (v1: getM5HashForImage) is the MD5 of what getSingleImage sends; the seed API
    has none, and says so before sending anything."""
    if hook.config.generation.name == "legacy":
        with pytest.raises(TciaBadRequestError, match=r"getMD5HashForImage is served only by NBIA.*api=nbia"):
            hook.get_md5_hash_for_image(GBM_SOP)
        return
    with hook.stream_single_image(GBM_SERIES, GBM_SOP) as stream:
        data = b"".join(stream)
    assert hook.get_md5_hash_for_image(GBM_SOP) == hashlib.md5(data).hexdigest()
    assert hook.get_md5_hash_for_image("1.2.3.4") is None  # (NBIA answers nothing for an image it has not)
    with pytest.raises(TciaBadRequestError, match="is not a DICOM UID"):
        hook.get_md5_hash_for_image("1.2.x")


def test_aquery_matches_query(hook):
    async_rows = asyncio.run(hook.aquery("getPatientStudy", collection="TCGA-GBM"))
    assert async_rows == hook.get_patient_study(collection="TCGA-GBM")


# --- the same DAG against either API ------------------------------------------------------------------
def test_both_apis_agree_on_new_studies(use_emulator, tcia_emulator_session):
    """`date` means "added after" everywhere, whichever format and inclusivity each API has."""
    tcia_emulator_session.reset()
    found = {}
    for api, version in APIS:
        hook = use_emulator(tcia_emulator_session, api, api_version=version)
        for date in ("2011-02-01", "2014-09-10", "2019-07-21"):
            rows = hook.new_studies_in_patient_collection("TCGA-GBM", date)
            found.setdefault(date, []).append(sorted(r["StudyInstanceUID"] for r in rows))
        patients = hook.new_patients_in_collection("TCGA-GBM", "2014-09-09")
        found.setdefault("patients", []).append(sorted(p["PatientID"] for p in patients))
    for date, answers in found.items():
        assert all(a == answers[0] for a in answers), (date, answers)
    assert found["2019-07-21"][0]  # something was released after that date...
    assert len(found["2011-02-01"][0]) > len(found["2019-07-21"][0])  # ...and more after an earlier one


def test_publishing_shows_up_as_new(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia")
    assert hook.new_studies_in_patient_collection("TCGA-GBM", "2025-01-01") == []
    published = tcia_emulator.publish("TCGA-GBM", released="2026-11-01", series_count=2)
    rows = hook.new_studies_in_patient_collection("TCGA-GBM", "2025-01-01")
    assert [r["StudyInstanceUID"] for r in rows] == [published["study_instance_uid"]]
    series = hook.get_series(study_instance_uid=published["study_instance_uid"])
    assert sorted(s["SeriesInstanceUID"] for s in series) == sorted(published["series_instance_uids"])


# --- faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["legacy", "nbia"])
@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("server_error", {"status": 500}),
        ("server_error", {"status": 502}),
        ("server_error", {"status": 503}),
        ("server_error", {"status": 504}),
        ("rate_limit", {"retry_after": 0}),
        ("html_error", {}),
        ("reset", {}),
        ("truncate", {}),
    ],
)
def test_transient_faults_are_retried(use_emulator, tcia_emulator, api, kind, options):
    hook = use_emulator(tcia_emulator, api)
    expected = hook.get_series(collection="TCGA-GBM")
    last = tcia_emulator.requests()[-1]["id"]
    tcia_emulator.inject_fault("getSeries", kind, count=2, **options)
    assert hook.get_series(collection="TCGA-GBM") == expected
    # Two faulted answers, then the good one: the hook really met the faults and tried again.
    assert [bool(r["fault"]) for r in tcia_emulator.requests(since=last)] == [True, True, False]


def test_empty_body_is_retried_on_the_seed_api(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "legacy")
    expected = hook.get_patient(collection="TCGA-GBM")
    tcia_emulator.inject_fault("getPatient", "empty_body", count=1)
    assert hook.get_patient(collection="TCGA-GBM") == expected


def test_persistent_failure_ends_with_a_clear_error(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "legacy", max_retries=2)
    tcia_emulator.inject_fault("getSeries", "server_error", count=10, status=503)
    with pytest.raises(
        TciaServerError, match=r"getSeries\(Collection='TCGA-GBM'.*failed after 3 tries; last: HTTP 503"
    ):
        hook.get_series(collection="TCGA-GBM")


def test_html_page_forever_is_a_corrupt_payload(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia", max_retries=1)
    tcia_emulator.inject_fault("getSeries", "html_error", count=10)
    with pytest.raises(TciaCorruptPayloadError, match="expected JSON but the body begins"):
        hook.get_series(collection="TCGA-GBM")


def test_download_faults_while_opening_are_retried(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia")
    tcia_emulator.inject_fault("getImage", "server_error", count=1, status=502)
    tcia_emulator.inject_fault("getImage", "html_error", count=1)
    with hook.stream_image(GBM_SERIES) as stream:
        data = b"".join(stream)
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None


def test_unknown_series_download_is_not_retried(use_emulator, tcia_emulator):
    # NBIA answers 400 ("not been granted the access to image with given SeriesInstanceUID") for a series it
    # does not serve: a bad request, raised at once.
    hook = use_emulator(tcia_emulator, "nbia")
    before = len(tcia_emulator.requests())
    expected = r"HTTP 400 .*SeriesInstanceUID,1\.2\.3\.4\.5\.6\.7\.8\.9"
    with pytest.raises(TciaBadRequestError, match=expected), hook.stream_image("1.2.3.4.5.6.7.8.9") as stream:
        b"".join(stream)
    assert len(tcia_emulator.requests()) == before + 1


def test_async_side_retries_too(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia")
    tcia_emulator.inject_fault("NewStudiesInPatientCollection", "server_error", count=2, status=503)
    rows = asyncio.run(hook.aquery("NewStudiesInPatientCollection", collection="TCGA-GBM", date="2011-01-01"))
    assert rows


# --- the key -----------------------------------------------------------------------------------------
@pytest.mark.tcia_emulator(api_key=KEY)
@pytest.mark.parametrize("location", ["header", "query"])
def test_key_is_sent_and_never_shown(use_emulator, tcia_emulator, caplog, capsys, location):
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3.connectionpool", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    hook = use_emulator(tcia_emulator, "legacy", key_location=location)
    assert hook.get_collection_values()
    assert asyncio.run(hook.aquery("getCollectionValues"))
    sync_request, async_request = tcia_emulator.requests()[-2:]
    for logged in (sync_request, async_request):
        assert logged["status"] == 200  # the emulator accepted the key
        if location == "header":
            assert logged["headers"]["api_key"] == "***"
        else:
            assert ["api_key", "***"] in logged["query"] and "api_key" not in logged["headers"]

    tcia_emulator.inject_fault("getSeries", "server_error", count=10, status=500)
    with pytest.raises(TciaServerError) as info:
        use_emulator(tcia_emulator, "legacy", key_location=location, max_retries=1).get_series()
    out, err = capsys.readouterr()
    everything = caplog.text + out + err + str(info.value) + repr(info.value)
    assert "TCIA getCollectionValues: GET" in everything  # the hook did log its requests
    assert KEY not in everything


@pytest.mark.tcia_emulator(api_key=KEY)
def test_missing_or_wrong_key_is_an_auth_error(use_emulator, tcia_emulator):
    with pytest.raises(TciaAuthError, match="HTTP 401"):
        use_emulator(tcia_emulator, "legacy", api_key="").get_collection_values()
    before = len(tcia_emulator.requests())
    with pytest.raises(TciaAuthError) as info:
        use_emulator(tcia_emulator, "legacy", api_key="wrong-key-123").get_collection_values()
    assert len(tcia_emulator.requests()) == before + 1  # not retried
    assert "wrong-key-123" not in str(info.value)
    # The async side (triggers) judges answers the same way: raised at once, not retried.
    wrong = use_emulator(tcia_emulator, "legacy", api_key="wrong-key-123")
    before = len(tcia_emulator.requests())
    with pytest.raises(TciaAuthError, match="HTTP 401"):
        asyncio.run(wrong.aquery("getCollectionValues"))
    assert len(tcia_emulator.requests()) == before + 1


def test_test_connection_against_the_emulator(use_emulator, tcia_emulator):
    ok, message = use_emulator(tcia_emulator, "nbia").test_connection()
    assert ok and tcia_emulator.url in message and "collections" in message
