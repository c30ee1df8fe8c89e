"""The emulator's pixel data looks like the modality it claims: an anatomical phantom in 3D, cut at each file's
slice position, with headers that agree (CT in Hounsfield units, windows, positions, the collection)."""

from __future__ import annotations

import io
import time

import numpy as np
import pydicom
import pytest

from airflow_provider_tcia.emulator.catalog import GBM_SERIES, default_catalog
from airflow_provider_tcia.emulator.dataset import Dataset
from airflow_provider_tcia.emulator.dicom import FRAMES, SeriesTemplate


def attrs(modality: str, body_part: str, description: str, uid: str = "1.2.3.4", **more: str) -> dict[str, str]:
    return {
        "PatientID": "P-1",
        "StudyInstanceUID": "1.2.3",
        "SeriesInstanceUID": uid,
        "Modality": modality,
        "BodyPartExamined": body_part,
        "SeriesDescription": description,
        **more,
    }


def read(template: SeriesTemplate, index: int) -> pydicom.Dataset:
    raw = b"".join(template.file_parts(f"1.2.3.4.{index + 1}", index + 1))
    assert len(raw) == template.file_size(f"1.2.3.4.{index + 1}", index + 1)
    return pydicom.dcmread(io.BytesIO(raw))


def hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_is_stored_in_hounsfield_units_with_a_window():
    chest = SeriesTemplate(attrs("CT", "CHEST", "CHEST W/O"), rows=128, columns=128, slices=20)
    ds = read(chest, 10)
    assert (float(ds.RescaleIntercept), float(ds.RescaleSlope), ds.RescaleType) == (-1024.0, 1.0, "HU")
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 400.0)  # a mediastinal window
    hu = hounsfield(ds)
    assert abs(np.median(hu[:8, :8]) + 1000) < 30  # air around the patient
    assert (hu < -700).mean() > 0.1  # the lungs
    assert ((hu > -150) & (hu < -50)).mean() > 0.02  # fat
    assert ((hu > 20) & (hu < 80)).mean() > 0.05  # soft tissue: muscle, heart
    assert (hu > 600).sum() > 20  # bone: spine, ribs, sternum
    head = read(SeriesTemplate(attrs("CT", "BRAIN", "HEAD 5MM"), rows=128, columns=128, slices=12), 6)
    assert (float(head.WindowCenter), float(head.WindowWidth)) == (40.0, 90.0)  # a brain window
    hu = hounsfield(head)
    assert (hu > 700).mean() > 0.03  # the skull
    assert ((hu > 15) & (hu < 55)).mean() > 0.2  # the brain


def test_mr_contrast_follows_the_sequence():
    """CSF (the lateral ventricles, just off the centre of a mid-brain slice) is dark on T1 and FLAIR and
    bright on T2; no rescale to HU."""

    def ventricle_and_brain(description: str) -> tuple[float, float]:
        ds = read(SeriesTemplate(attrs("MR", "BRAIN", description), rows=128, columns=128, slices=21), 10)
        assert "RescaleIntercept" not in ds
        pixels = ds.pixel_array.astype(float)
        # The ventricle 0.085 of the half-width right of the midline, 0.1 above the centre.
        x, y = 64 + round(0.085 * 64), 64 - round(0.1 * 64)
        return float(np.median(pixels[y - 1 : y + 2, x - 1 : x + 2])), float(np.median(pixels[pixels > 50]))

    t1_csf, t1_brain = ventricle_and_brain("AX T1")
    t2_csf, t2_brain = ventricle_and_brain("AX T2 FSE")
    flair_csf, flair_brain = ventricle_and_brain("AX FLAIR")
    assert t1_csf < 0.5 * t1_brain
    assert t2_csf > 1.5 * t2_brain
    assert flair_csf < 0.5 * flair_brain


