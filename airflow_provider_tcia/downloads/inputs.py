"""Which series to download: SeriesInstanceUIDs, getSeries rows, or the file getSeries wrote.

Everything is checked before anything is sent: a UID must be a DICOM UID (digits and dots, at most 64
characters; it becomes a file name), a row must have a SeriesInstanceUID, and a file must be json, jsonl or
csv. A file is read as it streams, one row at a time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.api.jsonstream import iter_json_array
from airflow_provider_tcia.api.uids import check_uid, shown
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.revisions import Revision
from airflow_provider_tcia.storage import as_path, suffix_format

SERIES_FILE_FORMATS = ("json", "jsonl", "csv")


@dataclass(frozen=True)
class SeriesRef:
    """One series to download, with what the archive told us about it (if known)."""

    series_instance_uid: str
    patient_id: str | None = None
    study_instance_uid: str | None = None
    image_count: int | None = None
    """ImageCount from getSeries: the number of DICOM files the zip must hold."""
    file_size: int | None = None
    """FileSize from getSeries (uncompressed bytes), for the ETA."""
    date_released: str | None = None
    """DateReleased from getSeries (ISO, :func:`~airflow_provider_tcia.revisions.server_timestamp`): with
    ``submitted`` and ``image_count``, which revision of the series this is."""
    submitted: str | None = None
    """MaxSubmissionTimestamp (NBIA v4) / TimeStamp (v1) from getSeries, ISO."""


def check_segment(value: Any, what: str) -> str:
    """``value`` as one folder name of the nested layout (PatientID, StudyInstanceUID)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise TciaBadRequestError(f"{what} is missing, and the nested layout needs it")
    text = str(value).strip()
    if text in (".", "..") or any(c in text for c in "/\\\x00") or text.startswith("."):
        raise TciaBadRequestError(f"{what}={text!r} cannot be a folder name")
    return text


