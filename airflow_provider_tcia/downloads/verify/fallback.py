"""The whole-file fallback: a finished zip checked through its central directory with :mod:`zipfile`, for what
:class:`~airflow_provider_tcia.downloads.verify.zipstream.StreamingZipVerifier` cannot follow inline (an
encrypted entry, a compression method other than stored or deflate)."""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
import zlib
from typing import BinaryIO

from airflow_provider_tcia.downloads.verify.contents import (
    MAX_LISTING,
    MD5_LISTING,
    dicom_check_line,
    is_dicom_name,
    parse_md5_listing,
    unsafe_name,
)
from airflow_provider_tcia.downloads.verify.dicom import DicomStructureChecker
from airflow_provider_tcia.downloads.verify.zipstream import EntrySink, ZipEntry, ZipReport
from airflow_provider_tcia.exceptions import ZipVerificationError


def verify_zip_file(
    fileobj: BinaryIO,
    *,
    sink: EntrySink | None = None,
    compute_md5: bool = True,
    what: str = "the zip",
    check_dicom: bool = False,
) -> ZipReport:
    """Check a finished zip through its central directory (the fallback when it could not be followed inline):
    every entry is read, so :mod:`zipfile` checks its CRC; its MD5 is computed; ``sink`` receives the data; with
    ``check_dicom``, each DICOM file's structure is checked as it is read."""
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ZipVerificationError(f"{what}: not a readable zip ({err})") from None
    entries: list[ZipEntry] = []
    listing = None
    checked, unchecked = 0, {}
    with archive:
        for info in archive.infolist():
            problem = unsafe_name(info.filename)
            if problem:
                raise ZipVerificationError(f"{what}: entry {info.filename!r} {problem}")
            digest = hashlib.md5(usedforsecurity=False) if compute_md5 else None
            kept = bytearray() if posixpath.basename(info.filename).lower() == MD5_LISTING else None
            out = sink.open(info.filename) if sink is not None and not info.is_dir() else None
            dicom = (
                DicomStructureChecker(f"{what}: entry {info.filename!r}")
                if check_dicom and is_dicom_name(info.filename)
                else None
            )
            try:
                with archive.open(info) as member:
                    while block := member.read(1 << 20):
                        if digest is not None:
                            digest.update(block)
                        if out is not None:
                            out.write(block)
                        if kept is not None and len(kept) < MAX_LISTING:
                            kept += block
                        if dicom is not None:
                            dicom.feed(block)
            except (
                zipfile.BadZipFile,
                zlib.error,
                EOFError,
                OSError,
                ValueError,
                NotImplementedError,
                RuntimeError,
            ) as err:
                raise ZipVerificationError(f"{what}: entry {info.filename!r} cannot be read ({err})") from None
            finally:
                if out is not None:
                    out.close()
            if kept is not None:
                listing = parse_md5_listing(bytes(kept), what=what)
            if dicom is not None:
                result = dicom.finish()
                if result.checked:
                    checked += 1
                else:
                    unchecked[info.filename] = result.detail
            entries.append(
                ZipEntry(
                    info.filename, info.file_size, info.compress_size, info.CRC, digest.hexdigest() if digest else None
                )
            )
    size = fileobj.seek(0, io.SEEK_END)
    checks = [f"zip readable: {len(entries)} entries", "CRC-32 of every entry matches"]
    if check_dicom:
        checks.append(dicom_check_line(checked, unchecked))
    return ZipReport(entries, size, listing, checks, unchecked)
