"""What a zip's DICOM files are checked against (the expected count, ``md5hashes.csv``), and which entry names
are refused."""

from __future__ import annotations

import hashlib

import pytest

from airflow_provider_tcia.downloads.verify.contents import check_contents, parse_md5_listing, unsafe_name
from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.exceptions import ZipVerificationError
from tests.downloads.verify.zips import BIG_FILES, FILES, covered_report, feed, make_zip, md5_listing


def test_count_mismatch():
    report = feed(make_zip(FILES), 4096).finish()
    with pytest.raises(ZipVerificationError, match=r"holds 3 DICOM files but ImageCount says 4"):
        check_contents(report, expected_count=4, what="series 1.2.3")


def test_wrong_md5():
    listing = md5_listing(FILES).replace(hashlib.md5(FILES["00000002.dcm"]).hexdigest().encode(), b"0" * 32)
    report = feed(make_zip({**FILES, "md5hashes.csv": listing}), 4096).finish()
    with pytest.raises(ZipVerificationError, match=r"'00000002.dcm' has MD5 .* but md5hashes.csv says 0{32}"):
        check_contents(report)


def test_md5_listing_must_cover_every_file_and_only_files_in_the_zip():
    partial = b"Filename,MD5Hash\n00000001.dcm," + hashlib.md5(FILES["00000001.dcm"]).hexdigest().encode() + b"\n"
    report = feed(make_zip({**FILES, "md5hashes.csv": partial}), 4096).finish()
    with pytest.raises(ZipVerificationError, match=r"2 DICOM files are missing from md5hashes.csv"):
        check_contents(report)
    extra = md5_listing({**FILES, "00000009.dcm": b"gone"})
    report = feed(make_zip({**FILES, "md5hashes.csv": extra}), 4096).finish()
    with pytest.raises(ZipVerificationError, match=r"lists '00000009.dcm', which is not in the zip"):
        check_contents(report)


def test_md5_listing_required_when_asked():
    report = feed(make_zip(FILES), 4096).finish()
    with pytest.raises(ZipVerificationError, match=r"md5hashes.csv was asked for but the zip has none"):
        check_contents(report, require_md5=True)


def test_parse_md5_listing():
    assert parse_md5_listing(b"Filename,MD5Hash\r\na.dcm," + b"A" * 32 + b"\r\n\r\n") == {"a.dcm": "a" * 32}
    with pytest.raises(ZipVerificationError, match=r"does not start with Filename,MD5Hash"):
        parse_md5_listing(b"name,hash\n")
    with pytest.raises(ZipVerificationError, match=r"line 2"):
        parse_md5_listing(b"Filename,MD5Hash\na.dcm,nothex\n")


@pytest.mark.parametrize("name", ["../evil.dcm", "/etc/passwd", "a/../../b", "C:/x.dcm", "", "a\x00b"])
def test_unsafe_names(name):
    assert unsafe_name(name)


def test_safe_names():
    assert unsafe_name("00000001.dcm") is None and unsafe_name("sub/00000001.dcm") is None


# --- CRC-32 left to md5hashes.csv (crc_covered_by_md5) -----------------------------------------------------
def test_a_damaged_file_whose_crc_was_left_to_md5hashes_csv_fails_its_md5():
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    data = bytearray(make_zip(files))
    data[data.index(b"00000002.dcm") + 12 + 5000] ^= 0xFF
    with HashWorkers(2) as workers:
        report = covered_report(bytes(data), workers)  # no CRC-32 computed: the structure passes
    with pytest.raises(ZipVerificationError, match=r"'00000002.dcm' has MD5 .* but md5hashes.csv says"):
        check_contents(report, expected_count=6, require_md5=True)


@pytest.mark.parametrize("require_md5", [True, False])
def test_crcs_left_to_a_listing_the_zip_lacks_or_nobody_checks_fail_closed(require_md5):
    with HashWorkers(2) as workers:
        report = covered_report(make_zip(BIG_FILES), workers)
    with pytest.raises(ZipVerificationError, match=r"CRC-32 of .* files was left to md5hashes\.csv"):
        check_contents(report, expected_count=6, require_md5=require_md5)
