"""Helpers of the flagship pipeline's DAGs (not a DAG: listed in ``.airflowignore``).

What arrives — a downloaded series on object storage, either a folder of DICOM files (``extract`` layout)
or one zip (``zip`` layout) — is read straight from the store with :class:`~airflow.sdk.ObjectStoragePath`,
one file at a time: its DICOM headers for the index and its middle slice for the contact sheet. Results
go back to object storage, written atomically; only paths and small dicts travel through XCom, so the
DAGs run unchanged on Celery or Kubernetes executors.

Needs the ``examples`` extra: ``pip install 'airflow-provider-tcia[examples]'`` (pydicom, numpy, pillow).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_tcia.compat import asset  # Asset(name=, uri=) on Airflow 3, a Dataset on 2.11
from airflow_provider_tcia.utils.manifest import MANIFEST_SUFFIX
from airflow_provider_tcia.utils.storage import as_path, atomic_writer, is_partial

#: Where the examples write unless the DAG's ``output_root`` param says otherwise.
DEFAULT_OUTPUT_ROOT = os.environ.get("TCIA_EXAMPLE_OUTPUT", "file:///tmp/airflow-tcia-examples")
#: The collection the flagship watches by default (present in the bundled emulator and on TCIA).
DEFAULT_COLLECTION = os.environ.get("TCIA_FLAGSHIP_COLLECTION", "TCGA-BRCA")

#: Seconds between polls of the deferrable sensor and of the asset watcher (short in the demo and tests).
POLL_INTERVAL = float(os.environ.get("TCIA_FLAGSHIP_POLL_INTERVAL", "300"))
#: How long the scheduled ingest DAG's sensor waits for new studies (default: 20 hours of a daily run).
SENSOR_TIMEOUT = float(os.environ.get("TCIA_FLAGSHIP_SENSOR_TIMEOUT", str(20 * 3600)))

#: How the ingest DAGs store each series: one ``zip`` object (the default: a single write per series on any
#: object store) or ``extract``-ed DICOM files.
DEFAULT_LAYOUT = os.environ.get("TCIA_FLAGSHIP_LAYOUT", "zip")

#: Updated by the ingest DAGs when new series have been downloaded; the processing DAG is scheduled on it.
#: Its events' ``extra`` says what arrived: ``{"collection", "series": [{"location", ...}], "downloads"}``.
DOWNLOADED_SERIES = asset(name="tcia_flagship_downloaded_series", uri="tcia-flagship://downloaded-series")

#: The DICOM header fields the index keeps, one row per series.
INDEX_FIELDS = (
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "Rows",
    "Columns",
    "PixelSpacing",
    "SliceThickness",
)
INDEX_COLUMNS = (*INDEX_FIELDS, "instances", "location", "thumbnail")
#: Files of a series' zip that are not DICOM.
NOT_DICOM = frozenset({"LICENSE", "md5hashes.csv"})
THUMBNAIL = 256
LABEL_HEIGHT = 36


def downloads_root(output_root: str) -> str:
    return f"{output_root.rstrip('/')}/tcia_flagship/downloads"


def processed_root(output_root: str, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return f"{output_root.rstrip('/')}/tcia_flagship/processed/{safe}"


# --- the ingest DAGs' shared tail: list the series of new studies, download them, announce them ----------
def items(values: Any) -> list[Any]:
    """A plain list from a mapped task's outputs (read by index: iterating the lazy sequence would probe past
    its end, which Airflow logs as an error), or from any list."""
    if values is None:
        return []
    if hasattr(values, "__len__") and hasattr(values, "__getitem__"):
        return [values[i] for i in range(len(values))]
    return list(values)


def study_uids(rows: list[dict[str, Any]] | None) -> list[str]:
    """The StudyInstanceUIDs of study rows (a sensor's or an asset event's), each once, in order."""
    return list(dict.fromkeys(str(r["StudyInstanceUID"]) for r in rows or [] if r.get("StudyInstanceUID")))


def flatten(lists: Any, studies: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One list of getSeries rows from a mapped task's per-study lists.

    The legacy API's getSeries rows carry no PatientID (TCIA's did not either); it is filled in from the
    study rows, so the nested layout ``<PatientID>/<StudyInstanceUID>/`` works on both APIs.
    """
    patients = {str(s["StudyInstanceUID"]): s.get("PatientID") for s in studies or [] if s.get("StudyInstanceUID")}
    out = []
    for rows in items(lists):
        for row in rows or []:
            row = dict(row)
            if not row.get("PatientID") and patients.get(str(row.get("StudyInstanceUID"))):
                row["PatientID"] = patients[str(row["StudyInstanceUID"])]
            out.append(row)
    return out


def arrival(collection: str, downloads: Any) -> dict[str, Any]:
    """The ``extra`` of a downloaded-series asset event: where each series landed."""
    series = [
        {
            "series_instance_uid": d["series_instance_uid"],
            "location": d["path"],
            "files": d.get("files"),
            "skipped": bool(d.get("skipped")),
        }
        for d in items(downloads)
        if d
    ]
    return {"collection": collection, "series": series, "downloads": len(series)}


