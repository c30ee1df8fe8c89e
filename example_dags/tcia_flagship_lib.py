"""Helpers of the flagship pipeline's DAGs (not a DAG: listed in ``.airflowignore``).

What arrives — a downloaded series on object storage, either a folder of DICOM files (``extract`` layout)
or one zip (``zip`` layout) — is found and read straight from the store with the provider's helpers
(:mod:`airflow_provider_tcia.downloads.layout`: ``verified_series``, ``dicom_members``), one file at a time:
its DICOM headers for the index and its middle slice for the contact sheet. Results go back to object storage,
written atomically; only paths and small dicts travel through XCom, so the DAGs run unchanged on Celery or
Kubernetes executors.

Needs the ``examples`` extra: ``pip install 'airflow-provider-tcia[examples]'`` (pydicom, numpy, pillow).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import IO, Any

from airflow_provider_tcia.compat import asset  # Asset(name=, uri=) on Airflow 3, a Dataset on 2.11
from airflow_provider_tcia.downloads.layout import dicom_members, verified_series
from airflow_provider_tcia.storage import as_path, atomic_writer

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

#: The DICOM header fields the index keeps, one row per series. ``Collection`` is TCIA's private ProjectName
#: (``(0013,1010)`` of the ``CTP`` private creator), which every file TCIA serves carries.
INDEX_FIELDS = (
    "Collection",
    "PatientID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyDate",
    "StudyDescription",
    "SeriesDate",
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
INDEX_COLUMNS = (*INDEX_FIELDS, "row_spacing_mm", "column_spacing_mm", "instances", "location", "thumbnail")
#: Index columns that hold numbers (the rest are text): integers, and floats (millimetres).
INTEGER_COLUMNS = frozenset({"SeriesNumber", "Rows", "Columns", "instances"})
FLOAT_COLUMNS = frozenset({"SliceThickness", "row_spacing_mm", "column_spacing_mm"})
#: The contact sheet: square tiles of this many pixels, each above a label of LABEL_LINES lines.
THUMBNAIL = 256
LABEL_FONT_SIZE = 15
LABEL_LINES = 4
LABEL_HEIGHT = LABEL_LINES * (LABEL_FONT_SIZE + 4) + 8
TILE_GAP = 6
_CTP = (0x0013, 0x0010)
_PROJECT_NAME = (0x0013, 0x1010)


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
    """Every series downloaded and verified below ``root`` (the provider's
    :func:`~airflow_provider_tcia.downloads.layout.verified_series`), as locations for XCom.

    For manual runs of the processing DAG, which have no asset event saying what arrived.
    """
    return [str(path) for path in verified_series(root)]


# --- reading a series --------------------------------------------------------------------------------
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


def _number(value: Any, kind: type) -> int | float | None:
    """An integer or float column's value (None when the header has none or it is not a number)."""
    try:
        return kind(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def collection_of(ds: Any) -> str:
    """The collection a TCIA file belongs to: its private ProjectName, under the ``CTP`` private creator."""
    creator, name = ds.get(_CTP), ds.get(_PROJECT_NAME)
    if creator is None or name is None or str(creator.value).strip() != "CTP":
        return ""
    value = name.value
    return (value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)).strip()


def index_row(ds: Any) -> dict[str, Any]:
    """The index columns a series' header gives (from one of its files): text, numbers as numbers."""
    row: dict[str, Any] = {}
    for field in INDEX_FIELDS:
        value = collection_of(ds) if field == "Collection" else ds.get(field)
        if field in INTEGER_COLUMNS:
            row[field] = _number(value, int)
        elif field in FLOAT_COLUMNS:
            row[field] = _number(value, float)
        else:
            row[field] = _text(value)
    spacing = ds.get("PixelSpacing")
    spacing = list(spacing) if spacing is not None and not isinstance(spacing, str | bytes) else []
    row["row_spacing_mm"] = _number(spacing[0], float) if len(spacing) == 2 else None
    row["column_spacing_mm"] = _number(spacing[1], float) if len(spacing) == 2 else None
    return row


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
        row = index_row(headers[0][3])
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


def _first(value: Any) -> float | None:
    """The first of a DS value that may be multi-valued (``40\\-600``), as a float."""
    if value is not None and not isinstance(value, str | bytes) and hasattr(value, "__len__"):
        value = value[0] if len(value) else None
    return _number(value, float)


