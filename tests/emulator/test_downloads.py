"""Downloads over real HTTP, checked with pydicom: the zips of both APIs, single images, MD5 lists, and the
agreement of every file with the metadata rows, ImageCount, getSeriesSize and getSOPInstanceUIDs."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pydicom
import pytest

from tests.emulator.conftest import (
    BRCA_150_SERIES,
    BRCA_150_SOP,
    BRCA_SERIES,
    GBM_SERIES,
    GBM_SOP,
    LEGACY,
    LIDC_DX,
    LUNG4D_SERIES,
    NBIA_V1,
    NBIA_V4,
    VICTRE_SERIES,
    get,
)

pytestmark = pytest.mark.integration

SERIES = [GBM_SERIES, BRCA_SERIES, LIDC_DX, LUNG4D_SERIES, VICTRE_SERIES, BRCA_150_SERIES]


def dicom_files(archive: zipfile.ZipFile) -> dict[str, bytes]:
    return {n: archive.read(n) for n in archive.namelist() if n.endswith(".dcm")}


def check_against_metadata(emu, http, uid: str, files: dict[str, bytes]) -> list[pydicom.Dataset]:
    """Every file is DICOM that agrees with the series' rows; returns the datasets in file order."""
    (row,) = get(http, emu, f"{NBIA_V1}/getSeries", SeriesInstanceUID=uid).json()
    (size,) = get(http, emu, f"{NBIA_V4}/getSeriesSize", SeriesInstanceUID=uid).json()
    sops = [r["SOPInstanceUID"] for r in get(http, emu, f"{NBIA_V4}/getSOPInstanceUIDs", SeriesInstanceUID=uid).json()]
    (study,) = get(http, emu, f"{NBIA_V1}/getPatientStudy", StudyInstanceUID=row["StudyInstanceUID"]).json()

    assert len(files) == row["ImageCount"] == size["ObjectCount"] == len(sops)
    assert sum(len(b) for b in files.values()) == size["TotalSizeInBytes"] == row["FileSize"]
    datasets = [pydicom.dcmread(io.BytesIO(raw)) for raw in files.values()]
    assert sorted(ds.SOPInstanceUID for ds in datasets) == sorted(sops)
    for ds in datasets:
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SeriesInstanceUID == uid
        assert ds.StudyInstanceUID == row["StudyInstanceUID"]
        assert ds.PatientID == row["PatientID"]
        assert ds.Modality == row["Modality"]
        assert int(ds.SeriesNumber) == row["SeriesNumber"]
        assert ds.get("BodyPartExamined", "") == row.get("BodyPartExamined", "").rstrip()
        assert ds.get("Manufacturer", "") == row.get("Manufacturer", "")
        assert ds.get("ManufacturerModelName", "") == row.get("ManufacturerModelName", "")
        assert ds.get("SeriesDescription", "") == row.get("SeriesDescription", "")
        assert ds.StudyDate == study["StudyDate"][:10].replace("-", "")
        pixels = ds.pixel_array
        assert pixels.shape == (ds.Rows, ds.Columns) and pixels.dtype == np.uint16
        assert pixels.std() > 20 and len(np.unique(pixels)) > 100  # a picture, not a flat field
    if len(datasets) > 2:
        ordered = sorted(datasets, key=lambda d: int(d.InstanceNumber))
        assert not np.array_equal(ordered[0].pixel_array, ordered[len(ordered) // 2].pixel_array)
    return datasets


@pytest.mark.parametrize("uid", SERIES)
def test_legacy_get_image(emu, http, uid):
    r = get(http, emu, f"{LEGACY}/getImage", SeriesInstanceUID=uid)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == "attachment; filename=bindaas-blob-download.zip"
    assert r.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in r.headers
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert all(n.endswith(".dcm") and "/" not in n for n in names)  # flat
    assert int(r.headers["imageCount"]) == len(names)
    check_against_metadata(emu, http, uid, dicom_files(archive))


@pytest.mark.parametrize("uid", SERIES)
@pytest.mark.parametrize("version", ["v4", "v1"])
def test_nbia_get_image(emu, http, uid, version):
    base = NBIA_V4 if version == "v4" else NBIA_V1
    r = get(http, emu, f"{base}/getImage", SeriesInstanceUID=uid)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{uid}.zip"'
    assert "Content-Length" not in r.headers
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[0] == "LICENSE" and b"Creative Commons" in archive.read("LICENSE")
    assert names[1:] == [f"{i:08d}.dcm" for i in range(1, len(names))]
    datasets = check_against_metadata(emu, http, uid, dicom_files(archive))
    assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"{NBIA_V4}/getImage", {"IncludeMD5": "Yes"}),
        (f"{NBIA_V4}/getImageWithMD5Hash", {}),
        (f"{NBIA_V1}/getImageWithMD5Hash", {}),
    ],
)
def test_md5_hashes(emu, http, path, params):
    r = get(http, emu, path, SeriesInstanceUID=LUNG4D_SERIES, **params)
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert names[0] == "LICENSE" and names[-1] == "md5hashes.csv"
    lines = archive.read("md5hashes.csv").decode().splitlines()
    assert lines[0] == "Filename,MD5Hash"
    hashes = dict(line.split(",") for line in lines[1:])
    files = dicom_files(archive)
    assert set(hashes) == set(files) and len(files) == 50
    assert all(hashlib.md5(files[n]).hexdigest() == h for n, h in hashes.items())


