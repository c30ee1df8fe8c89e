"""Where downloads land and how they are read back: :func:`verified_series` finds the series whose manifest still
vouches for them, in either layout, nested or not; :func:`dicom_members` opens a series' DICOM files whichever
layout it was stored in, never a sidecar."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from airflow_provider_tcia.downloads.inputs import SeriesRef
from airflow_provider_tcia.downloads.layout import (
    DownloadPlan,
    data_name,
    dicom_members,
    image_path,
    verified_series,
)
from airflow_provider_tcia.downloads.series import SeriesDownloader
from airflow_provider_tcia.downloads.verify.contents import SIDECARS, is_dicom_name
from airflow_provider_tcia.storage import as_path
from tests.downloads.test_series import NBIA_IMAGE, UID, UID2, dicom, downloader, series_zip, use

STUDY = "1.3.6.1.4.1.14519.5.2.1.9999.100"


def download(monkeypatch, requests_mock, tmp_path, *, layout: str, nested: bool = False, uids=(UID,)) -> None:
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    refs = [SeriesRef(uid, patient_id="P-1", study_instance_uid=STUDY, image_count=3) for uid in uids]
    downloader(use(monkeypatch), tmp_path, layout=layout, nested=nested).run(refs)


def read_all(location) -> dict[str, bytes]:
    with dicom_members(location) as members:
        return {name: _read(opener) for name, opener in members}


def _read(opener) -> bytes:
    with opener() as fh:
        return fh.read()


def test_plan_and_image_paths():
    root = as_path("file:///data/out")
    ref = SeriesRef(UID, patient_id="P-1", study_instance_uid=STUDY)
    assert str(DownloadPlan(root).data_path(ref)) == f"file:///data/out/{UID}.zip"
    assert str(DownloadPlan(root, "extract", nested=True).data_path(ref)) == f"file:///data/out/P-1/{STUDY}/{UID}"
    assert str(DownloadPlan(root).manifest_path(ref)) == f"file:///data/out/{UID}.manifest.json"
    assert data_name(UID, "zip") == f"{UID}.zip" and data_name(UID, "extract") == UID
    assert str(image_path(root, UID, "1.2.3")) == f"file:///data/out/{UID}/1.2.3.dcm"


@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("layout", ["zip", "extract"])
def test_verified_series_and_their_dicom_files_in_either_layout(monkeypatch, requests_mock, tmp_path, layout, nested):
    download(monkeypatch, requests_mock, tmp_path, layout=layout, nested=nested, uids=(UID, UID2))
    root = f"file://{tmp_path}/out"
    found = verified_series(root)
    folder = f"{root}/P-1/{STUDY}" if nested else root
    assert [str(p) for p in found] == [f"{folder}/{data_name(uid, layout)}" for uid in (UID, UID2)]
    for location in (found[0], str(found[0])):  # an ObjectStoragePath or the operator's ``path`` string
        files = read_all(location)
        assert files == {f"{i:08d}.dcm": dicom(i) for i in (1, 2, 3)}  # LICENSE and md5hashes.csv never listed


def test_a_series_counts_only_while_its_manifest_vouches_for_it(monkeypatch, requests_mock, tmp_path):
    download(monkeypatch, requests_mock, tmp_path, layout="extract", uids=(UID, UID2))
    out = tmp_path / "out"
    (out / f"{UID}.manifest.json").unlink()  # no manifest: not (yet) verified
    (out / UID2 / "00000002.dcm").write_bytes(b"cut")  # stored data no longer what was verified
    assert verified_series(f"file://{out}") == []


def test_partial_objects_and_hidden_folders_are_ignored(monkeypatch, requests_mock, tmp_path):
    download(monkeypatch, requests_mock, tmp_path, layout="extract")
    out = tmp_path / "out"
    # A download in flight (a temporary folder) and a hidden folder holding a copy of a finished series.
    partial = out / f".{UID2}.partial-0123456789ab"
    partial.mkdir()
    (partial / "00000001.dcm").write_bytes(dicom(1))
    hidden = out / ".trash"
    shutil.copytree(out / UID, hidden / UID)  # (copy2: the same modification times, so the manifest vouches)
    shutil.copy2(out / f"{UID}.manifest.json", hidden / f"{UID}.manifest.json")
    assert [p.name for p in verified_series(f"file://{hidden}")] == [UID]  # a complete copy, once looked at
    (out / UID / ".cache").mkdir()
    (out / UID / ".cache" / "00000009.dcm").write_bytes(dicom(9))
    (out / UID / ".00000004.dcm.partial-0123456789ab").write_bytes(dicom(4))
    assert [str(p) for p in verified_series(f"file://{out}")] == [f"file://{out}/{UID}"]
    assert sorted(read_all(f"file://{out}/{UID}")) == ["00000001.dcm", "00000002.dcm", "00000003.dcm"]


def test_nothing_under_a_root_that_does_not_exist(tmp_path):
    assert verified_series(f"file://{tmp_path}/nowhere") == []


@pytest.mark.parametrize("name", ["LICENSE", "license.txt", "MD5HASHES.CSV", "sub/md5hashes.csv", "folder/"])
def test_a_sidecar_is_never_a_dicom_file(name):
    assert not is_dicom_name(name)
    assert is_dicom_name("00000001.dcm") and is_dicom_name("LICENSE.dcm")
    assert {"license", "license.txt", "md5hashes.csv"} <= SIDECARS


def test_a_sidecar_is_never_opened_as_dicom(tmp_path):
    """Whatever its case, in a zip or in a folder: the one sidecar list the verifier goes by."""
    with zipfile.ZipFile(tmp_path / f"{UID}.zip", "w") as zf:
        for name in ("LICENSE", "License.txt", "MD5Hashes.csv", "00000001.dcm"):
            zf.writestr(name, dicom(1) if name.endswith(".dcm") else b"not DICOM")
    assert list(read_all(f"file://{tmp_path}/{UID}.zip")) == ["00000001.dcm"]
    folder = tmp_path / UID
    folder.mkdir()
    for name in ("LICENSE", "license.TXT", "md5hashes.csv", "00000001.dcm"):
        (folder / name).write_bytes(dicom(1) if name.endswith(".dcm") else b"not DICOM")
    assert list(read_all(f"file://{folder}")) == ["00000001.dcm"]


def test_on_s3_in_either_layout(monkeypatch, requests_mock, s3_bucket):
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    for layout in ("zip", "extract"):
        destination = as_path(f"{s3_bucket}/{layout}")
        plan = DownloadPlan(destination, layout)
        SeriesDownloader(use(monkeypatch), plan, progress_interval=0).run([SeriesRef(UID, image_count=3)])
        [found] = verified_series(destination)
        assert found.path == plan.data_path(SeriesRef(UID)).path
        assert read_all(found) == {f"{i:08d}.dcm": dicom(i) for i in (1, 2, 3)}