def download_and_announce(
    studies: Any,
    *,
    collection: str,
    output_root: str = "{{ params.output_root }}",
    layout: str = "{{ params.layout }}",
):
    """Add the ingest DAGs' common tasks to the DAG being defined: getSeries mapped per study, the download
    mapped per series (nested ``<PatientID>/<StudyInstanceUID>/`` under the downloads folder, as a zip or
    extracted: verified, atomic, idempotent), and a task that updates :data:`DOWNLOADED_SERIES` with what
    arrived. Returns that last task's output."""
    from airflow.providers.common.compat.sdk import AirflowSkipException, task

    from airflow_provider_tcia.operators import TciaGetSeriesOperator
    from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator

    @task
    def studies_to_list(rows: list[dict[str, Any]] | None) -> list[str]:
        uids = study_uids(rows)
        print(f"{len(uids)} new stud{'y' if len(uids) == 1 else 'ies'}: {uids}")
        return uids

    @task
    def series_to_download(lists: Any, studies: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        rows = flatten(lists, studies)
        print(f"{len(rows)} series to download")
        return rows

    @task(outlets=[DOWNLOADED_SERIES], trigger_rule="none_failed")
    def announce(downloads: Any, collection: str, outlet_events=None) -> dict[str, Any]:
        extra = arrival(collection, downloads)
        if not extra["series"]:
            # No asset event: the processing DAG has nothing to do.
            raise AirflowSkipException("no series arrived")
        outlet_events[DOWNLOADED_SERIES].extra = extra
        return extra

    listed = TciaGetSeriesOperator.partial(task_id="list_series", collection=collection).expand(
        study_instance_uid=studies_to_list(studies)
    )
    downloaded = TciaDownloadSeriesOperator.partial(
        task_id="download",
        destination=downloads_root(output_root),
        layout=layout,
        nested=True,
        max_concurrency=2,
        map_index_template="{{ task.series_instance_uids['SeriesInstanceUID'] }}",
    ).expand(series_instance_uids=series_to_download(listed.output, studies))
    return announce(downloaded.output, collection)  # task arguments are templated


# --- finding what arrived ----------------------------------------------------------------------------
def series_in_events(events: Any) -> list[str]:
    """The series locations named by the downloaded-series asset events of this run (deduplicated)."""
    locations: list[str] = []
    for event in events or []:
        extra = getattr(event, "extra", None) or {}
        for item in extra.get("series") or []:
            location = item.get("location") if isinstance(item, dict) else item
            if isinstance(location, str) and location not in locations:
                locations.append(location)
    return locations


def series_under(root: str) -> list[str]:
    """Every series downloaded and verified below ``root``: those with a manifest
    (``<SeriesInstanceUID>.manifest.json``, written by the download operator once the data is in place).

    For manual runs of the processing DAG, which have no asset event saying what arrived.
    """
    base = as_path(root)
    if not base.exists():
        return []
    found = []
    for manifest in base.rglob(f"*{MANIFEST_SUFFIX}"):
        if _hidden(manifest, base):
            continue
        try:
            document = json.loads(manifest.read_bytes())
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("verified") and document.get("path"):
            found.append(str(document["path"]))
    return sorted(set(found))


def _hidden(path: ObjectStoragePath, base: ObjectStoragePath) -> bool:
    """Temporary (partial) objects and anything under a hidden folder are not data yet."""
    if is_partial(path):
        return True
    relative = str(path.path)[len(str(base.path)) :]
    return any(part.startswith(".") for part in relative.split("/") if part)


# --- reading a series --------------------------------------------------------------------------------
@contextmanager
def dicom_members(location: str) -> Iterator[list[tuple[str, Any]]]:
    """The DICOM files of a series as ``(name, opener)`` pairs; ``opener()`` opens one for binary reading.

    ``location`` is a folder of ``.dcm`` files or a ``.zip`` (read through the store, never copied to local
    disk).
    """
    path = as_path(location)
    if path.suffix.lower() == ".zip":
        with path.open("rb") as raw, zipfile.ZipFile(raw) as archive:
            names = sorted(n for n in archive.namelist() if _maybe_dicom(n))
            yield [(n, _zip_opener(archive, n)) for n in names]
        return
    files = sorted((p for p in path.rglob("*") if _maybe_dicom(p.name) and not _hidden(p, path)), key=str)
    yield [(str(p.path)[len(str(path.path)) :].lstrip("/"), _path_opener(p)) for p in files if p.is_file()]


def _maybe_dicom(name: str) -> bool:
    """Not one of the other files TCIA puts in a series' zip (``md5hashes.csv``, ``LICENSE``) or a folder."""
    base = name.rsplit("/", 1)[-1]
    return bool(base) and base not in NOT_DICOM and not base.lower().endswith((".csv", ".txt", ".json"))


def _zip_opener(archive: zipfile.ZipFile, name: str):
    return lambda: archive.open(name)


def _path_opener(path: ObjectStoragePath):
    return lambda: path.open("rb")


def _read(opener, *, pixels: bool):
    import pydicom

    with opener() as fh:
        return pydicom.dcmread(_seekable(fh), stop_before_pixels=not pixels)


def _seekable(fh: IO[bytes]) -> IO[bytes]:
    """pydicom seeks; a zip member opened from a stream may not, so hold that one file (never a series)."""
    try:
        if fh.seekable():
            return fh
    except (AttributeError, ValueError):
        pass
    return io.BytesIO(fh.read())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def summarise_series(location: str, thumbnails_root: str) -> dict[str, Any]:
    """The index row of one series and a PNG thumbnail of its middle slice (written under
    ``thumbnails_root``). Reads every header once (without pixels) and the pixels of one file only."""
    with dicom_members(location) as members:
        from pydicom.errors import InvalidDicomError

        headers = []
        for name, opener in members:
            try:
                ds = _read(opener, pixels=False)
            except InvalidDicomError:
                continue  # not a DICOM file (no DICM preamble)
            headers.append((_instance_number(ds), name, opener, ds))
        if not headers:
            raise ValueError(f"{location} holds no DICOM file")
        headers.sort(key=lambda h: (h[0], h[1]))
        _, middle_name, middle_opener, _ = headers[len(headers) // 2]
        first = headers[0][3]
        row = {field: _text(first.get(field)) for field in INDEX_FIELDS}
        row["instances"] = len(headers)
        row["location"] = location
        image = middle_slice(_read(middle_opener, pixels=True))
    uid = row["SeriesInstanceUID"] or as_path(location).stem
    thumbnail = as_path(f"{thumbnails_root.rstrip('/')}/{uid}.png")
    with atomic_writer(thumbnail) as fh:
        image.save(fh, format="PNG")
    row["thumbnail"] = str(thumbnail)
    row["middle_instance"] = middle_name
    return row


def _instance_number(ds: Any) -> int:
    try:
        return int(ds.get("InstanceNumber"))
    except (TypeError, ValueError):
        return 0


def middle_slice(ds: Any):
    """An 8-bit greyscale thumbnail of a DICOM image (the middle frame of a multi-frame one), windowed to
    its 1st to 99th percentile after the modality rescale."""
    import numpy as np
    from PIL import Image

    pixels = ds.pixel_array
    if pixels.ndim == 3 and int(ds.get("SamplesPerPixel", 1) or 1) == 1:
        pixels = pixels[pixels.shape[0] // 2]
    if pixels.ndim == 3:  # colour: average the channels
        pixels = pixels.mean(axis=-1)
    values = pixels.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
        ds.get("RescaleIntercept", 0) or 0
    )
    low, high = np.percentile(values, [1, 99])
    scaled = np.zeros_like(values) if high <= low else np.clip((values - low) / (high - low), 0, 1)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1 - scaled
    image = Image.fromarray((scaled * 255).astype(np.uint8))
    ratio = THUMBNAIL / max(image.size)  # small images are enlarged too, so every tile has the same size
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.BILINEAR)


# --- the outputs -------------------------------------------------------------------------------------
def _series_order(row: dict[str, Any]) -> tuple:
    try:
        number = float(row.get("SeriesNumber") or "inf")
    except ValueError:
        number = float("inf")
    return (row.get("PatientID", ""), row.get("StudyInstanceUID", ""), number, row.get("SeriesInstanceUID", ""))


def write_index(rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """One CSV row per series (header fields, instance count, where it is, its thumbnail)."""
    target = as_path(path)
    with atomic_writer(target, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=INDEX_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in sorted(rows, key=_series_order):
            writer.writerow(row)
    return {"path": str(target), "series": len(rows)}


def write_contact_sheet(rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """A PNG grid: each series' middle-slice thumbnail, labelled with patient, modality and description."""
    from PIL import Image, ImageDraw

    rows = sorted(rows, key=_series_order)
    columns = max(1, min(6, math.ceil(math.sqrt(len(rows)))))
    lines = max(1, math.ceil(len(rows) / columns))
    tile_h = THUMBNAIL + LABEL_HEIGHT
    sheet = Image.new("L", (columns * THUMBNAIL, lines * tile_h), color=0)
    draw = ImageDraw.Draw(sheet)
    for i, row in enumerate(rows):
        x, y = (i % columns) * THUMBNAIL, (i // columns) * tile_h
        with as_path(row["thumbnail"]).open("rb") as fh:
            thumb = Image.open(fh)
            thumb.load()
        sheet.paste(thumb, (x + (THUMBNAIL - thumb.width) // 2, y + (THUMBNAIL - thumb.height) // 2))
        label = f"{row.get('PatientID', '')} {row.get('Modality', '')}\n{row.get('SeriesDescription', '')[:36]}"
        draw.multiline_text((x + 4, y + THUMBNAIL + 2), label, fill=255, spacing=2)
    target = as_path(path)
    with atomic_writer(target) as fh:
        sheet.save(fh, format="PNG")
    return {"path": str(target), "series": len(rows), "size": list(sheet.size)}
