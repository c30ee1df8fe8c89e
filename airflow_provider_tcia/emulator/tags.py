"""getDicomTags' rows read back from a file the emulator writes: the elements of one image's header.

NBIA reads the tags of the first image of the series from its file; the emulator does the same with the file
it would serve (:mod:`.dicom` writes explicit VR little endian), so the tags always agree with the images.
Rows are ``{"element": "(0008,0060)", "name": "Modality", "data": "MR"}``, in file order, without the file
meta group and the pixel data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from airflow_provider_tcia.emulator.dicom import _SERIES_TAGS

_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"})
_PIXEL_DATA = 0x7FE00010
#: Keywords of every element the emulator writes.
NAMES: dict[int, str] = {tag: keyword for keyword, tag, _ in _SERIES_TAGS} | {
    0x00080018: "SOPInstanceUID",
    0x00130010: "PrivateCreator",
    0x00131010: "ProjectName",  # (TCIA's private CTP tag: the collection)
    0x00200012: "AcquisitionNumber",
    0x00200013: "InstanceNumber",
    0x00200032: "ImagePositionPatient",
    0x00201041: "SliceLocation",
    0x00280002: "SamplesPerPixel",
    0x00280004: "PhotometricInterpretation",
    0x00280010: "Rows",
    0x00280011: "Columns",
    0x00280100: "BitsAllocated",
    0x00280101: "BitsStored",
    0x00280102: "HighBit",
    0x00280103: "PixelRepresentation",
}


def tag_rows(header: bytes) -> Iterator[dict[str, object]]:
    """The rows of a DICOM file's ``header`` (preamble up to the Pixel Data element)."""
    i = 132  # (preamble and "DICM")
    while i + 8 <= len(header):
        group, elem, vr = struct.unpack_from("<HH2s", header, i)
        tag = group << 16 | elem
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", header, i + 8)
            start = i + 12
        else:
            (length,) = struct.unpack_from("<H", header, i + 6)
            start = i + 8
        if tag == _PIXEL_DATA:
            return
        raw = header[start : start + length]
        i = start + length
        if group == 0x0002:
            continue  # (file meta: not the image's tags)
        yield {"element": f"({group:04X},{elem:04X})", "name": NAMES.get(tag, ""), "data": _value(vr, raw)}


def _value(vr: bytes, raw: bytes) -> str:
    if vr == b"US":
        return ",".join(str(v) for (v,) in struct.iter_unpack("<H", raw))
    if vr == b"UL":
        return ",".join(str(v) for (v,) in struct.iter_unpack("<I", raw))
    return raw.rstrip(b"\0 ").decode("ascii", errors="replace")
