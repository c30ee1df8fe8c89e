"""The whole-file fallback: a zip the streaming verifier cannot follow is checked through its central directory."""

from __future__ import annotations

import io
import zipfile

import pytest

from airflow_provider_tcia.downloads.verify.contents import check_contents
from airflow_provider_tcia.downloads.verify.fallback import verify_zip_file
from airflow_provider_tcia.exceptions import ZipVerificationError
from tests.downloads.verify.zips import FILES, MemorySink, feed, make_zip


def test_unsupported_method_falls_back_to_the_central_directory():
    data = make_zip(FILES, method=zipfile.ZIP_BZIP2)
    verifier = feed(data, 1000)
    assert verifier.fallback_reason and "compression method 12" in verifier.fallback_reason
    with pytest.raises(RuntimeError):
        verifier.finish()
    sink = MemorySink()
    report = verify_zip_file(io.BytesIO(data), sink=sink)
    assert sink.files == FILES
    assert report.zip_bytes == len(data)
    assert check_contents(report, expected_count=3).dicom_entries[0].name == "00000001.dcm"


def test_fallback_catches_corruption():
    data = bytearray(make_zip(FILES, method=zipfile.ZIP_BZIP2))
    with pytest.raises(ZipVerificationError, match=r"not a readable zip"):
        verify_zip_file(io.BytesIO(bytes(data[:-30])))
    data[data.index(b"00000002.dcm") + 40] ^= 0xFF
    with pytest.raises(ZipVerificationError, match=r"'00000002.dcm' cannot be read"):
        verify_zip_file(io.BytesIO(bytes(data)))
