"""TCIA download manifests: the ``.tcia`` files NBIA Data Retriever opens, and TCIA's CSV / TSV series lists —
read (the download operator's ``manifest=``) and written (:class:`~airflow_provider_tcia.operators.manifest.
TciaWriteManifestOperator`).

Not to be confused with :mod:`airflow_provider_tcia.downloads.manifest`: that is the *verification record*
(``<SeriesInstanceUID>.manifest.json``) a download writes beside each series it stored. This module is about
the list of series a user hands in or takes away.

A ``.tcia`` manifest, as NBIA's ``ManifestMaker`` writes it (and tcia_utils' ``manifestToList`` reads it: it
drops the first six lines)::

    downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet
    includeAnnotation=true
    noOfrRetry=4
    databasketId=manifest-1700000000000.tcia
    manifestVersion=3.0
    ListOfSeriesToDownload=
    1.3.6.1.4.1.14519.5.2.1.7695.1700.123456789
    ...

What real ones also contain, and is read: a stray ``Series ID`` line right after ``ListOfSeriesToDownload=``,
the keys ``dataType=`` and ``tempLoc=`` (older servers), CRLF line ends, blank lines, a UTF-8 BOM, either host
(``nbia.`` or ``public.cancerimagingarchive.net``), and a bare list of UIDs without the header (as tcia_utils
and the retrievers take it). What is refused, with the line it is on: a key this reader does not know, a line
that is not a DICOM UID, a manifest without a single UID, and a file that is not text. CSV / TSV manifests
need a header naming the UID column (``SeriesInstanceUID`` or ``Series UID``, any case; ``PatientID`` /
``Subject ID`` and ``StudyInstanceUID`` / ``Study UID`` columns are used for the nested layout when there).

Reading streams, one line at a time: memory does not grow with the number of UIDs.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.downloads.inputs import SeriesRef, open_input, text_or_none
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.storage import as_path

#: The manifest formats, by the suffix that names them.
MANIFEST_SUFFIXES = {".tcia": "tcia", ".csv": "csv", ".tsv": "tsv"}
MANIFEST_FORMATS = tuple(dict.fromkeys(MANIFEST_SUFFIXES.values()))
#: The line after which the UIDs come.
LIST_KEY = "ListOfSeriesToDownload"
#: The header's keys in the order ManifestMaker writes them (ListOfSeriesToDownload= ends it).
HEADER_KEYS = ("downloadServerUrl", "includeAnnotation", "noOfrRetry", "databasketId", "manifestVersion")
#: Keys real manifests also carry, read and ignored.
OTHER_KEYS = ("dataType", "tempLoc")
_KNOWN_KEYS = {k.lower(): k for k in (*HEADER_KEYS, *OTHER_KEYS, LIST_KEY)}
#: What NBIA writes today (its v4 servers), for manifests we build ourselves.
DOWNLOAD_SERVER_URL = "https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet"
NO_OF_RETRY = "4"
MANIFEST_VERSION = "3.0"
#: The UID column of a CSV / TSV manifest, and the columns for the nested layout (names lower-cased without
#: spaces and underscores).
UID_COLUMNS = ("seriesinstanceuid", "seriesuid")
PATIENT_COLUMNS = ("patientid", "subjectid")
STUDY_COLUMNS = ("studyinstanceuid", "studyuid")
#: The column a CSV / TSV manifest we write has.
UID_COLUMN = "SeriesInstanceUID"
#: Lines a manifest puts between ``ListOfSeriesToDownload=`` and the first UID (seen in real ones).
_LIST_TITLES = ("seriesid", *UID_COLUMNS)
_KEY_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*=(.*)$")
_HEAD = 8192


@dataclass(frozen=True)
class TciaManifestHeader:
    """The header lines of a ``.tcia`` manifest (ManifestMaker's, in its order)."""

    databasket_id: str
    include_annotation: bool = True
    download_server_url: str = DOWNLOAD_SERVER_URL
    no_of_retry: str = NO_OF_RETRY
    manifest_version: str = MANIFEST_VERSION

    @classmethod
    def from_keys(cls, keys: Mapping[str, str], *, databasket_id: str) -> TciaManifestHeader:
        """The header a manifest's ``keys`` (as :func:`iter_tcia_lines` collects them) describe; what they lack
        takes our defaults."""
        return cls(
            databasket_id=keys.get("databasketId") or databasket_id,
            include_annotation=(keys.get("includeAnnotation") or "true").strip().lower() == "true",
            download_server_url=keys.get("downloadServerUrl") or DOWNLOAD_SERVER_URL,
            no_of_retry=keys.get("noOfrRetry") or NO_OF_RETRY,
            manifest_version=keys.get("manifestVersion") or MANIFEST_VERSION,
        )

    def lines(self) -> list[str]:
        values = (
            self.download_server_url,
            "true" if self.include_annotation else "false",
            self.no_of_retry,
            self.databasket_id,
            self.manifest_version,
        )
        for key, value in zip(HEADER_KEYS, values, strict=True):
            if any(c in value for c in "\r\n"):
                raise TciaBadRequestError(f"the manifest's {key} cannot hold a line break: {value!r}")
        return [*(f"{k}={v}" for k, v in zip(HEADER_KEYS, values, strict=True)), f"{LIST_KEY}="]


# --- reading ------------------------------------------------------------------------------------------
def manifest_file(value: Any, *, what: str = "manifest") -> tuple[ObjectStoragePath, str]:
    """The manifest named by ``value`` (a URL or :class:`~airflow.sdk.ObjectStoragePath`) and its format by its
    suffix (``tcia``, ``csv`` or ``tsv``; ``sniff`` for any other: decided from its first line)."""
    if isinstance(value, Mapping) and "path" in value:  # the XCom of TciaWriteManifestOperator
        value = value["path"]
    if not isinstance(value, (str, ObjectStoragePath)) or (isinstance(value, str) and not value.strip()):
        raise TciaBadRequestError(
            f"{what} must be the URL of a .tcia, .csv or .tsv manifest (s3://conn@bucket/manifest.tcia, "
            f"file:///data/manifest.tcia), not {shown(value)}"
        )
    try:
        path = as_path(value)
    except ValueError as err:
        raise TciaBadRequestError(f"{what}={shown(value)}: {err}") from None
    suffix = "." + path.name.rsplit(".", 1)[-1].lower() if "." in path.name else ""
    return path, MANIFEST_SUFFIXES.get(suffix, "sniff")


def iter_manifest(path: ObjectStoragePath, fmt: str = "sniff", *, what: str = "manifest") -> Iterator[SeriesRef]:
    """The series a manifest lists, in its order, read as it streams; a :class:`TciaBadRequestError` naming the
    line for anything that is not a manifest (see the module's docstring)."""
    label = f"{what} ({path})"
    with open_input(path, label) as fh:
        head = fh.read(_HEAD)
        _check_text(head, label)
        fh.seek(0)
        if fmt == "sniff":
            fmt = _sniff(head)
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        try:
            if fmt == "tcia":
                yield from (SeriesRef(uid) for uid in iter_tcia_lines(text, what=label))
            else:
                yield from _table_refs(text, "\t" if fmt == "tsv" else ",", label)
        except UnicodeDecodeError as err:
            raise TciaBadRequestError(f"{label} is not a text file: byte {err.start} of a read is not UTF-8") from None


def iter_tcia_lines(
    lines: Iterable[str],
    *,
    what: str = "manifest",
    keys: MutableMapping[str, str] | None = None,
    allow_empty: bool = False,
) -> Iterator[str]:
    """The SeriesInstanceUIDs of a ``.tcia`` manifest's lines, checked as they come.

    :param lines: its text, line by line (any line ends; a BOM at the start is dropped).
    :param keys: filled with the header's ``key=value`` pairs as they are read (before the first UID is
        yielded), by NBIA's spelling of each key.
    :param allow_empty: a manifest without a UID is not an error (NBIA's answer for a collection with no series).
    """
    keys = {} if keys is None else keys
    state = "start"  # -> "header" (a key line seen) -> "list" (after ListOfSeriesToDownload=, or a bare list)
    count = 0
    title_allowed = False
    for number, raw in enumerate(lines, start=1):
        line = raw.lstrip("\ufeff").strip() if number == 1 else raw.strip()
        if not line:
            continue
        key_line = _KEY_LINE.match(line)
        if key_line:
            key, value = key_line.group(1), key_line.group(2).strip()
            known = _KNOWN_KEYS.get(key.lower())
            if known is None:
                raise TciaBadRequestError(
                    f"{what} line {number}: {shown(line)} is a key this reader does not know (a .tcia manifest's keys "
                    f"are {', '.join(_KNOWN_KEYS.values())})"
                )
            if known == LIST_KEY:
                if value:
                    raise TciaBadRequestError(
                        f"{what} line {number}: {LIST_KEY}= must end its line; the UIDs follow it, one per line"
                    )
                state, title_allowed = "list", True
                continue
            keys.setdefault(known, value)
            if state == "start":
                state = "header"
            continue
        if state == "list" and title_allowed and line.replace(" ", "").replace("_", "").lower() in _LIST_TITLES:
            title_allowed = False  # the stray "Series ID" line some manifests carry
            continue
        if state == "header":
            raise TciaBadRequestError(
                f"{what} line {number}: {shown(line)} comes before {LIST_KEY}=, where only key=value lines belong"
            )
        state, title_allowed = "list", False
        count += 1
        yield check_uid(line, f"{what} line {number}")
    if count == 0 and not allow_empty:
        where = f"after {LIST_KEY}=" if state == "list" else f"(and no {LIST_KEY}= line)"
        raise TciaBadRequestError(f"{what} lists no series: no SeriesInstanceUID line {where}")


def iter_text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The lines of a UTF-8 text that arrives in chunks (an HTTP body), without their line ends."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    rest = ""
    for chunk in chunks:
        rest += decoder.decode(chunk)
        *lines, rest = rest.split("\n")
        yield from lines
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


def _table_refs(text: IO[str], delimiter: str, label: str) -> Iterator[SeriesRef]:
    rows = csv.reader(text, delimiter=delimiter)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    count = 0
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            for i, name in enumerate(row):
                columns.setdefault(name.strip().replace(" ", "").replace("_", "").lower(), i)
            if not any(c in columns for c in UID_COLUMNS):
                kind = "TSV" if delimiter == "\t" else "CSV"
                raise TciaBadRequestError(
                    f"{label} has no SeriesInstanceUID or Series UID column (its header: {shown(row)}); a {kind} "
                    "manifest's first line names its columns"
                )
            continue
        where = f"{label} line {rows.line_num}"
        uid = _cell(row, columns, UID_COLUMNS)
        count += 1
        yield SeriesRef(
            check_uid(uid or "", f"{where} SeriesInstanceUID"),
            patient_id=text_or_none(_cell(row, columns, PATIENT_COLUMNS)),
            study_instance_uid=text_or_none(_cell(row, columns, STUDY_COLUMNS)),
        )
    if count == 0:
        raise TciaBadRequestError(f"{label} lists no series: no row under its header")


def _cell(row: list[str], columns: dict[str, int], names: tuple[str, ...]) -> str | None:
    for name in names:
        index = columns.get(name)
        if index is not None:
            return row[index] if index < len(row) else None
    return None


def _check_text(head: bytes, label: str) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise TciaBadRequestError(f"{label} is UTF-16 text; save it as UTF-8 (as NBIA writes manifests)")
    if b"\x00" in head:
        raise TciaBadRequestError(f"{label} is not a text file (it holds NUL bytes: a zip, an image …?)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut by the read's end is fine
    except UnicodeDecodeError as err:
        raise TciaBadRequestError(f"{label} is not a text file: byte {err.start} is not UTF-8") from None


def _sniff(head: bytes) -> str:
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if _KEY_LINE.match(first) or re.match(r"^[0-9.]+$", first):
        return "tcia"
    return "tsv" if "\t" in first else "csv"


# --- writing ------------------------------------------------------------------------------------------
def manifest_format(path: ObjectStoragePath, *, what: str = "output_path") -> str:
    """The format the suffix of ``path`` names; a clear error for any other suffix."""
    suffix = "." + path.name.rsplit(".", 1)[-1].lower() if "." in path.name else ""
    if suffix not in MANIFEST_SUFFIXES:
        raise TciaBadRequestError(
            f"{what}={str(path)!r}: its suffix says which manifest to write; use one of "
            f"{', '.join(MANIFEST_SUFFIXES)} (e.g. {path.name or 'manifest'}.tcia)"
        )
    return MANIFEST_SUFFIXES[suffix]


def write_manifest(fh: IO[bytes], fmt: str, uids: Iterable[str], header: TciaManifestHeader) -> int:
    """Write ``uids`` to ``fh`` as a manifest in ``fmt``: a ``.tcia`` in ManifestMaker's layout (its six header
    lines, then one UID a line, ``\\n`` line ends), or a CSV / TSV with one ``SeriesInstanceUID`` column.
    Returns the number of UIDs; writes nothing past a UID that is not one (the caller's atomic writer then
    leaves nothing)."""
    if fmt == "tcia":
        lines: Iterable[str] = header.lines()
    elif fmt in ("csv", "tsv"):
        lines = [UID_COLUMN]
    else:
        raise TciaBadRequestError(f"there is no {fmt!r} manifest; the formats are {', '.join(MANIFEST_FORMATS)}")
    buffer = [line + "\n" for line in lines]
    count = 0
    for count, uid in enumerate(uids, start=1):
        buffer.append(check_uid(uid, f"series {count}") + "\n")  # digits and dots: no quoting in any format
        if len(buffer) >= 4096:
            fh.write("".join(buffer).encode("ascii"))
            buffer.clear()
    fh.write("".join(buffer).encode("ascii"))
    return count
