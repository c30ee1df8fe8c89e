"""The streaming zip verifier: good zips of every shape pass, in any chunking; damaged ones fail clearly."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest

from airflow_provider_tcia.downloads.verify.contents import check_contents
from airflow_provider_tcia.downloads.verify.zipstream import StreamingZipVerifier
from airflow_provider_tcia.emulator.zipstream import ZipEntry as EmulatorEntry
from airflow_provider_tcia.emulator.zipstream import iter_zip
from airflow_provider_tcia.exceptions import ZipVerificationError
from tests.downloads.verify.zips import FILES, SHAPES, MemorySink, feed, make_zip, md5_listing


@pytest.mark.parametrize("chunk", [1, 5, 17, 4096, 1 << 20])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_good_zips_pass_in_any_chunking(shape, chunk):
    files = {**FILES, "md5hashes.csv": md5_listing(FILES)}
    data = make_zip(files, **SHAPES[shape])
    sink = MemorySink()
    seen = []
    report = feed(data, chunk, sink=sink, on_data=seen.append).finish()
    assert [e.name for e in report.entries] == list(files)
    assert {e.name: e.md5 for e in report.entries} == {n: hashlib.md5(d).hexdigest() for n, d in files.items()}
    assert sink.files == files
    assert sum(seen) == sum(len(d) for d in files.values())
    assert report.zip_bytes == len(data)
    check_contents(report, expected_count=3, require_md5=True)
    assert any("md5hashes.csv" in c for c in report.checks)
    assert any("3 DICOM files" in c for c in report.checks)


def test_the_emulators_zips_pass():
    entries = [EmulatorEntry("LICENSE", [b"license"]), EmulatorEntry("1-001.dcm", [b"\0" * 128, b"DICM", b"x" * 999])]
    data = b"".join(iter_zip(entries))
    report = feed(data, 333).finish()
    assert [(e.name, e.size) for e in report.entries] == [("LICENSE", 7), ("1-001.dcm", 1131)]
    # and with zip64 records (as for series of many GiB)
    data = b"".join(iter_zip(entries, zip64_limit=100, count_limit=1))
    assert [e.size for e in feed(data, 64).finish().entries] == [7, 1131]


@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+descriptor", "deflated+descriptor"])
def test_every_truncation_is_caught(shape):
    data = make_zip(FILES, **SHAPES[shape])
    for cut in range(0, len(data) - 1, 7):
        verifier = feed(data[:cut], 4096)
        with pytest.raises(ZipVerificationError, match=r"truncated|ended|unexpected|disagree|does not end"):
            verifier.finish()


def test_truncation_message_says_where():
    data = make_zip(FILES)
    with pytest.raises(ZipVerificationError) as err:
        feed(data[:500], 100).finish()
    text = str(err.value)
    assert text.startswith("getImage(SeriesInstanceUID='1.2.3'): the zip is truncated: it ended after 500 bytes")
    assert "inside entry '00000001.dcm'" in text


@pytest.mark.parametrize("shape", ["stored", "deflated", "deflated+descriptor"])
def test_a_flipped_data_byte_fails_the_crc(shape):
    data = bytearray(make_zip(FILES, **SHAPES[shape]))
    at = data.index(b"00000002.dcm") + 12 + 200  # inside that entry's data
    data[at] ^= 0xFF
    with pytest.raises(ZipVerificationError, match=r"CRC|corrupt|disagree|does not end"):
        feed(bytes(data), 1000).finish()


def test_a_flipped_stored_byte_with_descriptor_is_never_accepted():
    # With no sizes in the header, a damaged stored entry never meets a matching descriptor: it is truncated.
    data = bytearray(make_zip(FILES, streamed=True))
    data[data.index(b"00000002.dcm") + 12 + 200] ^= 0xFF
    with pytest.raises(ZipVerificationError):
        feed(bytes(data), 1000).finish()


def test_central_directory_must_agree():
    data = bytearray(make_zip(FILES))
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 16, 0xDEADBEEF)  # the first entry's CRC in the central directory
    with pytest.raises(ZipVerificationError, match=r"central directory disagrees with entry 'LICENSE'"):
        feed(bytes(data), 4096).finish()


def test_an_html_page_is_not_a_zip():
    with pytest.raises(ZipVerificationError, match=r"unexpected bytes"):
        feed(b"<html><body>Server Error</body></html>", 10)


@pytest.mark.parametrize("name", ["../evil.dcm", "/etc/passwd", "a/../../b", "C:/x.dcm"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ZipVerificationError, match=r"absolute|climbs"):
        feed(make_zip({name: b"x"}), 4096).finish()


def test_deflate_bomb_output_is_bounded():
    data = make_zip({"zeros.dcm": b"\0" * (64 << 20)}, method=zipfile.ZIP_DEFLATED)
    sizes = []
    report = feed(data, 1 << 20, on_data=sizes.append).finish()
    assert report.entries[0].size == 64 << 20
    assert max(sizes) <= 4 << 20


@pytest.mark.parametrize("size", [(4 << 20) + 1, (8 << 20) + 3])
def test_a_deflated_entry_whose_output_is_pending_after_its_last_input_byte(size):
    """4 MiB + 1 zeros: every compressed byte is taken while the last match's output is still pending (past the
    inflate call's output limit); the entry ends there all the same (it used to fail as 'does not end where the
    header's compressed size says')."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.dcm", bytes(size))
    verifier = StreamingZipVerifier()
    verifier.feed(buf.getvalue())
    [entry] = verifier.finish().entries
    assert entry.size == size and entry.crc32 == zlib.crc32(bytes(size))
