"""The scaled dataset: SCALE-100K's 100,000 series, generated on demand and streamed."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator

import pydicom
import pytest
import requests

from airflow_provider_tcia.api.jsonstream import iter_json_array
from airflow_provider_tcia.emulator import Emulator
from airflow_provider_tcia.emulator.dataset import ScaledCollection
from tests.emulator.conftest import LEGACY, NBIA_V4

pytestmark = pytest.mark.integration

SCALE = ScaledCollection.name


@pytest.fixture(scope="module")
def scaled() -> Iterator[Emulator]:
    with Emulator(dataset="scaled") as emulator:
        yield emulator


def get(emu: Emulator, path: str, **params: str) -> requests.Response:
    return requests.get(emu.url + path, params=params, timeout=120)


def test_one_hundred_thousand_series_streamed(scaled):
    with requests.get(scaled.url + f"{NBIA_V4}/getSeries", params={"Collection": SCALE}, stream=True, timeout=120) as r:
        assert r.status_code == 200
        assert r.headers["Transfer-Encoding"] == "chunked"  # too big to be buffered for a Content-Length
        count = 0
        uids = set()
        for row in iter_json_array(r.iter_content(1 << 16)):
            count += 1
            if count % 997 == 0:
                uids.add(row["SeriesInstanceUID"])
    assert count == 100_000 and len(uids) == 100_000 // 997


def test_the_scaled_collection_answers_every_query(scaled):
    assert {"Collection": SCALE} in get(scaled, f"{LEGACY}/getCollectionValues").json()
    assert get(scaled, f"{LEGACY}/getModalityValues", Collection=SCALE).json() == [
        {"Modality": m} for m in ("CR", "CT", "MR", "PT")
    ]
    patients = get(scaled, f"{LEGACY}/getPatient", Collection=SCALE).json()
    assert len(patients) == 10_000 and patients[42]["PatientID"] == "SCALE-00042"
    series = get(scaled, f"{LEGACY}/getSeries", Collection=SCALE, PatientID="SCALE-00042").json()
    assert len(series) == 10 and len({s["StudyInstanceUID"] for s in series}) == 2
    studies = get(scaled, f"{NBIA_V4}/getPatientStudy", Collection=SCALE, PatientID="SCALE-00042").json()
    assert [s["SeriesCount"] for s in studies] == [5, 5]
    by_study = get(scaled, f"{NBIA_V4}/getSeries", StudyInstanceUID=studies[1]["StudyInstanceUID"]).json()
    assert {s["PatientID"] for s in by_study} == {"SCALE-00042"} and len(by_study) == 5
    ct = get(scaled, f"{LEGACY}/PatientsByModality", Collection=SCALE, Modality="CT").json()
    assert len(ct) == 10_000
    # Patients p are released on 2016-01-01 + p // 10 days: the last ten after day 998.
    day = (dt.date(2016, 1, 1) + dt.timedelta(days=998)).isoformat()
    new = get(scaled, f"{LEGACY}/NewPatientsInCollection", Collection=SCALE, Date=day).json()
    assert [p["PatientID"] for p in new] == [f"SCALE-{p:05d}" for p in range(9990, 10_000)]
    assert len(get(scaled, f"{LEGACY}/NewStudiesInPatientCollection", Collection=SCALE, Date=day).json()) == 20
    assert get(scaled, f"{LEGACY}/getSeries", SeriesInstanceUID=ScaledCollection._SERIES_ROOT + "1100000").json() == []


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 12, 25, 37, 99_999])
def test_scaled_series_download_and_agree_with_their_size(scaled, index):
    uid = f"{ScaledCollection._SERIES_ROOT}{1_000_000 + index}"
    (size,) = get(scaled, f"{NBIA_V4}/getSeriesSize", SeriesInstanceUID=uid).json()
    archive = zipfile.ZipFile(io.BytesIO(get(scaled, f"{NBIA_V4}/getImage", SeriesInstanceUID=uid).content))
    files = [archive.read(n) for n in archive.namelist() if n.endswith(".dcm")]
    assert len(files) == size["ObjectCount"] == 1 + index % 3
    assert sum(map(len, files)) == size["TotalSizeInBytes"]
    ds = pydicom.dcmread(io.BytesIO(files[0]))
    (row,) = get(scaled, f"{LEGACY}/getSeries", SeriesInstanceUID=uid).json()
    assert (ds.SeriesInstanceUID, ds.Modality, ds.BodyPartExamined) == (uid, row["Modality"], row["BodyPartExamined"])


def test_the_default_dataset_has_no_scaled_collection(emu):
    assert {"Collection": SCALE} not in requests.get(emu.url + f"{LEGACY}/getCollectionValues", timeout=10).json()