def middle_slice(ds: Any):
    """An 8-bit greyscale thumbnail of a DICOM image (the middle frame of a multi-frame one), displayed
    as a viewer would: the modality rescale (CT in HU), then the header's first window (WindowCenter /
    WindowWidth), or the 1st to 99th percentile when it has none."""
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
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        low, high = center - width / 2, center + width / 2
    else:
        low, high = np.percentile(values, [1, 99])
    scaled = np.zeros_like(values) if high <= low else np.clip((values - low) / (high - low), 0, 1)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 1 - scaled
    image = Image.fromarray((scaled * 255).astype(np.uint8))
    ratio = THUMBNAIL / max(image.size)  # small images are enlarged too, so every tile has the same size
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    return image.resize(size, Image.Resampling.BICUBIC if ratio > 1 else Image.Resampling.LANCZOS)


# --- the outputs -------------------------------------------------------------------------------------
def _series_order(row: dict[str, Any]) -> tuple:
    number = _number(row.get("SeriesNumber"), float)
    return (
        row.get("Collection") or "",
        row.get("PatientID") or "",
        row.get("StudyInstanceUID") or "",
        float("inf") if number is None else number,
        row.get("SeriesInstanceUID") or "",
    )


def write_index(rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """One row per series (header fields, pixel spacing as numbers, instance count, where it is, its
    thumbnail), in series order: Parquet when ``path`` ends in ``.parquet`` (needs pyarrow: the ``parquet``
    extra; integer and float columns typed), CSV otherwise."""
    target = as_path(path)
    ordered = sorted(rows, key=_series_order)
    if target.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        def kind(column: str):
            return pa.int64() if column in INTEGER_COLUMNS else pa.float64() if column in FLOAT_COLUMNS else pa.string()

        schema = pa.schema([(column, kind(column)) for column in INDEX_COLUMNS])
        table = pa.Table.from_pylist([{c: row.get(c) for c in INDEX_COLUMNS} for row in ordered], schema=schema)
        with atomic_writer(target) as fh:
            pq.write_table(table, fh)
    else:
        with atomic_writer(target, "w") as fh:
            writer = csv.DictWriter(fh, fieldnames=INDEX_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in ordered:
                writer.writerow(row)
    return {"path": str(target), "series": len(rows)}


def parquet_available() -> bool:
    """Whether pyarrow is installed (``pip install 'airflow-provider-tcia[parquet]'``)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _label_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable (Pillow >= 10.1 with FreeType)
    except TypeError:
        return ImageFont.load_default()


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def tile_label(row: dict[str, Any]) -> list[str]:
    """The lines under a series' tile: collection, patient, modality and instance count, description."""
    count = row.get("instances")
    images = f"{count} image{'' if str(count) == '1' else 's'}" if count not in (None, "") else ""
    modality = " · ".join(v for v in (str(row.get("Modality") or ""), images) if v)
    number = row.get("SeriesNumber")
    description = str(row.get("SeriesDescription") or "")
    if number not in (None, ""):
        description = f"#{number} {description}".rstrip()
    return [str(row.get("Collection") or ""), str(row.get("PatientID") or ""), modality, description]


def write_contact_sheet(rows: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """A PNG grid: each series' middle-slice thumbnail (``THUMBNAIL`` pixels square), labelled under it with
    its collection, patient, modality, instance count and series description, in series order."""
    from PIL import Image, ImageDraw

    rows = sorted(rows, key=_series_order)
    columns = max(1, min(6, math.ceil(math.sqrt(len(rows)))))
    lines = max(1, math.ceil(len(rows) / columns))
    tile_w, tile_h = THUMBNAIL + TILE_GAP, THUMBNAIL + LABEL_HEIGHT + TILE_GAP
    sheet = Image.new("L", (columns * tile_w + TILE_GAP, lines * tile_h + TILE_GAP), color=24)
    draw = ImageDraw.Draw(sheet)
    font = _label_font(LABEL_FONT_SIZE)
    for i, row in enumerate(rows):
        x, y = TILE_GAP + (i % columns) * tile_w, TILE_GAP + (i // columns) * tile_h
        draw.rectangle((x, y, x + THUMBNAIL - 1, y + THUMBNAIL - 1), fill=0)
        with as_path(row["thumbnail"]).open("rb") as fh:
            thumb = Image.open(fh)
            thumb.load()
        sheet.paste(thumb.convert("L"), (x + (THUMBNAIL - thumb.width) // 2, y + (THUMBNAIL - thumb.height) // 2))
        for k, text in enumerate(tile_label(row)[:LABEL_LINES]):
            shade = 255 if k < 2 else 200
            ty = y + THUMBNAIL + 4 + k * (LABEL_FONT_SIZE + 4)
            draw.text((x + 2, ty), _fit(draw, text, font, THUMBNAIL - 4), fill=shade, font=font)
    target = as_path(path)
    with atomic_writer(target) as fh:
        sheet.save(fh, format="PNG")
    return {"path": str(target), "series": len(rows), "size": list(sheet.size)}