def test_md5_only_when_asked(emu, http):
    for path, params in (
        (f"{NBIA_V4}/getImage", {"IncludeMD5": "No"}),
        (f"{NBIA_V4}/getImage", {}),
        (f"{NBIA_V1}/getImage", {"IncludeMD5": "Yes"}),  # v1 has no IncludeMD5
        (f"{LEGACY}/getImage", {}),
    ):
        names = zipfile.ZipFile(
            io.BytesIO(get(http, emu, path, SeriesInstanceUID=LIDC_DX, **params).content)
        ).namelist()
        assert "md5hashes.csv" not in names, (path, params)


def test_new_file_names(emu, http):
    r = get(http, emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES, NewFileNames="Yes")
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names == ["LICENSE", *[f"1-{i:03d}.dcm" for i in range(1, 25)]]


def test_single_image(emu, http):
    name = "150.dcm"  # the seed's numbering, as in TCIApathfinder's capture
    r = get(http, emu, f"{LEGACY}/getSingleImage", SeriesInstanceUID=BRCA_150_SERIES, SOPInstanceUID=BRCA_150_SOP)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/dicom"
    assert r.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert pydicom.dcmread(io.BytesIO(r.content)).SOPInstanceUID == BRCA_150_SOP
    # The same bytes as in the series' zip, under the seed's numbering.
    legacy_zip = zipfile.ZipFile(
        io.BytesIO(get(http, emu, f"{LEGACY}/getImage", SeriesInstanceUID=BRCA_150_SERIES).content)
    )
    assert legacy_zip.read(name) == r.content

    for base in (NBIA_V4, NBIA_V1):
        r = get(http, emu, f"{base}/getSingleImage", SeriesInstanceUID=GBM_SERIES, SOPInstanceUID=GBM_SOP)
        assert r.headers["Content-Disposition"] == f"attachment; filename={GBM_SOP}.dcm"
        assert r.headers["Content-Length"] == str(len(r.content))
        ds = pydicom.dcmread(io.BytesIO(r.content))
        assert (ds.SOPInstanceUID, ds.PatientID) == (GBM_SOP, "TCGA-08-0244")
    wrong = get(http, emu, f"{NBIA_V4}/getSingleImage", SeriesInstanceUID=GBM_SERIES, SOPInstanceUID="1.2.3")
    assert wrong.status_code == 400
    assert (
        get(http, emu, f"{LEGACY}/getSingleImage", SeriesInstanceUID=GBM_SERIES, SOPInstanceUID="1.2").status_code
        == 404
    )
    assert get(http, emu, f"{LEGACY}/getImage", SeriesInstanceUID="1.2.3").status_code == 404


def test_head_and_keep_alive(emu, http):
    r = http.head(emu.url + f"{NBIA_V4}/getImage", params={"SeriesInstanceUID": GBM_SERIES}, timeout=10)
    assert r.status_code == 200 and r.content == b""
    # Several requests over one connection (HTTP/1.1 keep-alive, chunked bodies correctly terminated).
    for _ in range(3):
        assert zipfile.ZipFile(io.BytesIO(get(http, emu, f"{LEGACY}/getImage", SeriesInstanceUID=LIDC_DX).content))


def test_a_large_synthetic_series_streams(tcia_emulator, http):
    added = tcia_emulator.add_synthetic_series(24 * 1024 * 1024, rows=256, columns=256)
    uid = added["series_instance_uid"]
    count, total = added["image_count"], added["total_size"]
    # Whole 256x256 files, just enough of them to reach the size asked for.
    assert total >= 24 * 1024 * 1024 > total - total // count and total // count > 256 * 256 * 2
    url = tcia_emulator.url + f"{NBIA_V4}/getImage"
    with http.get(url, params={"SeriesInstanceUID": uid, "IncludeMD5": "Yes"}, stream=True, timeout=60) as r:
        body = io.BytesIO()
        for chunk in r.iter_content(1 << 20):
            body.write(chunk)
    archive = zipfile.ZipFile(body)
    assert archive.testzip() is None
    files = dicom_files(archive)
    assert len(files) == count and sum(map(len, files.values())) == total
    hashes = dict(line.split(",") for line in archive.read("md5hashes.csv").decode().splitlines()[1:])
    assert all(hashlib.md5(files[n]).hexdigest() == h for n, h in hashes.items())
    first, later = (pydicom.dcmread(io.BytesIO(files[n])) for n in ("00000001.dcm", "00000009.dcm"))
    assert first.SeriesInstanceUID == uid and first.pixel_array.shape == (256, 256)
    assert not np.array_equal(first.pixel_array, later.pixel_array)
    (row,) = http.get(tcia_emulator.url + f"{LEGACY}/getSeries", params={"SeriesInstanceUID": uid}, timeout=10).json()
    assert row["ImageCount"] == count and row["Collection"] == "SYNTHETIC-LARGE"
