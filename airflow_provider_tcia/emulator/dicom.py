"""A small DICOM Part 10 writer: explicit VR little endian, one grey-scale frame per file.

Written by hand so the provider needs no DICOM library at run time (pydicom reads what it writes; the tests
check that). Built for throughput: everything that is the same for every file of a series is encoded once
(:class:`SeriesTemplate`), and each frame is rendered once and cached (:data:`FRAMES`), so a file costs a few
small ``struct.pack`` calls plus a cached ``bytes`` object.

The picture: the anatomical phantom of :mod:`.phantom` that the series' modality, body part and description
call for (a head, a chest, an abdomen, breasts, a mammogram, a chest radiograph), cut at each file's slice
position, with details drawn from the series UID. The header agrees with it: CT is stored as HU + 1024 with
RescaleIntercept/RescaleSlope, WindowCenter/WindowWidth suit the picture, ImagePositionPatient and
SliceLocation give the slice that was cut, PixelSpacing the field of view. TCIA's own private tags name the
collection (``(0013,0010) CTP``, ``(0013,1010)`` ProjectName).
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from airflow_provider_tcia.emulator.phantom import CT_OFFSET, Phantom, phantom_for, seed_of

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
#: TCIA's private group: its creator, and the element holding the collection (CTP's "ProjectName").
_CTP_CREATOR = (0x00130010, "CTP")

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
    ("Collection", 0x00131010, "LO"),
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
    ("RescaleIntercept", 0x00281052, "DS"),
    ("RescaleSlope", 0x00281053, "DS"),
    ("RescaleType", 0x00281054, "LO"),
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


class FrameCache:
    """Rendered frames by key, least recently used dropped beyond ``budget`` bytes (thread-safe)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._frames: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, render: Callable[[], bytes]) -> bytes:
        """The frame under ``key``, rendered by ``render()`` when it is not cached."""
        with self._lock:
            frame = self._frames.get(key)
            if frame is not None:
                self._frames.move_to_end(key)
                return frame
        frame = render()  # (outside the lock: two threads may render the same frame once each)
        with self._lock:
            if key not in self._frames:
                self._frames[key] = frame
                self._bytes += len(frame)
            while self._bytes > self.budget and len(self._frames) > 1:
                _, dropped = self._frames.popitem(last=False)
                self._bytes -= len(dropped)
            return self._frames.get(key, frame)


#: Every series' frames: 192 MiB holds 384 frames of 512x512 (a 16-frame synthetic series takes 8 MiB).
FRAMES = FrameCache(192 << 20)


