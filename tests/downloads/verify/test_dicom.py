"""The structural DICOM check: every file of pydicom's test corpus (any valid DICOM, not the emulator's), cut
short anywhere, fed in pieces of any size, with flat memory; and files built to break one rule each."""

from __future__ import annotations

import io
import os
import random
import struct
import tracemalloc
import warnings
import zlib

import pytest

from airflow_provider_tcia.downloads.verify.dicom import DicomStructureChecker, check_dicom_bytes
from airflow_provider_tcia.exceptions import TciaCorruptDicomError, TciaCorruptPayloadError

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

CORPUS = os.path.dirname(get_testdata_file("CT_small.dcm"))
#: What pydicom's corpus holds that this check must refuse or cannot check, and why.
EXPECTED_FAILURES = {
    "MR_truncated.dcm": "it ends inside element (7FE0,0010)",  # truncated on purpose
    "rtplan_truncated.dcm": "it ends inside element (300A,00B0)",  # truncated on purpose
    # stripped fixtures: an image SOP class (CT, MR, RT Image) with no pixel data at all
    "UN_sequence.dcm": "is an image (SOP class 1.2.840.10008.5.1.4.1.1.2) but holds no pixel data",
    "priv_SQ.dcm": "is an image (SOP class 1.2.840.10008.5.1.4.1.1.4) but holds no pixel data",
    "no_meta_group_length.dcm": "is an image (SOP class 1.2.840.10008.5.1.4.1.1.481.1) but holds no pixel data",
}
EXPECTED_UNCHECKED = {
    "ExplVR_BigEndNoMeta.dcm": "not a DICOM Part 10 file",
    "ExplVR_LitEndNoMeta.dcm": "not a DICOM Part 10 file",
    "no_meta.dcm": "not a DICOM Part 10 file",
    "rtstruct.dcm": "not a DICOM Part 10 file",
    "meta_missing_tsyntax.dcm": "no TransferSyntaxUID",
}
CORPUS_FILES = sorted(f for f in os.listdir(CORPUS) if f.endswith(".dcm"))


def corpus(name: str) -> bytes:
    with open(os.path.join(CORPUS, name), "rb") as fh:
        return fh.read()


def fed(data: bytes, step: int):
    checker = DicomStructureChecker("x.dcm")
    for i in range(0, len(data), step):
        checker.feed(memoryview(data)[i : i + step])
    return checker.finish()


def outcome(data: bytes, step: int) -> str:
    try:
        result = fed(data, step)
    except TciaCorruptDicomError as err:
        return f"error: {err}"
    return ("checked: " if result.checked else "unchecked: ") + result.detail


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_file_of_pydicoms_corpus(name):
    data = corpus(name)
    whole = outcome(data, len(data) or 1)
    if name in EXPECTED_FAILURES:
        assert whole.startswith("error: ") and EXPECTED_FAILURES[name] in whole
    elif name in EXPECTED_UNCHECKED:
        assert whole.startswith("unchecked: ") and EXPECTED_UNCHECKED[name] in whole
    else:
        assert whole.startswith("checked: "), whole
    # The result does not depend on how the bytes arrive.
    assert outcome(data, 1) == outcome(data, 7) == outcome(data, 4096) == whole


#: Files whose pixel data is their last element, in each encoding: a cut anywhere must fail.
CUT_FILES = [
    "CT_small.dcm",  # explicit VR little endian, sequences
    "MR_small_implicit.dcm",  # implicit VR
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "JPEG2000.dcm",  # encapsulated
    "JPEG2000-embedded-sequence-delimiter.dcm",  # a fragment holding the delimiter's bytes
    "SC_ybr_full_422_uncompressed.dcm",  # 2 samples a pixel
    "liver_1frame.dcm",  # 1 bit a pixel
    "SC_rgb_rle_2frame.dcm",  # 2 frames, encapsulated
    "SC_rgb_small_odd.dcm",  # odd pixel length, padded
    "examples_ybr_color.dcm",  # many fragments
]


