"""What a series' zip holds: which entries are DICOM files and which are sidecars, which names are safe to
write under a folder, ``md5hashes.csv`` parsed, and the checks of the DICOM files against the expected count
(ImageCount / ObjectCount) and against ``md5hashes.csv`` (:func:`check_contents`)."""

from __future__ import annotations

import csv
import io
import posixpath
from typing import TYPE_CHECKING

from airflow_provider_tcia.exceptions import ZipVerificationError

if TYPE_CHECKING:
    from airflow_provider_tcia.downloads.verify.zipstream import ZipReport

MD5_LISTING = "md5hashes.csv"
#: Entries of a TCIA zip that are not DICOM files of the series, lower-cased (names are compared lower-cased):
#: the verifier, the manifest's file count and :func:`~airflow_provider_tcia.downloads.layout.dicom_members` all
#: go by this one list.
SIDECARS = frozenset({"license", "license.txt", MD5_LISTING})
#: md5hashes.csv is kept in memory to be parsed; no real listing comes near this.
MAX_LISTING = 64 << 20


def is_dicom_name(name: str) -> bool:
    """Whether an entry is one of the series' DICOM files (not a folder, LICENSE or md5hashes.csv)."""
    return not name.endswith("/") and posixpath.basename(name).lower() not in SIDECARS


def dicom_check_line(checked: int, unchecked: dict[str, str]) -> str:
    """The manifest's line for the structural check of a zip's DICOM files."""
    if not unchecked:
        return f"DICOM structure of every file checked ({checked} files)"
    name, why = next(iter(unchecked.items()))
    return (
        f"DICOM structure checked for {checked} of {checked + len(unchecked)} files; not checked: "
        f"{len(unchecked)} (e.g. {name!r}: {why})"
    )


def check_contents(
    report: ZipReport,
    *,
    expected_count: int | None = None,
    count_source: str = "ImageCount",
    require_md5: bool = False,
    what: str = "the zip",
) -> ZipReport:
    """Compare the zip's DICOM files with what the archive said it would send.

    :param expected_count: the number of files the series has (``ImageCount`` of getSeries, ``ObjectCount``
        of getSeriesSize), or ``None`` when unknown.
    :param count_source: where ``expected_count`` came from, for messages.
    :param require_md5: fail if the zip has no ``md5hashes.csv`` (it was asked for).
    :returns: ``report`` with the checks that passed appended to :attr:`ZipReport.checks`.
    """
    files = report.dicom_entries
    if expected_count is not None:
        if len(files) != expected_count:
            raise ZipVerificationError(
                f"{what}: the zip holds {len(files)} DICOM files but {count_source} says {expected_count}"
            )
        report.checks.append(f"{len(files)} DICOM files, as {count_source} says")
    listing = report.md5_listing
    unchecked_crc = [e.name for e in report.entries if not e.crc_checked]
    if unchecked_crc and (listing is None or not require_md5):
        # (fail closed: a file whose CRC-32 was left to md5hashes.csv must have its MD5 checked)
        raise ZipVerificationError(
            f"{what}: the CRC-32 of {len(unchecked_crc)} files was left to {MD5_LISTING}, "
            f"which {'the zip lacks' if listing is None else 'was not required'}"
        )
    if listing is None:
        if require_md5:
            raise ZipVerificationError(f"{what}: {MD5_LISTING} was asked for but the zip has none")
        return report
    by_base = {posixpath.basename(e.name): e for e in files}
    by_name = {e.name: e for e in files}
    listed: set[str] = set()
    for name, md5 in listing.items():
        entry = by_name.get(name) or by_base.get(posixpath.basename(name))
        if entry is None:
            raise ZipVerificationError(f"{what}: {MD5_LISTING} lists {name!r}, which is not in the zip")
        if entry.md5 is None:
            raise RuntimeError("MD5s were not computed; cannot check md5hashes.csv")
        if entry.md5 != md5:
            raise ZipVerificationError(f"{what}: {entry.name!r} has MD5 {entry.md5} but {MD5_LISTING} says {md5}")
        listed.add(entry.name)
    unlisted = [e.name for e in files if e.name not in listed]
    if unlisted:
        raise ZipVerificationError(
            f"{what}: {len(unlisted)} DICOM files are missing from {MD5_LISTING}, e.g. {unlisted[0]!r}"
        )
    report.checks.append(f"MD5 of every file matches {MD5_LISTING} ({len(listing)} files)")
    return report


def parse_md5_listing(data: bytes, *, what: str = "the zip") -> dict[str, str]:
    """``md5hashes.csv`` (header ``Filename,MD5Hash``) as file name → lower-case hex MD5."""
    text = data.decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["filename", "md5hash"]:
        head = rows[0] if rows else []
        raise ZipVerificationError(f"{what}: {MD5_LISTING} does not start with Filename,MD5Hash (it has {head!r})")
    listing: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2 or len(row[1].strip()) != 32:
            raise ZipVerificationError(f"{what}: line {number} of {MD5_LISTING} is not 'name,md5': {row!r}")
        listing[row[0].strip()] = row[1].strip().lower()
    return listing


def unsafe_name(name: str) -> str | None:
    """Why an entry name must not be written under a folder (absolute, ``..``, a drive), or None."""
    if not name or "\x00" in name:
        return "has an empty or NUL name"
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return "is an absolute path"
    if any(part == ".." for part in normal.split("/")):
        return "climbs out of its folder with '..'"
    return None
