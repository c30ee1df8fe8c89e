"""Publishing, resetting and the request log, through the Python API and through the admin endpoints
(:class:`RemoteControl`, as a demo driving an emulator in another process would)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pydicom
import pytest
import requests

from airflow_provider_tcia.emulator import EmulatorControlError, RemoteControl
from tests.emulator.conftest import BRCA_STUDY, GBM_SERIES, LEGACY, NBIA_V1, NBIA_V4

pytestmark = pytest.mark.integration

TODAY = dt.date.today()
YESTERDAY = TODAY - dt.timedelta(days=1)


@pytest.fixture(params=["python", "http"])
def control(request, tcia_emulator):
    """The emulator's control API, in-process or over its admin endpoints."""
    return tcia_emulator if request.param == "python" else RemoteControl(tcia_emulator.url)


def get(emu, path: str, **params: str) -> requests.Response:
    return requests.get(emu.url + path, params=params, timeout=30)


def test_publish_a_new_patient_and_see_it_as_new(tcia_emulator, control):
    emu = tcia_emulator
    before = get(emu, f"{LEGACY}/NewPatientsInCollection", Collection="TCGA-BRCA", Date=YESTERDAY.isoformat())
    assert before.json() == []
    published = control.publish("TCGA-BRCA", series_count=2, modality="MR", body_part="BREAST", image_count=3)
    assert published["collection"] == "TCGA-BRCA" and published["released"] == TODAY.isoformat()
    patient, study = published["patient_id"], published["study_instance_uid"]
    assert len(published["series_instance_uids"]) == 2

    legacy = get(emu, f"{LEGACY}/NewPatientsInCollection", Collection="TCGA-BRCA", Date=YESTERDAY.isoformat())
    assert [p["PatientID"] for p in legacy.json()] == [patient]
    v1 = get(emu, f"{NBIA_V1}/NewPatientsInCollection", Collection="TCGA-BRCA", Date=YESTERDAY.strftime("%Y/%m/%d"))
    assert [p["PatientId"] for p in v1.json()] == [patient]
    v4 = get(
        emu, f"{NBIA_V4}/NewStudiesInPatientCollection", Collection="TCGA-BRCA", fromDate=TODAY.strftime("%m-%d-%Y")
    )
    assert [(s["PatientID"], s["StudyInstanceUID"], s["SeriesCount"]) for s in v4.json()] == [(patient, study, 2)]

    series = get(emu, f"{NBIA_V4}/getSeries", PatientID=patient).json()
    assert [s["SeriesInstanceUID"] for s in series] == published["series_instance_uids"]
    assert {s["Modality"] for s in series} == {"MR"} and {s["ImageCount"] for s in series} == {3}
    archive = zipfile.ZipFile(
        io.BytesIO(get(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=series[0]["SeriesInstanceUID"]).content)
    )
    ds = pydicom.dcmread(io.BytesIO(archive.read("00000003.dcm")))
    assert (ds.PatientID, ds.StudyInstanceUID, ds.BodyPartExamined) == (patient, study, "BREAST")


def test_publish_into_an_existing_study_and_in_the_past(tcia_emulator, control):
    emu = tcia_emulator
    count = get(emu, f"{LEGACY}/getPatientStudy", StudyInstanceUID=BRCA_STUDY).json()[0]["SeriesCount"]
    control.publish("TCGA-BRCA", patient_id="TCGA-AR-A1AQ", study_instance_uid=BRCA_STUDY, released="2022-02-02")
    assert get(emu, f"{LEGACY}/getPatientStudy", StudyInstanceUID=BRCA_STUDY).json()[0]["SeriesCount"] == count + 1
    new = get(emu, f"{LEGACY}/NewStudiesInPatientCollection", Collection="TCGA-BRCA", Date="2022-02-01").json()
    assert [s["StudyInstanceUID"] for s in new] == [BRCA_STUDY]
    assert get(emu, f"{LEGACY}/NewStudiesInPatientCollection", Collection="TCGA-BRCA", Date="2022-02-02").json() == []
    # A brand-new collection appears in the collection list.
    control.publish("NEW-COLLECTION", patient_id="NC-1")
    assert {"Collection": "NEW-COLLECTION"} in get(emu, f"{LEGACY}/getCollectionValues").json()


def test_reset_returns_to_the_initial_state(tcia_emulator, control):
    emu = tcia_emulator
    initial = get(emu, f"{NBIA_V4}/getSeries").json()
    control.publish("TCGA-GBM")
    control.add_synthetic_series(1_000_000)
    control.inject_fault("getSeries", kind="server_error")
    assert control.faults() and control.requests()
    control.reset()
    assert control.faults() == [] and control.requests() == []
    assert get(emu, f"{NBIA_V4}/getSeries").json() == initial
    # Identifiers published after a reset are the same as the first time: deterministic.
    first = control.publish("TCGA-GBM")
    control.reset()
    assert control.publish("TCGA-GBM") == first