@pytest.mark.parametrize("name", CUT_FILES)
def test_a_cut_anywhere_fails(name):
    """Anywhere before the end of the pixel data (after it, CT_small keeps 138 bytes of dataset trailing padding,
    (FFFC,FFFC): a cut exactly before that element cannot be told from the end of a file)."""
    data = corpus(name)
    assert fed(data, len(data)).checked
    padding = data.rfind(b"\xfc\xff\xfc\xffOB")
    end = padding if padding > 0 else len(data)
    rng = random.Random(name)
    cuts = set(range(0, min(end, 1600))) | {end - 1, end - 2, end // 2}
    cuts |= set(rng.sample(range(end), min(200, end)))
    undetected = []
    for cut in sorted(cuts):
        try:
            check_dicom_bytes(data[:cut])
        except TciaCorruptDicomError:
            continue
        undetected.append(cut)
    assert undetected == []


def test_a_deflated_dataset_cut_short_fails():
    data = corpus("image_dfl.dcm")
    assert check_dicom_bytes(data).checked
    # (its deflate stream ends 8 bytes before the file does: those are ignored, as readers do)
    for cut in (len(data) - 9, len(data) // 2, 400):
        with pytest.raises(TciaCorruptDicomError, match=r"deflate|ends inside"):
            check_dicom_bytes(data[:cut])


def test_the_error_says_what_is_missing():
    data = corpus("CT_small.dcm")
    with pytest.raises(TciaCorruptDicomError) as err:
        check_dicom_bytes(data[: len(data) - 1000])
    assert str(err.value) == (
        "the file: it ends inside element (7FE0,0010) at byte 6,288, which declares 32,768 bytes: 862 of them "
        "are missing (38,206 bytes received)"
    )
    assert isinstance(err.value, TciaCorruptPayloadError)  # (retried like any corrupt body)


# --- files built to break one rule each ------------------------------------------------------------------
def image(
    *,
    rows: int = 4,
    columns: int = 4,
    bits: int = 16,
    samples: int = 1,
    frames: int | None = None,
    pixels: bytes | None = None,
    syntax: str = ExplicitVRLittleEndian,
    sequence: bool = False,
) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.Modality = "CT"
    if sequence:  # undefined-length sequence and items, nested
        inner = Dataset()
        inner.CodeValue = "123"
        inner.CodingSchemeDesignator = "DCM"
        outer = Dataset()
        outer.CodeMeaning = "outer"
        outer.ConceptNameCodeSequence = Sequence([inner])
        ds.ContentSequence = Sequence([outer, Dataset()])
        ds["ContentSequence"].is_undefined_length = True
        outer["ConceptNameCodeSequence"].is_undefined_length = True
        for item in ds.ContentSequence:
            item.is_undefined_length_sequence_item = True
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, columns, bits, bits, bits - 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = samples, "MONOCHROME2", 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels if pixels is not None else bytes(rows * columns * samples * (frames or 1) * bits // 8)
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds["PixelData"].VR = "OB"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    return buf.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_undefined_length_sequences_and_items(syntax):
    data = image(sequence=True, syntax=syntax)
    result = check_dicom_bytes(data)
    assert result.checked and result.transfer_syntax == syntax and result.sop_instance_uid == "1.2.3.4.5"
    assert "native pixel data of 32 bytes = Rows 4 x Columns 4 x 1 samples a pixel x 16 bits / 8 x 1 frames" in (
        result.detail
    )
    if syntax != DeflatedExplicitVRLittleEndian:
        # Cut at element boundaries inside the sequences: what was opened is never closed.
        with pytest.raises(TciaCorruptDicomError, match=r"ends inside sequence \(0040,A043\) .* no sequence delimiter"):
            check_dicom_bytes(data[: data.index(b"\xfe\xff\xdd\xe0")])
        with pytest.raises(TciaCorruptDicomError, match=r"ends inside item \(FFFE,E000\) .* no item delimiter"):
            check_dicom_bytes(data[: data.index(b"\xfe\xff\x0d\xe0")])


def test_native_pixel_data_shorter_than_its_rows_and_columns_say():
    # A consistent element (its length says 24 bytes, 24 are there), but 4 x 4 x 16 bits makes 32.
    with pytest.raises(TciaCorruptDicomError, match=r"has 24 bytes, but Rows 4 x Columns 4 .* makes 32"):
        check_dicom_bytes(image(pixels=bytes(24)))
    with pytest.raises(TciaCorruptDicomError, match=r"makes 96"):
        check_dicom_bytes(image(frames=3, pixels=bytes(64)))
    longer = check_dicom_bytes(image(pixels=bytes(40)))  # longer: every frame is there; said, and tolerated
    assert longer.checked and "8 more than" in longer.detail


def test_an_image_cut_at_an_element_boundary_before_its_pixel_data():
    data = image()
    pixel = data.index(b"\xe0\x7f\x10\x00")
    with pytest.raises(TciaCorruptDicomError, match="holds no pixel data"):
        check_dicom_bytes(data[:pixel])
    meta_end = data.index(b"\x08\x00")  # (the first element after the file meta)
    with pytest.raises(TciaCorruptDicomError, match=r"nothing after its file meta|holds no pixel data"):
        check_dicom_bytes(data[:meta_end])


def encapsulated(fragments: list[bytes], *, delimiter: bool = True) -> bytes:
    data = image(syntax=JPEGBaseline8Bit, pixels=encapsulate(fragments))
    if not delimiter:
        assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
        data = data[:-8]
    return data


def test_encapsulated_pixel_data_ends_with_its_sequence_delimiter():
    result = check_dicom_bytes(encapsulated([b"\xff\xd8frame1\xff\xd9", b"\xff\xd8frame2\xff\xd9"]))
    assert result.checked and "encapsulated pixel data: 3 items, ended by its sequence delimiter" in result.detail
    with pytest.raises(TciaCorruptDicomError, match=r"encapsulated pixel data .* with no sequence delimiter"):
        check_dicom_bytes(encapsulated([b"\xff\xd8frame1\xff\xd9"], delimiter=False))


def test_an_element_longer_than_its_item():
    data = bytearray(image(sequence=True))
    # Make the first item of defined length, too short for what it holds.
    ds = pydicom.dcmread(io.BytesIO(bytes(data)))
    ds["ContentSequence"].is_undefined_length = False
    for item in ds.ContentSequence:
        item.is_undefined_length_sequence_item = False
    buf = io.BytesIO()
    ds.save_as(buf)
    raw = bytearray(buf.getvalue())
    item = raw.index(b"\xfe\xff\x00\xe0")
    (length,) = struct.unpack_from("<I", raw, item + 4)
    struct.pack_into("<I", raw, item + 4, length - 4)
    with pytest.raises(TciaCorruptDicomError, match="past the end of the item"):
        check_dicom_bytes(bytes(raw))


def test_what_cannot_be_checked_is_said_never_called_checked():
    data = bytearray(image())
    syntax = data.index(ExplicitVRLittleEndian.encode())
    private = b"1.2.3.999.1.2.3.4.5"  # same length as 1.2.840.10008.1.2.1
    data[syntax : syntax + len(private)] = private
    result = check_dicom_bytes(bytes(data))
    assert not result.checked and result.detail == (
        "its transfer syntax 1.2.3.999.1.2.3.4.5 is not a standard one, so its encoding is unknown"
    )
    assert result.describe().startswith("DICOM structure not checked: ")
    assert not check_dicom_bytes(b"\0" * 128 + b"NOPE" + b"\0" * 100).checked


def test_a_bad_vr_inside_the_dataset():
    data = bytearray(image())
    modality = data.index(b"\x08\x00\x60\x00CS")
    data[modality + 4 : modality + 6] = b"Q?"
    with pytest.raises(TciaCorruptDicomError, match=r"element \(0008,0060\) at byte .* has no valid VR"):
        check_dicom_bytes(bytes(data))


def test_too_short_to_be_a_dicom_file():
    with pytest.raises(TciaCorruptDicomError, match="too few for a DICOM file"):
        check_dicom_bytes(b"\0" * 100)
    with pytest.raises(TciaCorruptDicomError, match="ends inside its file meta"):
        check_dicom_bytes(image()[:140])


def test_memory_stays_flat_whatever_the_size():
    """A 256 MiB pixel data element fed in 1 MiB chunks: the checker holds headers, never data."""
    head = image(rows=8192, columns=16384, bits=16, pixels=b"")
    # (pydicom wrote a zero-length pixel data element last: give it its real length)
    assert head.endswith(b"\xe0\x7f\x10\x00OW\x00\x00\x00\x00\x00\x00")
    head = head[:-4] + struct.pack("<I", 8192 * 16384 * 2)
    chunk = bytes(1 << 20)
    checker = DicomStructureChecker()
    tracemalloc.start()
    try:
        checker.feed(head)
        for _ in range(256):
            checker.feed(chunk)
        result = checker.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.checked and result.size == len(head) + (256 << 20)
    assert peak < 256 << 10


def test_the_deflated_inflater_output_is_bounded():
    """A deflated dataset that inflates to far more than it weighs (a deflate bomb) is read in bounded pieces."""
    data = image(rows=2048, columns=2048, bits=16, syntax=DeflatedExplicitVRLittleEndian)
    assert len(data) < 64 << 10  # (8 MiB of zeros, deflated)
    tracemalloc.start()
    try:
        result = check_dicom_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.checked and "= Rows 2048 x Columns 2048" in result.detail
    assert peak < 4 << 20
    assert zlib  # (the module is what pydicom uses to write it)