def test_slices_cut_a_3d_phantom_where_the_header_says():
    template = SeriesTemplate(attrs("MR", "BRAIN", "AX T2"), rows=96, columns=96, slices=24)
    datasets = [read(template, k) for k in range(24)]
    locations = [float(ds.SliceLocation) for ds in datasets]
    thickness = float(datasets[0].SliceThickness)
    assert np.allclose(np.diff(locations), thickness) and 0 < thickness <= 10
    assert [float(ds.ImagePositionPatient[2]) for ds in datasets] == locations
    spacing = [float(v) for v in datasets[0].PixelSpacing]
    assert float(datasets[0].ImagePositionPatient[0]) == pytest.approx(-spacing[1] * 96 / 2, abs=0.01)
    # The head is largest in the middle and smaller towards the skull base and the vertex; every slice differs.
    areas = [(ds.pixel_array > 100).mean() for ds in datasets]
    assert areas[12] > 1.3 * max(areas[0], areas[-1])
    assert len({ds.pixel_array.tobytes() for ds in datasets}) == 24


def test_series_differ_but_their_files_keep_their_sizes():
    one = SeriesTemplate(attrs("CT", "CHEST", "", uid="1.2.3.4.100"), rows=128, columns=128, slices=9)
    two = SeriesTemplate(attrs("CT", "CHEST", "", uid="1.2.3.4.200"), rows=128, columns=128, slices=9)
    assert one.pixels(4) != two.pixels(4)
    # Sizes depend on modality, body part, description and count only (SCALE-100K relies on it).
    assert [one.file_size(f"1.2.{k}", k) for k in range(1, 10)] == [two.file_size(f"1.2.{k}", k) for k in range(1, 10)]


def test_a_mammogram_shows_a_breast_against_the_chest_wall():
    template = SeriesTemplate(
        attrs("MG", "BREAST", "full mammogram images", PatientID="Mass-Training_P_01009_RIGHT_CC_1"),
        rows=256,
        columns=208,
    )
    ds = read(template, 0)
    assert "SliceLocation" not in ds and "ImagePositionPatient" not in ds  # a projection image
    pixels = ds.pixel_array.astype(float)
    background, chest_wall = pixels[:, :10], pixels[40:-40, -10:]  # a right breast: the chest wall at the right
    assert np.median(background) < 200 < 1000 < np.median(chest_wall)
    # A rounded outline: the breast reaches furthest from the chest wall at mid-height.
    width = (pixels > 600).sum(axis=1)
    assert width[128] > width[40] and width[128] > width[216] and width[128] > 100
    # Each image of a projection series is its own projection.
    series = SeriesTemplate(attrs("MG", "BREAST", "Mammo MLO"), rows=128, columns=104, slices=4)
    assert len({series.pixels(k) for k in range(4)}) == 4


def test_the_collection_is_in_tcia_private_tags():
    data = Dataset(default_catalog)
    series = data.series(GBM_SERIES)
    ds = pydicom.dcmread(io.BytesIO(b"".join(data.instance_file(next(series.instances())))))
    assert ds[0x0013, 0x0010].value == "CTP"
    assert ds[0x0013, 0x1010].value == "TCGA-GBM"
    assert ds.SeriesDate and ds.StudyDescription == "MRI BRAIN W/WO CONTRAST"


def test_synthetic_series_share_their_frames_and_render_cheaply():
    data = Dataset(default_catalog)
    start = time.perf_counter()
    first = data.add_synthetic_series(4 << 20, rows=512, columns=512)  # 16 frames rendered, then hashed
    elapsed = time.perf_counter() - start
    second = data.add_synthetic_series(4 << 20, rows=512, columns=512, patient_id="SYNTHETIC-0002")
    frames = [data.instance_file(next(s.instances()))[1] for s in (first, second)]
    assert frames[0] is frames[1]  # one cached frame, not two
    assert elapsed < 10  # (some tens of milliseconds a frame; generous for a loaded machine)
    assert FRAMES.budget >= 16 * 512 * 512 * 2