def refs_from_value(value: Any, *, what: str = "series_instance_uids") -> list[SeriesRef]:
    """The series named by a UID, a getSeries row, or a list of either (an XCom of TciaGetSeriesOperator)."""
    if value is None:
        raise TciaBadRequestError(f"{what} is None: give a SeriesInstanceUID, a list of them, or getSeries rows")
    if isinstance(value, (str, Mapping)):
        return [_ref(value, what)]
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise TciaBadRequestError(
            f"{what} must be a SeriesInstanceUID, a list of them or getSeries rows, not {type(value).__name__}"
        )
    refs = [_ref(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if not refs:
        raise TciaBadRequestError(f"{what} is empty: there is no series to download")
    return refs


def series_file(value: Any, *, what: str = "series_from") -> tuple[ObjectStoragePath, str]:
    """The file named by ``series_from`` and its format.

    :param value: a URL or :class:`~airflow.sdk.ObjectStoragePath` of a json, jsonl or csv file written by
        TciaGetSeriesOperator(output_path=…), or that operator's XCom summary ``{"path", "format", …}``.
    """
    fmt = None
    if isinstance(value, Mapping):
        if "path" not in value:
            raise TciaBadRequestError(
                f"{what} is a mapping without 'path'; give the output_path URL or the XCom of "
                f"TciaGetSeriesOperator(output_path=...), not {shown(dict(value))}"
            )
        fmt = value.get("format")
        value = value["path"]
    if not isinstance(value, (str, ObjectStoragePath)) or (isinstance(value, str) and not value.strip()):
        if isinstance(value, list | tuple):
            raise TciaBadRequestError(
                f"{what} takes the file TciaGetSeriesOperator wrote (its output_path URL or its XCom summary), "
                f"not a list ({shown(value)}); pass rows or SeriesInstanceUIDs as series_instance_uids= instead"
            )
        raise TciaBadRequestError(f"{what} must be a URL such as s3://conn@bucket/series.jsonl, not {shown(value)}")
    try:
        path = as_path(value)
    except ValueError as err:
        raise TciaBadRequestError(f"{what}={shown(value)}: {err}") from None
    suffix, implied = suffix_format(path.name)
    if suffix == ".tcia":
        raise TciaBadRequestError(f"{what}={str(path)!r} is a TCIA manifest: pass it as manifest= instead")
    fmt = (fmt or implied or "").lower() or None
    if fmt is not None and fmt not in SERIES_FILE_FORMATS:
        raise TciaBadRequestError(
            f"{what}={str(path)!r} is {fmt}; series can be read from {', '.join(SERIES_FILE_FORMATS)} "
            "(write getSeries with output_format='jsonl', for instance)"
        )
    return path, fmt or "sniff"


def refs_from_file(path: ObjectStoragePath, fmt: str, *, what: str = "series_from") -> Iterator[SeriesRef]:
    """The series in a getSeries file, read as it streams (json array, json lines or csv)."""
    label = f"{what} ({path})"
    with open_input(path, label) as fh:
        if fmt == "sniff":
            fmt = _sniff(fh)
        if fmt == "json":
            rows: Iterable[Any] = iter_json_array(_chunks(fh), what=label)
        elif fmt == "jsonl":
            rows = _json_lines(fh, label)
        else:
            rows = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8-sig", newline=""))
        for number, row in enumerate(rows, start=1):
            yield _ref(row, f"{label} row {number}")


def open_input(path: ObjectStoragePath, label: str) -> Any:
    """``path`` opened for reading (binary); a :class:`TciaBadRequestError` naming ``label`` if it does not exist."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise TciaBadRequestError(f"{label} does not exist") from None


def dedupe(refs: Iterable[SeriesRef]) -> list[SeriesRef]:
    """``refs`` without repeats of a SeriesInstanceUID (the first wins), in order."""
    seen: dict[str, SeriesRef] = {}
    for ref in refs:
        seen.setdefault(ref.series_instance_uid, ref)
    return list(seen.values())


def _ref(item: Any, what: str) -> SeriesRef:
    if isinstance(item, str):
        return SeriesRef(check_uid(item, what))
    if not isinstance(item, Mapping):
        raise TciaBadRequestError(
            f"{what} must be a SeriesInstanceUID or a getSeries row, not {type(item).__name__} {shown(item)}"
        )
    fields = row_fields(item)
    if "seriesinstanceuid" not in fields:
        raise TciaBadRequestError(f"{what} has no SeriesInstanceUID (its fields: {', '.join(map(str, item))})")
    revision = Revision.of_row(item)
    return SeriesRef(
        series_instance_uid=check_uid(fields["seriesinstanceuid"], f"{what} SeriesInstanceUID"),
        patient_id=text_or_none(fields.get("patientid")),
        study_instance_uid=text_or_none(fields.get("studyinstanceuid")),
        image_count=_count(fields.get("imagecount"), f"{what} ImageCount"),
        file_size=_count(fields.get("filesize"), f"{what} FileSize"),
        date_released=revision.date_released,
        submitted=revision.submitted,
    )


def row_fields(row: Mapping) -> dict[str, Any]:
    """A row's fields by their names lower-cased without underscores: ``SeriesInstanceUID`` and
    ``series_instance_uid`` are both ``seriesinstanceuid``."""
    return {str(k).replace("_", "").lower(): v for k, v in row.items()}


def text_or_none(value: Any) -> str | None:
    """``value`` as stripped text, or None when it is None or blank."""
    if value is None:
        return None
    return str(value).strip() or None


def _count(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TciaBadRequestError(f"{what}={value!r} is not a number") from None
    if number < 0 or number != int(number):
        raise TciaBadRequestError(f"{what}={value!r} is not a count")
    return int(number)


def _chunks(fh: Any, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def _sniff(fh: Any) -> str:
    head = fh.read(4096)
    fh.seek(0)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    return "csv"


def _json_lines(fh: Any, label: str) -> Iterator[Any]:
    # readline, not iteration: fsspec's local file object (universal-pathlib 0.2, Airflow 2.11) is not iterable.
    for number, line in enumerate(iter(fh.readline, b""), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError as err:
            raise TciaBadRequestError(f"{label}: line {number} is not JSON ({err})") from None