def test_the_request_log(tcia_emulator, control):
    emu = tcia_emulator
    requests.get(
        emu.url + f"{LEGACY}/getSeries",
        params={"Collection": "TCGA-GBM", "api_key": "q-secret"},
        headers={"api_key": "h-secret", "X-Trace": "abc"},
        timeout=10,
    )
    requests.post(emu.url + f"{NBIA_V4}/getSeriesMetadata", data={"list": GBM_SERIES}, timeout=10)
    requests.get(emu.url + "/nope", timeout=10)
    control.info()  # admin requests are not logged
    log = control.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", f"{LEGACY}/getSeries", 200),
        ("POST", f"{NBIA_V4}/getSeriesMetadata", 200),
        ("GET", "/nope", 404),
    ]
    first = log[0]
    assert first["query"] == [["Collection", "TCGA-GBM"], ["api_key", "***"]]
    assert first["headers"]["api_key"] == "***" and first["headers"]["X-Trace"] == "abc"
    assert (first["api"], first["endpoint"], first["fault"]) == ("legacy", "getSeries", None)
    assert "secret" not in repr(log)
    assert [e["id"] for e in control.requests(since=log[0]["id"])] == [log[1]["id"], log[2]["id"]]
    control.clear_requests()
    assert control.requests() == []


def test_synthetic_series(tcia_emulator, control):
    added = control.add_synthetic_series(3_000_000, collection="BENCH", rows=128, columns=128, modality="MR")
    assert added["collection"] == "BENCH" and added["total_size"] >= 3_000_000
    (size,) = get(tcia_emulator, f"{NBIA_V4}/getSeriesSize", SeriesInstanceUID=added["series_instance_uid"]).json()
    assert size == {"TotalSizeInBytes": added["total_size"], "ObjectCount": added["image_count"]}


def test_revise_a_series(tcia_emulator, control):
    """A revision keeps the SeriesInstanceUID and changes its files, its dates and (if asked) its image count."""
    emu = tcia_emulator
    (before,) = get(emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=GBM_SERIES).json()
    old_zip = get(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES).content
    revised = control.revise(GBM_SERIES, released="2030-01-02", image_count=before["ImageCount"] + 1)
    assert revised["revision"] == 1 and revised["released"] == revised["submitted"] == "2030-01-02"
    (after,) = get(emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=GBM_SERIES).json()
    assert (after["DateReleased"], after["MaxSubmissionTimestamp"]) == ("01-02-2030", "01-02-2030")
    assert after["ImageCount"] == before["ImageCount"] + 1 and after["FileSize"] != before["FileSize"]
    (legacy,) = get(emu, f"{LEGACY}/getSeries", SeriesInstanceUID=GBM_SERIES).json()
    assert legacy["ImageCount"] == after["ImageCount"]
    new_zip = zipfile.ZipFile(io.BytesIO(get(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES).content))
    assert len([n for n in new_zip.namelist() if n.endswith(".dcm")]) == after["ImageCount"]
    # The same files again (same count, same names), but other pixels: a second revision on another day.
    again = control.revise(GBM_SERIES, released="2030-01-03", submitted="2030-01-04")
    assert again["revision"] == 2 and again["image_count"] == after["ImageCount"]
    third = zipfile.ZipFile(io.BytesIO(get(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES).content))
    assert third.namelist() == new_zip.namelist()
    assert all(third.read(n) != new_zip.read(n) for n in third.namelist() if n.endswith(".dcm"))
    assert zipfile.ZipFile(io.BytesIO(old_zip)).namelist() != third.namelist()
    (latest,) = get(emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=GBM_SERIES).json()
    assert (latest["DateReleased"], latest["MaxSubmissionTimestamp"]) == ("01-03-2030", "01-04-2030")
    control.reset()
    assert get(emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=GBM_SERIES).json() == [before]


def test_info_and_api_key(tcia_emulator, control):
    info = control.info()
    assert info["dataset"] == "default" and info["api_key_required"] is False
    assert "TCGA-GBM" in info["collections"]
    control.set_api_key("abc")
    assert get(tcia_emulator, f"{LEGACY}/getCollectionValues").status_code == 401
    assert control.info()["api_key_required"] is True
    control.set_api_key(None)
    assert get(tcia_emulator, f"{LEGACY}/getCollectionValues").status_code == 200


def test_refused_control_calls(tcia_emulator, control):
    error = ValueError if control is tcia_emulator else EmulatorControlError
    with pytest.raises(error):
        control.inject_fault("getSeries", kind="meteor")
    with pytest.raises(error):
        control.publish("TCGA-GBM", released="yesterday")
    with pytest.raises(error):
        control.add_synthetic_series(0)
    with pytest.raises(error, match="no series"):
        control.revise("1.2.3.4")
    with pytest.raises(error):
        control.revise(GBM_SERIES, image_count=0)
    with pytest.raises((TypeError, EmulatorControlError)):
        control.publish("TCGA-GBM", colour="red")


def test_admin_endpoints_errors(tcia_emulator):
    url = tcia_emulator.url + "/_emulator"
    assert requests.get(url + "/nothing", timeout=10).status_code == 404
    r = requests.post(url + "/publish", data="[1, 2]", timeout=10)
    assert r.status_code == 400 and "error" in r.json()
    assert requests.post(url + "/publish", json={}, timeout=10).status_code == 400
    assert requests.post(url + "/series", json={}, timeout=10).status_code == 400
    assert requests.post(url + "/revise", json={}, timeout=10).status_code == 400
    assert requests.post(url + "/faults", json={"kind": "truncate", "after_bytes": -1}, timeout=10).status_code == 400


def test_remote_control_of_an_unreachable_emulator():
    with pytest.raises(EmulatorControlError, match="cannot reach"):
        RemoteControl("http://127.0.0.1:9", timeout=2).info()
