"""The flagship processing's helpers on the emulator's DICOM files, without a DAG run: the index (CSV and
Parquet, numbers as numbers), the middle-slice thumbnail (windowed as the header says) and the contact sheet
(tiles a person can read)."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest
from PIL import Image

from airflow_provider_tcia.emulator.catalog import GBM_SERIES, LIDC_CT, default_catalog
from airflow_provider_tcia.emulator.dataset import Dataset
from tests.dags import load_example


@pytest.fixture(scope="module")
def lib():
    return load_example("tcia_flagship_lib")


@pytest.fixture(scope="module")
def summaries(lib, tmp_path_factory):
    """Index rows of three emulator series (an MR head, a chest CT, a mammogram), their files written to a
    folder each, as the ``extract`` layout leaves them."""
    root = tmp_path_factory.mktemp("flagship")
    data = Dataset(default_catalog)
    mammogram = next(s for s in data.find_series(collection="CBIS-DDSM"))
    rows = []
    for series in (data.series(GBM_SERIES), data.series(LIDC_CT), mammogram):
        folder = root / "downloads" / series.series_instance_uid
        folder.mkdir(parents=True)
        for instance in series.instances():
            (folder / f"{instance.instance_number}.dcm").write_bytes(b"".join(data.instance_file(instance)))
        rows.append(lib.summarise_series(f"file://{folder}", f"file://{root}/thumbnails"))
    return root, rows


def test_index_rows_have_collection_dates_descriptions_and_spacing_as_numbers(summaries):
    _, rows = summaries
    gbm = next(r for r in rows if r["SeriesInstanceUID"] == GBM_SERIES)
    assert gbm["Collection"] == "TCGA-GBM"
    assert gbm["StudyDescription"] == "MRI BRAIN W/WO CONTRAST"
    assert gbm["SeriesDate"] == "19970318"
    assert gbm["SeriesDescription"] == "AX T1 POST GD" and gbm["Modality"] == "MR"
    assert isinstance(gbm["row_spacing_mm"], float) and isinstance(gbm["column_spacing_mm"], float)
    assert gbm["row_spacing_mm"] == pytest.approx(240 / 128, abs=1e-3)
    assert (gbm["Rows"], gbm["Columns"], gbm["instances"]) == (128, 128, 24)
    assert isinstance(gbm["SliceThickness"], float)
    assert gbm["PixelSpacing"] == "1.875\\1.875"  # the header's own text, kept


def test_index_as_csv_and_as_parquet(lib, summaries):
    root, rows = summaries
    csv_result = lib.write_index(rows, f"file://{root}/index.csv")
    parquet_result = lib.write_index(rows, f"file://{root}/index.parquet")
    assert csv_result["series"] == parquet_result["series"] == 3
    with open(root / "index.csv", newline="") as fh:
        from_csv = list(csv.DictReader(fh))
    assert list(from_csv[0]) == list(lib.INDEX_COLUMNS)
    assert {r["Collection"] for r in from_csv} == {"TCGA-GBM", "LIDC-IDRI", "CBIS-DDSM"}
    assert all(float(r["row_spacing_mm"]) > 0 for r in from_csv)

    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(root / "index.parquet")
    assert table.column_names == list(lib.INDEX_COLUMNS)
    types = {field.name: str(field.type) for field in table.schema}
    assert types["Rows"] == types["instances"] == types["SeriesNumber"] == "int64"
    assert types["row_spacing_mm"] == types["column_spacing_mm"] == types["SliceThickness"] == "double"
    assert types["Collection"] == types["SeriesDate"] == types["StudyDescription"] == "string"
    assert table.column("SeriesInstanceUID").to_pylist() == [r["SeriesInstanceUID"] for r in from_csv]
    assert table.column("instances").to_pylist() == [int(r["instances"]) for r in from_csv]


def test_the_thumbnail_applies_the_ct_window(lib):
    """HU 40 is mid-grey in a window centred on 40 — not where the 1st-99th percentile would put it."""
    ds = pydicom.Dataset()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 64, 64, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = -1024, 1, 40, 80
    hu = np.full((64, 64), -1000, dtype=np.int32)  # air
    hu[:, 16:32], hu[:, 32:48], hu[:, 48:] = 40, 1000, 80  # soft tissue, bone, the window's top
    ds.PixelData = (hu + 1024).astype("<u2").tobytes()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    thumb = np.asarray(lib.middle_slice(ds))
    assert thumb.shape == (lib.THUMBNAIL, lib.THUMBNAIL)
    column = thumb[lib.THUMBNAIL // 2]
    assert column[20] == 0 and column[255] == 255 and column[170] == 255
    assert abs(int(column[96]) - 128) <= 3


def test_contact_sheet_tiles_and_labels_are_legible(lib, summaries):
    root, rows = summaries
    result = lib.write_contact_sheet(rows, f"file://{root}/contact_sheet.png")
    sheet = Image.open(root / "contact_sheet.png")
    tile_w, tile_h = lib.THUMBNAIL + lib.TILE_GAP, lib.THUMBNAIL + lib.LABEL_HEIGHT + lib.TILE_GAP
    assert sheet.size == tuple(result["size"]) == (2 * tile_w + lib.TILE_GAP, 2 * tile_h + lib.TILE_GAP)
    assert lib.THUMBNAIL >= 256
    # The first tile's label: four lines of text, each at least 10 pixels tall.
    label = np.asarray(sheet.convert("L"))[
        lib.TILE_GAP + lib.THUMBNAIL : lib.TILE_GAP + lib.THUMBNAIL + lib.LABEL_HEIGHT,
        lib.TILE_GAP : lib.TILE_GAP + lib.THUMBNAIL,
    ]
    inked = (label > 150).any(axis=1)
    runs, length = [], 0
    for row_has_ink in [*inked, False]:
        if row_has_ink:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert len(runs) == 4 and min(runs) >= 10, runs
    first = sorted(rows, key=lib._series_order)[0]
    assert lib.tile_label(first) == [
        "CBIS-DDSM",
        first["PatientID"],
        "MG · 1 image",
        "#1 full mammogram images",
    ]
    # The tiles show pictures (the middle slices), not blank squares.
    tile = np.asarray(sheet.convert("L"))[
        lib.TILE_GAP : lib.TILE_GAP + lib.THUMBNAIL, lib.TILE_GAP : lib.TILE_GAP + 256
    ]
    assert tile.std() > 20
