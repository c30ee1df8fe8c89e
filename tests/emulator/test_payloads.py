"""The payload writers on their own: the DICOM writer (read back by pydicom) and the streaming zip
(including its zip64 records, forced with low limits)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest

from airflow_provider_tcia.emulator.dicom import SOP_CLASSES, SeriesTemplate
from airflow_provider_tcia.emulator.zipstream import ZipEntry, iter_zip, zip_size

ATTRS = {
    "PatientID": "TCGA-08-0244",
    "PatientName": "TCGA-08-0244",
    "StudyInstanceUID": "1.2.3",
    "SeriesInstanceUID": "1.2.3.4",
    "Modality": "CT",
    "SeriesNumber": "3000566",
    "StudyDate": "20011121",
    "BodyPartExamined": "CHEST",
    "SeriesDescription": "P4^P100^S100^I0, Gated, 0.0%",
}


def test_dicom_files_read_back():
    template = SeriesTemplate(ATTRS, rows=48, columns=80, slices=10)
    raw = b"".join(template.file_parts("1.2.3.4.5", 7))
    assert len(raw) == template.file_size("1.2.3.4.5", 7)
    ds = pydicom.dcmread(io.BytesIO(raw))
    assert ds.preamble == b"\0" * 128
    assert ds.file_meta.MediaStorageSOPClassUID == SOP_CLASSES["CT"] == ds.SOPClassUID
    assert (ds.SOPInstanceUID, int(ds.InstanceNumber), ds.SeriesNumber) == ("1.2.3.4.5", 7, 3000566)
    for keyword, value in ATTRS.items():
        if keyword != "SeriesNumber":
            assert str(ds.data_element(keyword).value) == value, keyword
    pixels = ds.pixel_array
    assert pixels.shape == (48, 80) and pixels.max() <= 4095
    assert len(np.unique(pixels)) > 20  # an image, not a flat field


def test_frames_change_with_the_slice_and_are_cached():
    template = SeriesTemplate(ATTRS, slices=8)
    frames = [template.pixels(k) for k in range(8)]
    assert len(set(frames)) == 8
    assert template.pixels(3) is frames[3]


def test_unknown_keywords_are_refused():
    with pytest.raises(ValueError, match="not series-level"):
        SeriesTemplate({"SOPInstanceUID": "1.2"}).header("1.2", 1)


@pytest.mark.parametrize(("zip64_limit", "count_limit"), [(0xFFFFFFFF, 0xFFFF), (64, 3), (0, 0)])
def test_zip_stream(zip64_limit, count_limit):
    entries = [ZipEntry(f"{i:08d}.dcm", [b"head", bytes([i]) * (i * 37)]) for i in range(1, 8)]
    data = b"".join(iter_zip(iter(entries), zip64_limit=zip64_limit, count_limit=count_limit))
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist() == [e.name for e in entries]
    for entry in entries:
        assert archive.read(entry.name) == b"".join(entry.parts)
        assert archive.getinfo(entry.name).compress_type == zipfile.ZIP_STORED
    if zip64_limit == 0xFFFFFFFF:
        assert len(data) == zip_size([(e.name, sum(map(len, e.parts))) for e in entries])
    else:
        assert b"PK\x06\x06" in data and b"PK\x06\x07" in data  # zip64 end record and locator


def test_zip_entries_are_consumed_lazily():
    produced = []

    def entries():
        for i in range(3):
            produced.append(i)
            yield ZipEntry(f"f{i}", [b"x"])

    stream = iter_zip(entries())
    next(stream)
    assert produced == [0]
