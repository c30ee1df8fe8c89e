"""The streaming zip verifier: good zips of every shape pass, in any chunking; damaged ones fail clearly."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zipfile
import zlib

import pytest

from airflow_provider_tcia.downloads.verify.contents import check_contents, parse_md5_listing, unsafe_name
from airflow_provider_tcia.downloads.verify.fallback import verify_zip_file
from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.downloads.verify.zipstream import DESCRIPTOR_SIG, StreamingZipVerifier
from airflow_provider_tcia.emulator.zipstream import ZipEntry as EmulatorEntry
from airflow_provider_tcia.emulator.zipstream import iter_zip
from airflow_provider_tcia.exceptions import ZipVerificationError

FILES = {
    "LICENSE": b"CC BY 3.0\n",
    "00000001.dcm": b"\0" * 128 + b"DICM" + os.urandom(3000),
    "00000002.dcm": b"\0" * 128 + b"DICM" + bytes(range(256)) * 40,
    # A fake data-descriptor signature inside the data must not end a stored entry early.
    "00000003.dcm": b"\0" * 128 + b"DICM" + b"xx" + DESCRIPTOR_SIG + b"\0" * 20 + DESCRIPTOR_SIG + os.urandom(500),
}


def md5_listing(files: dict[str, bytes]) -> bytes:
    rows = ["Filename,MD5Hash"] + [
        f"{name},{hashlib.md5(data).hexdigest()}" for name, data in files.items() if name.endswith(".dcm")
    ]
    return ("\n".join(rows) + "\n").encode()


class _Unseekable(io.RawIOBase):
    """What zipfile writes to when it cannot seek back: sizes go in data descriptors after each entry."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def make_zip(files: dict[str, bytes], *, method: int = zipfile.ZIP_STORED, streamed: bool = False, zip64=False):
    if streamed:
        out = _Unseekable()
        with zipfile.ZipFile(out, "w", compression=method) as zf:
            for name, data in files.items():
                with zf.open(name, "w", force_zip64=zip64) as fh:
                    fh.write(data)
        return bytes(out.data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in files.items():
            if zip64:
                with zf.open(name, "w", force_zip64=True) as fh:
                    fh.write(data)
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def feed(data: bytes, size: int, **kwargs) -> StreamingZipVerifier:
    verifier = StreamingZipVerifier(what="getImage(SeriesInstanceUID='1.2.3')", **kwargs)
    for i in range(0, len(data), size):
        verifier.feed(data[i : i + size])
    return verifier


SHAPES = {
    "stored": {},
    "deflated": {"method": zipfile.ZIP_DEFLATED},
    "stored+descriptor": {"streamed": True},
    "deflated+descriptor": {"method": zipfile.ZIP_DEFLATED, "streamed": True},
    "stored+zip64": {"zip64": True},
    "stored+descriptor+zip64": {"streamed": True, "zip64": True},
    "deflated+descriptor+zip64": {"method": zipfile.ZIP_DEFLATED, "streamed": True, "zip64": True},
}


class _MemorySink:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def open(self, name: str):
        sink = self

        class _File(io.BytesIO):
            def close(self) -> None:
                sink.files[name] = self.getvalue()
                super().close()

        return _File()


@pytest.mark.parametrize("chunk", [1, 5, 17, 4096, 1 << 20])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_good_zips_pass_in_any_chunking(shape, chunk):
    files = {**FILES, "md5hashes.csv": md5_listing(FILES)}
    data = make_zip(files, **SHAPES[shape])
    sink = _MemorySink()
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


@pytest.mark.parametrize("name", ["../evil.dcm", "/etc/passwd", "a/../../b", "C:/x.dcm", ""])
def test_unsafe_names_are_refused(name):
    assert unsafe_name(name)
    if name:
        with pytest.raises(ZipVerificationError, match=r"absolute|climbs"):
            feed(make_zip({name: b"x"}), 4096).finish()


def test_unsupported_method_falls_back_to_the_central_directory():
    data = make_zip(FILES, method=zipfile.ZIP_BZIP2)
    verifier = feed(data, 1000)
    assert verifier.fallback_reason and "compression method 12" in verifier.fallback_reason
    with pytest.raises(RuntimeError):
        verifier.finish()
    sink = _MemorySink()
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


def test_deflate_bomb_output_is_bounded():
    data = make_zip({"zeros.dcm": b"\0" * (64 << 20)}, method=zipfile.ZIP_DEFLATED)
    sizes = []
    report = feed(data, 1 << 20, on_data=sizes.append).finish()
    assert report.entries[0].size == 64 << 20
    assert max(sizes) <= 4 << 20


# --- hashing on worker threads (one series at a time) ---------------------------------------------------
BIG_FILES = {
    "LICENSE": b"CC BY 3.0\n",
    **{f"{i:08d}.dcm": b"\0" * 128 + b"DICM" + os.urandom(HashWorkers.MIN_ENTRY + 7919 * i) for i in range(1, 6)},
    "00000006.dcm": b"\0" * 128 + b"DICM" + os.urandom(900),  # small: hashed inline
}


def _central_offset(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.start_dir


def feed_reusing_buffers(data: bytes, size: int, workers: HashWorkers, **kwargs) -> StreamingZipVerifier:
    """Feed ``data`` as the downloader does: through two reused buffers, each given back only when the workers
    say so — and scribbled over right then, so a slice still in use would show."""
    import queue

    free: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(2):
        free.put(bytearray(size))

    def give_back(buffer: bytearray) -> None:
        buffer[:] = b"\xee" * len(buffer)
        free.put(buffer)

    verifier = StreamingZipVerifier(what="getImage(SeriesInstanceUID='1.2.3')", hash_workers=workers, **kwargs)
    for i in range(0, len(data), size):
        buffer = free.get(timeout=10)
        piece = data[i : i + size]
        buffer[: len(piece)] = piece
        verifier.feed(memoryview(buffer)[: len(piece)])
        workers.after(lambda b=buffer: give_back(b))
    return verifier


@pytest.fixture(params=["fast", "slow"])
def worker_speed(request, monkeypatch):
    """Slow workers (a pause before each piece) make the verifier wait for them, whatever the timing."""
    if request.param == "slow":
        import time

        from airflow_provider_tcia.downloads.verify import hashing

        update = hashing._Hashing.update

        def slow_update(self, data):
            time.sleep(0.002)
            update(self, data)

        monkeypatch.setattr(hashing._Hashing, "update", slow_update)
    return request.param


@pytest.mark.parametrize("chunk", [4096, 100_003, 1 << 20, "central"])
@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+descriptor", "stored+zip64"])
def test_hash_workers_give_the_inline_report(shape, chunk, worker_speed):
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    data = make_zip(files, **SHAPES[shape])
    if chunk == "central":  # the central directory starts a chunk: the entries' hashes may still be running
        chunk = _central_offset(data)
    inline = feed(data, chunk).finish()
    sink = _MemorySink()
    with HashWorkers(2) as workers:
        report = feed_reusing_buffers(data, chunk, workers, sink=sink).finish()
    assert report.entries == inline.entries
    assert {e.name: e.md5 for e in report.entries if e.is_dicom} == {
        n: hashlib.md5(d).hexdigest() for n, d in BIG_FILES.items() if n.endswith(".dcm")
    }
    assert sink.files == files
    check_contents(report, expected_count=6, require_md5=True)


@pytest.mark.parametrize("where", ["00000002.dcm", "00000005.dcm"])
def test_hash_workers_catch_a_bad_crc(where, worker_speed):
    data = bytearray(make_zip(BIG_FILES))
    data[data.index(where.encode()) + 12 + 5000] ^= 0xFF
    with HashWorkers(2) as workers, pytest.raises(ZipVerificationError, match=f"entry '{where}' fails its CRC"):
        feed_reusing_buffers(bytes(data), 65536, workers).finish()


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


# --- CRC-32 left to md5hashes.csv (crc_covered_by_md5) -----------------------------------------------------
def _covered_report(data: bytes, workers: HashWorkers):
    return feed_reusing_buffers(data, 65536, workers, crc_covered_by_md5=True).finish()


@pytest.mark.parametrize("shape", ["stored", "deflated", "stored+zip64"])
def test_where_md5hashes_csv_vouches_for_a_file_its_crc_is_not_computed(shape, worker_speed):
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    with HashWorkers(2) as workers:
        report = _covered_report(make_zip(files, **SHAPES[shape]), workers)
    big = [e for e in report.entries if e.is_dicom and e.size >= HashWorkers.MIN_ENTRY]
    assert big and not any(e.crc_checked for e in big)  # the zip's own CRC kept, not recorded as computed
    assert all(e.crc_checked for e in report.entries if e not in big)  # small and sidecar files: CRC-32 as ever
    assert any("except the" in check and "md5hashes.csv instead" in check for check in report.checks)
    check_contents(report, expected_count=6, require_md5=True)


def test_a_damaged_file_whose_crc_was_left_to_md5hashes_csv_fails_its_md5():
    files = {**BIG_FILES, "md5hashes.csv": md5_listing(BIG_FILES)}
    data = bytearray(make_zip(files))
    data[data.index(b"00000002.dcm") + 12 + 5000] ^= 0xFF
    with HashWorkers(2) as workers:
        report = _covered_report(bytes(data), workers)  # no CRC-32 computed: the structure passes
    with pytest.raises(ZipVerificationError, match=r"'00000002.dcm' has MD5 .* but md5hashes.csv says"):
        check_contents(report, expected_count=6, require_md5=True)


@pytest.mark.parametrize("require_md5", [True, False])
def test_crcs_left_to_a_listing_the_zip_lacks_or_nobody_checks_fail_closed(require_md5):
    with HashWorkers(2) as workers:
        report = _covered_report(make_zip(BIG_FILES), workers)
    with pytest.raises(ZipVerificationError, match=r"CRC-32 of .* files was left to md5hashes\.csv"):
        check_contents(report, expected_count=6, require_md5=require_md5)
