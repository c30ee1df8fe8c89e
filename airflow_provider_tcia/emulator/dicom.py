"""A small DICOM Part 10 writer: explicit VR little endian, one grey-scale frame per file.

Written by hand so the provider needs no DICOM library at run time (pydicom reads what it writes; the tests
check that). Built for throughput: everything that is the same for every file of a series is encoded once
(:class:`SeriesTemplate`), and the pixel data of a frame is cached per shape, so a file costs a few small
``struct.pack`` calls plus a cached ``bytes`` object.

The picture: a soft horizontal gradient with a bright disk whose radius and position follow the slice, so
scrolling through a series shows something move.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

#: Explicit VR Little Endian.
TRANSFER_SYNTAX_UID = "1.2.840.10008.1.2.1"
IMPLEMENTATION_CLASS_UID = "2.25.157469370929153734617398210744317204883"
IMPLEMENTATION_VERSION_NAME = "TCIA_EMULATOR_1"

#: SOP Class UID by modality (anything else is Secondary Capture).
SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "NM": "1.2.840.10008.5.1.4.1.1.20",
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

_LONG_VRS = frozenset({"OB", "OW", "OF", "SQ", "UT", "UN"})
_BITS_STORED = 12
_MAX_VALUE = (1 << _BITS_STORED) - 1

# (keyword, tag, VR) of the series-level attributes, in tag order.
_SERIES_TAGS: tuple[tuple[str, int, str], ...] = (
    ("ImageType", 0x00080008, "CS"),
    ("SOPClassUID", 0x00080016, "UI"),
    ("StudyDate", 0x00080020, "DA"),
    ("SeriesDate", 0x00080021, "DA"),
    ("Modality", 0x00080060, "CS"),
    ("Manufacturer", 0x00080070, "LO"),
    ("StudyDescription", 0x00081030, "LO"),
    ("SeriesDescription", 0x0008103E, "LO"),
    ("ManufacturerModelName", 0x00081090, "LO"),
    ("PatientName", 0x00100010, "PN"),
    ("PatientID", 0x00100020, "LO"),
    ("PatientBirthDate", 0x00100030, "DA"),
    ("PatientSex", 0x00100040, "CS"),
    ("PatientAge", 0x00101010, "AS"),
    ("EthnicGroup", 0x00102160, "SH"),
    ("BodyPartExamined", 0x00180015, "CS"),
    ("SliceThickness", 0x00180050, "DS"),
    ("SoftwareVersions", 0x00181020, "LO"),
    ("ProtocolName", 0x00181030, "LO"),
    ("StudyInstanceUID", 0x0020000D, "UI"),
    ("SeriesInstanceUID", 0x0020000E, "UI"),
    ("StudyID", 0x00200010, "SH"),
    ("SeriesNumber", 0x00200011, "IS"),
    ("ImageOrientationPatient", 0x00200037, "DS"),
    ("PixelSpacing", 0x00280030, "DS"),
    ("WindowCenter", 0x00281050, "DS"),
    ("WindowWidth", 0x00281051, "DS"),
)
_SERIES_KEYWORDS = frozenset(k for k, _, _ in _SERIES_TAGS)


def _pad(value: bytes, vr: str) -> bytes:
    if len(value) % 2:
        return value + (b"\0" if vr in ("UI", "OB") else b" ")
    return value


def element(tag: int, vr: str, value: bytes | str) -> bytes:
    """One data element, explicit VR little endian, value padded to an even length."""
    raw = _pad(value.encode("ascii", "replace") if isinstance(value, str) else value, vr)
    group, elem = tag >> 16, tag & 0xFFFF
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, vr.encode(), 0, len(raw)) + raw
    return struct.pack("<HH2sH", group, elem, vr.encode(), len(raw)) + raw


def _us(tag: int, value: int) -> bytes:
    return element(tag, "US", struct.pack("<H", value))


def _ds(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


@lru_cache(maxsize=512)
def pixel_frame(rows: int, columns: int, variant: int, variants: int) -> bytes:
    """A 16-bit frame (12 bits stored) showing a gradient and a disk that moves with ``variant``.

    Built row by row from two precomputed rows (gradient and bright), so even 512x512 takes milliseconds.
    """
    phase = (variant % max(variants, 1)) / max(variants, 1)
    size = min(rows, columns)
    radius = size * (0.12 + 0.18 * (0.5 - 0.5 * math.cos(2 * math.pi * phase)))
    cx = columns * (0.35 + 0.3 * phase)
    cy = rows * 0.5
    gradient = struct.pack(f"<{columns}H", *(300 + (900 * x) // max(columns - 1, 1) for x in range(columns)))
    bright = struct.pack(f"<{columns}H", *(3000 + (600 * x) // max(columns - 1, 1) for x in range(columns)))
    inner = struct.pack(f"<{columns}H", *([_MAX_VALUE] * columns))
    out = bytearray()
    for y in range(rows):
        dy = y + 0.5 - cy
        if abs(dy) >= radius:
            out += gradient
            continue
        half = math.sqrt(radius * radius - dy * dy)
        x0, x1 = max(0, int(cx - half)), min(columns, int(cx + half))
        inner_half = half * 0.35 if abs(dy) < radius * 0.35 else 0.0
        i0, i1 = max(x0, int(cx - inner_half)), min(x1, int(cx + inner_half))
        out += gradient[: 2 * x0] + bright[2 * x0 : 2 * i0] + inner[2 * i0 : 2 * i1]
        out += bright[2 * i1 : 2 * x1] + gradient[2 * x1 :]
    return bytes(out)


@dataclass(frozen=True)
class SeriesTemplate:
    """Everything one series' files share; builds each file's header and picks its pixel data.

    :param attributes: DICOM keyword -> value for the series-level attributes (``PatientID``,
        ``StudyInstanceUID``, ``Modality``, ``SeriesNumber`` …; dates as ``YYYYMMDD``). Missing or empty
        ones are left out of the files.
    :param rows: frame height in pixels.
    :param columns: frame width in pixels.
    :param variants: how many distinct frames the series cycles through (0: one per instance).
    """

    attributes: Mapping[str, str]
    rows: int = 64
    columns: int = 64
    variants: int = 0

    @cached_property
    def sop_class_uid(self) -> str:
        return self.attributes.get("SOPClassUID") or SOP_CLASSES.get(
            str(self.attributes.get("Modality", "")), SECONDARY_CAPTURE
        )

    @cached_property
    def _static(self) -> tuple[tuple[int, bytes], ...]:
        values = dict(self.attributes)
        values.setdefault("ImageType", "ORIGINAL\\PRIMARY\\AXIAL")
        values["SOPClassUID"] = self.sop_class_uid
        values.setdefault("ImageOrientationPatient", "1\\0\\0\\0\\1\\0")
        values.setdefault("PixelSpacing", "0.7\\0.7")
        values.setdefault("SliceThickness", "2.5")
        values.setdefault("WindowCenter", "2048")
        values.setdefault("WindowWidth", "4096")
        unknown = set(self.attributes) - _SERIES_KEYWORDS
        if unknown:
            raise ValueError(f"not series-level DICOM keywords: {sorted(unknown)}")
        out = [(tag, element(tag, vr, str(values[kw]))) for kw, tag, vr in _SERIES_TAGS if values.get(kw)]
        out += [
            (0x00280002, _us(0x00280002, 1)),
            (0x00280004, element(0x00280004, "CS", "MONOCHROME2")),
            (0x00280010, _us(0x00280010, self.rows)),
            (0x00280011, _us(0x00280011, self.columns)),
            (0x00280100, _us(0x00280100, 16)),
            (0x00280101, _us(0x00280101, _BITS_STORED)),
            (0x00280102, _us(0x00280102, _BITS_STORED - 1)),
            (0x00280103, _us(0x00280103, 0)),
        ]
        return tuple(out)

    @property
    def pixel_length(self) -> int:
        return self.rows * self.columns * 2

    def header(self, sop_instance_uid: str, instance_number: int) -> bytes:
        """Preamble, file meta and every element up to and including the Pixel Data element's header."""
        meta_body = b"".join(
            (
                element(0x00020001, "OB", b"\0\1"),
                element(0x00020002, "UI", self.sop_class_uid),
                element(0x00020003, "UI", sop_instance_uid),
                element(0x00020010, "UI", TRANSFER_SYNTAX_UID),
                element(0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
                element(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),
            )
        )
        z = _ds(instance_number * 2.5)
        dynamic = [
            (0x00080018, element(0x00080018, "UI", sop_instance_uid)),
            (0x00200012, element(0x00200012, "IS", "1")),
            (0x00200013, element(0x00200013, "IS", str(instance_number))),
            (0x00200032, element(0x00200032, "DS", f"0\\0\\{z}")),
            (0x00201041, element(0x00201041, "DS", z)),
        ]
        body = b"".join(raw for _, raw in sorted((*self._static, *dynamic)))
        pixel_head = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, self.pixel_length)
        return b"".join(
            (
                b"\0" * 128,
                b"DICM",
                element(0x00020000, "UL", struct.pack("<I", len(meta_body))),
                meta_body,
                body,
                pixel_head,
            )
        )

    def pixels(self, index: int, count: int) -> bytes:
        """The pixel data of instance ``index`` (0-based) of ``count``."""
        variants = self.variants or count
        return pixel_frame(self.rows, self.columns, index % variants, variants)

    def file_size(self, sop_instance_uid: str, instance_number: int) -> int:
        return len(self.header(sop_instance_uid, instance_number)) + self.pixel_length

    def file_parts(self, sop_instance_uid: str, instance_number: int, index: int, count: int) -> list[bytes]:
        """One file as ``[header, pixel data]`` (the pixel data is shared, never copied)."""
        return [self.header(sop_instance_uid, instance_number), self.pixels(index, count)]


def dicom_date(value: object) -> str:
    """``YYYYMMDD`` from a date (or empty)."""
    return value.strftime("%Y%m%d") if value is not None and hasattr(value, "strftime") else ""