@dataclass(frozen=True)
class SeriesTemplate:
    """Everything one series' files share; builds each file's header and renders its pixel data.

    :param attributes: DICOM keyword -> value for the series-level attributes (``PatientID``,
        ``StudyInstanceUID``, ``Modality``, ``SeriesNumber`` …; dates as ``YYYYMMDD``; ``Collection`` for
        TCIA's private ProjectName). Missing or empty ones are left out of the files.
    :param rows: frame height in pixels.
    :param columns: frame width in pixels.
    :param variants: how many distinct frames the series cycles through (0: one per instance).
    :param slices: how many instances the series has: its slices span the phantom (80 % of its extent,
        10 mm apart at most).
    :param seed: what the phantom's details are drawn from (default: the SeriesInstanceUID). Series that
        share a seed — and modality, body part and description — share their frames.
    """

    attributes: Mapping[str, str]
    rows: int = 64
    columns: int = 64
    variants: int = 0
    slices: int = 1
    seed: str = ""

    @cached_property
    def sop_class_uid(self) -> str:
        return self.attributes.get("SOPClassUID") or SOP_CLASSES.get(
            str(self.attributes.get("Modality", "")), SECONDARY_CAPTURE
        )

    @cached_property
    def _phantom_args(self) -> tuple[str, str, str, str, float, str]:
        get = self.attributes.get
        modality = str(get("Modality", ""))
        seed = self.seed or str(get("SeriesInstanceUID", ""))
        # CBIS-DDSM's patient IDs name the finding and the side; nothing else reads them (so that series
        # sharing a seed share their frames).
        hint = str(get("PatientID", "")) if modality == "MG" else ""
        return (
            modality,
            str(get("BodyPartExamined", "")),
            str(get("SeriesDescription", "")),
            seed,
            self.columns / self.rows,
            hint,
        )

    def phantom(self, variant: str = "") -> Phantom:
        """The series' phantom (``variant``: another projection image of a projection series)."""
        modality, body_part, description, seed, aspect, hint = self._phantom_args
        seed = f"{seed}:{variant}" if variant else seed
        return phantom_for(modality, body_part, description, seed=seed, aspect=aspect, finding_hint=hint)

    @property
    def _frames(self) -> int:
        """How many distinct slice positions the series' files cycle through."""
        return max(1, self.variants or self.slices)

    @cached_property
    def slice_spacing(self) -> float:
        """Millimetres between slice positions (0 for projection images)."""
        phantom = self.phantom()
        if phantom.projection:
            return 0.0
        n = self._frames
        return round(min(10.0, max(0.5, 0.8 * phantom.extent_mm / max(n - 1, 1))), 1)

    def slice_position(self, index: int) -> tuple[float, float]:
        """(SliceLocation in mm, the phantom's normalised z) of instance ``index`` (0-based)."""
        k = index % self._frames
        location = round(k * self.slice_spacing, 1)
        middle = (self._frames - 1) * self.slice_spacing / 2
        return location, (location - middle) / (self.phantom().extent_mm / 2)

    @cached_property
    def _spacing(self) -> float:
        """The phantom's field of view over the image's shorter side, in mm per pixel."""
        return self.phantom().field_of_view_mm / min(self.rows, self.columns)

    @cached_property
    def _pixel_spacing_text(self) -> str:
        return f"{_ds(self._spacing)}\\{_ds(self._spacing)}"

    @property
    def pixel_spacing_mm(self) -> float:
        """The row spacing its files' PixelSpacing (0028,0030) says, in mm (what NBIA stores and searches)."""
        return float(str(self.attributes.get("PixelSpacing") or self._pixel_spacing_text).split("\\")[0])

    @property
    def slice_thickness_mm(self) -> float | None:
        """The SliceThickness (0018,0050) its files carry, in mm; ``None`` for projection images (they have none)."""
        given = self.attributes.get("SliceThickness")
        if given:
            return float(given)
        return None if self.phantom().projection else float(_ds(self.slice_spacing))

    @cached_property
    def _static(self) -> tuple[tuple[int, bytes], ...]:
        phantom = self.phantom()
        values = dict(self.attributes)
        unknown = set(self.attributes) - _SERIES_KEYWORDS
        if unknown:
            raise ValueError(f"not series-level DICOM keywords: {sorted(unknown)}")
        values.setdefault("ImageType", "ORIGINAL\\PRIMARY" if phantom.projection else "ORIGINAL\\PRIMARY\\AXIAL")
        values["SOPClassUID"] = self.sop_class_uid
        values.setdefault("PixelSpacing", self._pixel_spacing_text)
        if not phantom.projection:
            values.setdefault("ImageOrientationPatient", "1\\0\\0\\0\\1\\0")
            values.setdefault("SliceThickness", _ds(self.slice_spacing))
        center, width = phantom.window
        values.setdefault("WindowCenter", _ds(center))
        values.setdefault("WindowWidth", _ds(width))
        if values.get("Modality") == "CT":
            values.setdefault("RescaleIntercept", _ds(-CT_OFFSET))
            values.setdefault("RescaleSlope", "1")
            values.setdefault("RescaleType", "HU")
        out = [(tag, element(tag, vr, str(values[kw]))) for kw, tag, vr in _SERIES_TAGS if values.get(kw)]
        if values.get("Collection"):
            out.append((_CTP_CREATOR[0], element(_CTP_CREATOR[0], "LO", _CTP_CREATOR[1])))
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

    @cached_property
    def _corner(self) -> str:
        """ImagePositionPatient's x and y: the top left pixel, the field of view centred on the patient."""
        return f"{_ds(-self._spacing * self.columns / 2)}\\{_ds(-self._spacing * self.rows / 2)}"

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
        dynamic = [
            (0x00080018, element(0x00080018, "UI", sop_instance_uid)),
            (0x00200012, element(0x00200012, "IS", "1")),
            (0x00200013, element(0x00200013, "IS", str(instance_number))),
        ]
        if not self.phantom().projection:
            z = _ds(self.slice_position(instance_number - 1)[0])
            dynamic.append((0x00200032, element(0x00200032, "DS", f"{self._corner}\\{z}")))
            dynamic.append((0x00201041, element(0x00201041, "DS", z)))
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

    def pixels(self, index: int) -> bytes:
        """The pixel data of instance ``index`` (0-based): the phantom cut at its slice position, or for a
        projection series one projection image per position. Rendered once, then cached."""
        k = index % self._frames
        phantom = self.phantom(str(k) if self.phantom().projection and self._frames > 1 else "")
        z = 0.0 if phantom.projection else self.slice_position(k)[1]
        key = (*self._phantom_args, self.rows, self.columns, self._frames, k)
        noise = seed_of(f"{self._phantom_args[3]}:{k}")
        return FRAMES.get(key, lambda: phantom.render(self.rows, self.columns, z, noise))

    def file_size(self, sop_instance_uid: str, instance_number: int) -> int:
        return len(self.header(sop_instance_uid, instance_number)) + self.pixel_length

    def file_parts(self, sop_instance_uid: str, instance_number: int) -> list[bytes]:
        """One file as ``[header, pixel data]`` (the pixel data is shared, never copied)."""
        return [self.header(sop_instance_uid, instance_number), self.pixels(instance_number - 1)]


def dicom_date(value: object) -> str:
    """``YYYYMMDD`` from a date (or empty)."""
    return value.strftime("%Y%m%d") if value is not None and hasattr(value, "strftime") else ""
