"""Anatomical phantoms for the emulator's pixel data: a head, a chest, an abdomen, breasts, in 3D.

Each phantom is a list of shapes — ellipsoids and convex prisms, Shepp-Logan style, painted in order, each
one a tissue — and a *look* per modality and sequence that says what value each tissue has (CT in Hounsfield
units + 1024, MR magnitudes by T1/T2/FLAIR/fat-saturated contrast, a mammogram's attenuation, PET uptake).
A slice is the phantom cut at its ``z``: an ellipsoid's cross-section shrinks towards its poles, so scrolling
through a series shows the anatomy change. The small parameters (sizes, tilt, where a tumour or a nodule
sits, lung vessels, breast tissue) are drawn from a seed — the series UID — so series differ.

Pure Python and cheap: a shape is painted row by row as byte spans (one ``memcpy`` each); blur, noise and
tissue texture treat the whole frame as one big integer of 16-bit lanes (additions and shifts run in C).
A 512x512 slice takes some tens of milliseconds; frames are cached by the caller.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

#: The largest value a frame may hold (12 bits stored).
MAX_VALUE = 4095
#: CT values are stored as HU + this (RescaleIntercept is its negative).
CT_OFFSET = 1024


@dataclass(frozen=True)
class Shape:
    """One painted shape in normalised coordinates: ``x`` to the image's right (the patient's left on an
    axial slice), ``y`` down (posterior), both -1..1 across the field of view's shorter side, ``z`` -1..1 along
    the phantom's extent.

    An ellipse of semi-axes ``a``, ``b`` turned by ``angle`` degrees; an ellipsoid when ``c`` (its semi-axis
    along z, centred on ``cz``) is finite. With ``points``, a convex polygon instead, present for ``z`` within
    ``cz`` ± ``c``. With ``add``, its value is added to what lies below instead of replacing it (a rib over
    a lung on a radiograph).
    """

    tissue: str
    cx: float = 0.0
    cy: float = 0.0
    a: float = 0.0
    b: float = 0.0
    angle: float = 0.0
    cz: float = 0.0
    c: float = math.inf
    points: tuple[tuple[float, float], ...] = ()
    add: bool = False

    def at(self, z: float) -> float:
        """How much of the in-plane size is left at ``z`` (0: the slice misses it)."""
        if self.c == math.inf:
            return 1.0
        t = (z - self.cz) / self.c
        if abs(t) >= 1:
            return 0.0
        return 1.0 if self.points else math.sqrt(1 - t * t)


@dataclass(frozen=True)
class Look:
    """How a phantom is imaged: a value per tissue and the texture of the picture.

    :param values: tissue -> stored value (0..4095); tissues not listed take ``values["soft"]``.
    :param blur: passes of a 3x3 binomial blur over the painted frame (partial-volume edges).
    :param noise: bits of uniform noise, drawn twice and added (a triangular distribution, zero-mean).
    :param texture: bits of spatially correlated texture added inside the first shape (the body): tissue
        that is not flat.
    :param texture_blur: blur passes that give the texture its grain size.
    :param overlay_blur: blur passes over the shapes that add to what lies below (soft-edged glandular
        tissue on a mammogram, ribs on a radiograph).

    Blur passes are for a 160-pixel image: larger ones get proportionally more, so an image looks the same
    at any size.
    """

    values: Mapping[str, int]
    blur: int = 1
    noise: int = 0
    texture: int = 0
    texture_blur: int = 3
    overlay_blur: int = 0

    def value(self, tissue: str) -> int:
        return self.values.get(tissue, self.values.get("soft", 0))


@dataclass(frozen=True)
class Phantom:
    """Shapes and their look, plus what the DICOM header says about them."""

    kind: str
    shapes: tuple[Shape, ...]
    look: Look
    extent_mm: float
    """Length along z that the phantom spans (a series covers 80 % of it)."""
    field_of_view_mm: float
    window: tuple[float, float]
    """(WindowCenter, WindowWidth) in output units (HU for CT)."""
    projection: bool = False
    """A projection image (radiograph, mammogram): every image is the whole phantom; no slice position."""

    def render(self, rows: int, columns: int, z: float, seed: int) -> bytes:
        """The frame at ``z`` (-1..1) as little-endian 16-bit values."""
        return render(self.shapes, self.look, rows, columns, z, seed)


# --- rasterising ----------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _lanes(count: int, lane: int) -> int:
    """``count`` 16-bit lanes each holding ``lane``, as one integer."""
    return int.from_bytes(lane.to_bytes(2, "little") * count, "little")


def _span_source(value: int, columns: int) -> memoryview:
    return memoryview(value.to_bytes(2, "little") * columns)


def _paint(frame: bytearray, shape: Shape, source: memoryview, rows: int, columns: int, z: float) -> None:
    """Paint ``shape`` cut at ``z`` into ``frame`` (row spans copied from ``source``)."""
    scale = shape.at(z)
    if scale <= 0:
        return
    unit = min(rows, columns) / 2
    ox, oy = columns / 2, rows / 2
    line = 2 * columns
    if shape.points:
        points = [(ox + x * unit, oy + y * unit) for x, y in shape.points]
        top = max(0, math.ceil(min(p[1] for p in points) - 0.5))
        bottom = min(rows, math.floor(max(p[1] for p in points) - 0.5) + 1)
        edges = [(p, points[i - 1]) for i, p in enumerate(points) if p[1] != points[i - 1][1]]
        for y in range(top, bottom):
            yc = y + 0.5
            xs = [
                x0 + (yc - y0) * (x1 - x0) / (y1 - y0)
                for (x0, y0), (x1, y1) in edges
                if min(y0, y1) <= yc <= max(y0, y1)
            ]
            if len(xs) < 2:
                continue
            lo, hi = max(0, math.ceil(min(xs) - 0.5)), min(columns, math.floor(max(xs) - 0.5) + 1)
            if hi > lo:
                frame[y * line + 2 * lo : y * line + 2 * hi] = source[2 * lo : 2 * hi]
        return
    a, b = shape.a * unit * scale, shape.b * unit * scale
    if a <= 0.25 or b <= 0.25:
        return
    cx, cy = ox + shape.cx * unit, oy + shape.cy * unit
    theta = math.radians(shape.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    ia, ib = 1 / (a * a), 1 / (b * b)
    qa = cos * cos * ia + sin * sin * ib
    qb = 2 * sin * cos * (ia - ib)
    qc = sin * sin * ia + cos * cos * ib
    half_height = math.sqrt(a * a * sin * sin + b * b * cos * cos)
    top = max(0, math.ceil(cy - half_height - 0.5))
    bottom = min(rows, math.floor(cy + half_height - 0.5) + 1)
    two_qa = 2 * qa
    for y in range(top, bottom):
        dy = y + 0.5 - cy
        linear = qb * dy
        disc = linear * linear - 4 * qa * (qc * dy * dy - 1)
        if disc <= 0:
            continue
        root = math.sqrt(disc)
        lo = max(0, math.ceil(cx + (-linear - root) / two_qa - 0.5))
        hi = min(columns, math.floor(cx + (-linear + root) / two_qa - 0.5) + 1)
        if hi > lo:
            frame[y * line + 2 * lo : y * line + 2 * hi] = source[2 * lo : 2 * hi]


def _blur(value: int, rows: int, columns: int, passes: int) -> int:
    """A 3x3 binomial blur, ``passes`` times, on a frame held as one integer of 16-bit lanes whose values
    stay below 2**14 (each step sums four lanes' worth, then divides by four)."""
    count = rows * columns
    whole = (1 << (16 * count)) - 1
    quarter = _lanes(count, 0x3FFF)
    for _ in range(passes):
        for step in (16, 16 * columns):
            value = ((value << step) + (value << 1) + (value >> step)) & whole
            value = (value >> 2) & quarter
    return value


def render(shapes: tuple[Shape, ...], look: Look, rows: int, columns: int, z: float, seed: int) -> bytes:
    """Paint ``shapes`` at ``z`` with ``look``, then blur, texture and noise (deterministic in ``seed``)."""
    count = rows * columns
    scale = max(1, round(min(rows, columns) / 160))
    noise_mean = (1 << look.noise) - 1 if look.noise else 0  # the mean of two draws of `noise` bits
    texture_mean = (1 << look.texture) // 2 if look.texture else 0
    sources: dict[int, memoryview] = {}

    def source(tissue: str, inside: bool) -> memoryview:
        value = look.value(tissue) - noise_mean - (texture_mean if inside else 0)
        value = min(max(value, 0), MAX_VALUE)
        if value not in sources:
            sources[value] = _span_source(value, columns)
        return sources[value]

    frame = bytearray(source("air", False).tobytes() * rows)
    overlay = None
    for shape in shapes:
        if shape.add:
            overlay = overlay or bytearray(2 * count)
            _paint(overlay, shape, _span_source(look.value(shape.tissue), columns), rows, columns, z)
        else:
            _paint(frame, shape, source(shape.tissue, True), rows, columns, z)
    value = int.from_bytes(frame, "little")
    if overlay is not None:
        added = int.from_bytes(overlay, "little")
        value += _blur(added, rows, columns, look.overlay_blur * scale) if look.overlay_blur else added
    if look.blur:
        value = _blur(value, rows, columns, look.blur * scale)
    rng = random.Random(seed)
    if look.texture and shapes:
        # The body: the shapes of the first shape's tissue (the skin: of a head and its face, of the breasts
        # and the thorax behind them).
        body, solid = bytearray(2 * count), _span_source(0xFFFF, columns)
        for shape in shapes:
            if shape.tissue == shapes[0].tissue and not shape.add:
                _paint(body, shape, solid, rows, columns, z)
        grain = rng.getrandbits(16 * count) & _lanes(count, (1 << look.texture) - 1)
        value += _blur(grain, rows, columns, look.texture_blur * scale) & int.from_bytes(body, "little")
    if look.noise:
        mask = _lanes(count, (1 << look.noise) - 1)
        value += (rng.getrandbits(16 * count) & mask) + (rng.getrandbits(16 * count) & mask)
    return value.to_bytes(2 * count, "little")


# --- looks ----------------------------------------------------------------------------------------------


def _ct(hu: Mapping[str, int]) -> dict[str, int]:
    return {tissue: value + CT_OFFSET for tissue, value in hu.items()}


_CT_HU = {
    "air": -1000, "lung": -860, "fat": -95, "soft": 40, "skin": 40, "muscle": 50, "bone": 1100,
    "cancellous": 300, "csf": 8, "gm": 40, "wm": 27, "eye": 12, "edema": 18, "enhancing": 42, "necrosis": 15,
    "blood": 45, "heart": 45, "vessel": 45, "liver": 60, "spleen": 50, "kidney": 35, "tumor": 38,
    "bowel_gas": -950, "bowel_fluid": 15, "gland": 30, "cartilage": 110, "marrow": 250,
}  # fmt: skip
_CT_CONTRAST_HU = {**_CT_HU, "vessel": 190, "blood": 170, "heart": 150, "liver": 105, "spleen": 115,
                   "kidney": 170, "tumor": 85, "enhancing": 75}  # fmt: skip

_T1 = {
    "air": 0, "lung": 25, "fat": 950, "soft": 420, "skin": 560, "muscle": 380, "bone": 40, "cancellous": 700,
    "marrow": 760, "csf": 160, "gm": 440, "wm": 640, "eye": 120, "edema": 360, "enhancing": 430,
    "necrosis": 190, "blood": 90, "heart": 330, "vessel": 90, "liver": 480, "spleen": 400, "kidney": 420,
    "tumor": 400, "bowel_gas": 0, "bowel_fluid": 200, "gland": 360, "cartilage": 300,
}  # fmt: skip
_T1_POST = {**_T1, "enhancing": 1150, "tumor": 1000, "vessel": 900, "blood": 700, "kidney": 900}
_T2 = {
    "air": 0, "lung": 25, "fat": 640, "soft": 350, "skin": 420, "muscle": 230, "bone": 40, "cancellous": 420,
    "marrow": 480, "csf": 1350, "gm": 640, "wm": 410, "eye": 1350, "edema": 1000, "enhancing": 700,
    "necrosis": 1200, "blood": 60, "heart": 220, "vessel": 60, "liver": 300, "spleen": 620, "kidney": 700,
    "tumor": 820, "bowel_gas": 0, "bowel_fluid": 1100, "gland": 520, "cartilage": 500,
}  # fmt: skip
_FLAIR = {**_T2, "csf": 110, "eye": 140, "necrosis": 320, "edema": 1250, "gm": 600, "wm": 400, "fat": 520}
#: Fat-saturated T1 after contrast (breast DCE: VIBRANT, BRAVA): fat dark, enhancing tissue bright.
_T1_FATSAT_POST = {**_T1, "fat": 110, "skin": 300, "marrow": 140, "gland": 430, "tumor": 1300,
                   "enhancing": 1250, "heart": 950, "blood": 1050, "vessel": 1050, "muscle": 320}  # fmt: skip

_MAMMOGRAPHY = {
    "air": 40, "skin": 1700, "fat": 1350, "fat_2": 1550, "fat_3": 1700, "fat_4": 1800, "soft": 1800,
    "gland": 2150, "strand": 330, "mass": 900, "calcification": 3300, "pectoral": 2050, "nipple": 1700,
}  # fmt: skip
_RADIOGRAPH = {
    "air": 150, "soft": 2000, "lung": 900, "lung_2": 720, "heart": 2250, "mediastinum": 2150, "trachea": 1500,
    "diaphragm": 2080, "rib": 450, "marking": 200, "spine": 700,
}  # fmt: skip
_PET = {
    "air": 0, "lung": 60, "fat": 120, "soft": 260, "skin": 200, "muscle": 300, "bone": 250, "cancellous": 450,
    "marrow": 450, "liver": 800, "spleen": 650, "kidney": 1600, "heart": 1300, "blood": 450, "vessel": 450,
    "tumor": 3300, "bowel_gas": 150, "bowel_fluid": 500, "gm": 2200, "wm": 1200, "csf": 100, "brain": 2000,
}  # fmt: skip


def _mr_values(description: str, body: str) -> dict[str, int]:
    text = description.upper()
    if "FLAIR" in text:
        return _FLAIR
    if body == "breast" and re.search(r"VIBRANT|BRAVA|MULTIPHASE|DYN|SUB", text):
        return _T1_FATSAT_POST
    if re.search(r"POST|\bGD\b|\+C|CONTRAST|MPRAGE", text):
        return _T1_POST
    if "T2" in text or "STIR" in text:
        return _T2
    return _T1


def _contrast_ct(description: str) -> bool:
    text = f" {description.upper()} "
    if re.search(r"\bWO\b|W/O|NON.?CON|WITHOUT|PRE", text):
        return False
    return bool(re.search(r"\bW\b|\bWITH\b|\bC\+|CONTRAST|ARTERIAL|VENOUS|\bCE\b", text))


# --- anatomy --------------------------------------------------------------------------------------------


def _jitter(rng: random.Random, spread: float) -> float:
    return 1 + rng.uniform(-spread, spread)


def _head(rng: random.Random, *, tumour: bool) -> list[Shape]:
    s = _jitter(rng, 0.05)
    w = _jitter(rng, 0.04)
    tilt = rng.uniform(-6, 6)
    shapes = [
        Shape("skin", 0, -0.02, 0.74 * s * w, 0.92 * s, tilt, 0.05, 1.0),
        Shape("skin", 0, -0.5, 0.5 * s * w, 0.46 * s, 0, -0.75, 0.3),  # the face, below the brain
        Shape("fat", 0, -0.02, 0.715 * s * w, 0.895 * s, tilt, 0.05, 0.98),
        Shape("bone", 0, -0.02, 0.685 * s * w, 0.865 * s, tilt, 0.05, 0.96),
    ]
    # Orbits (bony rims, fat, the globes) and the nasal cavity at the skull base.
    for side in (-1, 1):
        shapes.append(Shape("bone", side * 0.3 * s, -0.66 * s, 0.18 * s, 0.22 * s, side * 10, -0.66, 0.22))
        shapes.append(Shape("fat", side * 0.3 * s, -0.66 * s, 0.16 * s, 0.2 * s, side * 10, -0.66, 0.2))
        shapes.append(Shape("eye", side * 0.31 * s, -0.76 * s, 0.12 * s, 0.12 * s, 0, -0.66, 0.13))
    shapes.append(Shape("air", 0, -0.72 * s, 0.07 * s, 0.17 * s, 0, -0.75, 0.2))
    shapes += [
        Shape("csf", 0, -0.02, 0.635 * s * w, 0.815 * s, tilt, 0.06, 0.9),
        Shape("gm", 0, -0.02, 0.615 * s * w, 0.795 * s, tilt, 0.06, 0.88),
    ]
    # The posterior fossa low down: cerebellar hemispheres, the brainstem, the fourth ventricle.
    for side in (-1, 1):
        shapes.append(Shape("gm", side * 0.2 * s, 0.3 * s, 0.22 * s, 0.2 * s, side * 20, -0.6, 0.26))
        shapes.append(Shape("wm", side * 0.18 * s, 0.29 * s, 0.09 * s, 0.05 * s, side * 30, -0.6, 0.18))
    shapes.append(Shape("wm", 0, 0.05 * s, 0.12 * s, 0.11 * s, 0, -0.6, 0.35))
    shapes.append(Shape("csf", 0, 0.17 * s, 0.04 * s, 0.03 * s, 0, -0.6, 0.2))
    # Two hemispheres of white matter, with gyri: fingers of white matter reaching towards the surface
    # between sulci of CSF that cut in from it, irregularly.
    gx, gy = 0.615 * s * w, 0.795 * s
    shapes.append(Shape("wm", 0, -0.02, 0.53 * s * w, 0.7 * s, tilt, 0.1, 0.74))
    shapes.append(Shape("gm", 0, -0.02, 0.045, 0.76 * s, tilt, 0.06, 0.85))  # (the medial cortex)
    count = 60
    for k in range(2 * count):
        phi = math.pi * (k + rng.uniform(-0.3, 0.3)) / count
        sulcus = k % 2 == 0
        if abs(math.cos(phi)) < 0.06:
            continue  # (the interhemispheric fissure)
        x, y = gx * math.cos(phi), gy * math.sin(phi)
        radius = math.hypot(x, y)
        length = rng.uniform(0.05, 0.13) if sulcus else rng.uniform(0.05, 0.08)
        inward = 0.5 * length if sulcus else 0.075
        x, y = x * (1 - inward / radius), y * (1 - inward / radius) - 0.02
        angle = math.degrees(math.atan2(y, x)) + tilt + rng.uniform(-18, 18)
        zc, zr = rng.uniform(-0.1, 0.35), rng.uniform(0.4, 0.65)
        if sulcus:
            shapes.append(Shape("csf", x, y, length / 2, rng.uniform(0.006, 0.011), angle, zc, zr))
        else:
            shapes.append(Shape("wm", x, y, length / 2, rng.uniform(0.015, 0.025), angle, zc, zr))
    shapes.append(Shape("csf", 0, -0.02, 0.01, 0.77 * s, tilt, 0.06, 0.85))  # the interhemispheric fissure
    # Deep grey matter, the lateral ventricles (frontal horns and bodies, trigones) and the third ventricle.
    for side in (-1, 1):
        shapes.append(Shape("gm", side * 0.16 * s, 0.06 * s, 0.08 * s, 0.13 * s, side * 15, -0.02, 0.22))
        shapes.append(Shape("csf", side * 0.085 * s, -0.1 * s, 0.05 * s, 0.26 * s, side * 14 + tilt, 0.18, 0.3))
        shapes.append(Shape("csf", side * 0.16 * s, 0.3 * s, 0.045 * s, 0.1 * s, side * -25, 0.12, 0.18))
    shapes.append(Shape("csf", 0, 0.05 * s, 0.016 * s, 0.09 * s, tilt, -0.08, 0.16))
    if tumour:
        side = rng.choice((-1, 1))
        x, y, zc = side * rng.uniform(0.2, 0.33) * s, rng.uniform(-0.4, 0.35) * s, rng.uniform(-0.1, 0.3)
        r = rng.uniform(0.09, 0.14) * s
        for _ in range(3):
            shapes.append(
                Shape("edema", x + rng.uniform(-0.07, 0.07), y + rng.uniform(-0.07, 0.07), r * rng.uniform(1.4, 1.8),
                      r * rng.uniform(1.4, 1.8), rng.uniform(0, 180), zc, r * 2.2)
            )  # fmt: skip
        shapes.append(Shape("enhancing", x, y, r, r * rng.uniform(0.8, 1.1), rng.uniform(0, 180), zc, r * 1.3))
        shapes.append(Shape("necrosis", x, y, r * 0.6, r * 0.55, rng.uniform(0, 180), zc, r * 0.8))
    return shapes


def _spine(shapes: list[Shape], y: float, size: float) -> None:
    shapes += [
        Shape("muscle", -0.15 * size, y + 0.2 * size, 0.13 * size, 0.1 * size, -10),
        Shape("muscle", 0.15 * size, y + 0.2 * size, 0.13 * size, 0.1 * size, 10),
        Shape("bone", 0, y - 0.02, 0.115 * size, 0.105 * size),
        Shape("cancellous", 0, y - 0.02, 0.095 * size, 0.085 * size),
        Shape("bone", 0, y + 0.16 * size, 0.035 * size, 0.1 * size),
        Shape("bone", -0.1 * size, y + 0.12 * size, 0.08 * size, 0.025 * size, 30),
        Shape("bone", 0.1 * size, y + 0.12 * size, 0.08 * size, 0.025 * size, -30),
        Shape("csf", 0, y + 0.115 * size, 0.04 * size, 0.035 * size),
    ]


def _chest(rng: random.Random, *, nodule: bool, breath: float = 0.0) -> list[Shape]:
    s = _jitter(rng, 0.05)
    w = _jitter(rng, 0.05)
    lung = 1 + 0.05 * breath  # inhaled lungs are larger and reach lower
    shapes = [
        Shape("skin", 0, 0.02, 0.93 * s * w, 0.64 * s),
        Shape("fat", 0, 0.02, 0.91 * s * w, 0.62 * s),
    ]
    for side in (-1, 1):  # the pectoral muscles and the scapulae with their muscles
        shapes.append(Shape("muscle", side * 0.42 * s * w, -0.44 * s, 0.34 * s, 0.1 * s, side * 12, 0.4, 0.8))
        shapes.append(Shape("muscle", side * 0.6 * s * w, 0.36 * s, 0.26 * s, 0.11 * s, side * -38, 0.35, 0.75))
        shapes.append(Shape("bone", side * 0.6 * s * w, 0.36 * s, 0.22 * s, 0.022 * s, side * -38, 0.35, 0.7))
    shapes.append(Shape("muscle", 0, 0.03, 0.84 * s * w, 0.55 * s))
    for k in range(20):  # ribs and costal cartilages, cut obliquely around the chest wall
        phi = 2 * math.pi * (k + rng.uniform(0.2, 0.8)) / 20
        if math.sin(phi) < -0.88 or rng.random() < 0.2:
            continue  # (the sternum is there; the cut misses some ribs)
        x, y = 0.79 * s * w * math.cos(phi), 0.03 + 0.51 * s * math.sin(phi)
        tissue = "cartilage" if math.sin(phi) < -0.55 else "bone"
        shapes.append(Shape(tissue, x, y, rng.uniform(0.04, 0.07) * s, 0.018 * s, math.degrees(phi) + 90))
    for side, size in ((-1, 1.03), (1, 0.97)):  # the right lung (image left) a little larger
        shapes.append(
            Shape("lung", side * 0.4 * s * w, 0.02, 0.35 * s * w * size * lung, 0.46 * s * lung, side * -5,
                  0.0 - 0.05 * breath, 0.95 * lung)
        )  # fmt: skip
    # Vessels in the lungs: tubes along z that show as dots, larger and denser towards the hila.
    for side in (-1, 1):
        for _ in range(80):
            r = rng.uniform(0.0, 1.0) ** 0.8
            phi = rng.uniform(0, 2 * math.pi)
            x = side * (0.3 + 0.34 * r * math.cos(phi)) * s * w
            y = 0.02 + 0.42 * r * math.sin(phi) * s
            size = (0.034 - 0.022 * r) * s
            shapes.append(Shape("vessel", x, y, size, size * rng.uniform(0.7, 1.5), rng.uniform(0, 180),
                                rng.uniform(-0.8, 0.8), rng.uniform(0.08, 0.3)))  # fmt: skip
    # The diaphragm's domes (liver on the right, spleen and stomach on the left) rising into the lung bases.
    shapes.append(Shape("liver", -0.34 * s, 0.08, 0.42 * s, 0.44 * s, 0, -1.0 - 0.1 * breath, 0.45))
    shapes.append(Shape("spleen", 0.4 * s, 0.18, 0.24 * s, 0.3 * s, 0, -1.05 - 0.1 * breath, 0.35))
    # Mediastinum: heart, great vessels, trachea, oesophagus; sternum and spine.
    shapes += [
        Shape("fat", 0.02, -0.08, 0.14 * s, 0.4 * s, 0, 0.35, 0.7),
        Shape("heart", 0.12 * s, -0.1 * s, 0.3 * s, 0.24 * s, -28, -0.4, 0.5),
        Shape("fat", 0.12 * s, -0.1 * s, 0.3 * s, 0.012 * s, -28, -0.4, 0.45),  # (the interventricular groove)
        Shape("blood", 0.18 * s, -0.06 * s, 0.13 * s, 0.1 * s, -28, -0.42, 0.35),
        Shape("vessel", 0.0, -0.18 * s, 0.07 * s, 0.07 * s, 0, 0.3, 0.45),
        Shape("vessel", 0.14 * s, -0.22 * s, 0.075 * s, 0.065 * s, 0, 0.12, 0.18),
        Shape("vessel", -0.1 * s, -0.17 * s, 0.045 * s, 0.045 * s, 0, 0.45, 0.4),
        Shape("vessel", 0.11 * s, 0.27 * s, 0.055 * s, 0.055 * s),
        Shape("air", 0.0, -0.02, 0.055 * s, 0.05 * s, 0, 0.65, 0.45),
        Shape("muscle", 0.05 * s, 0.2 * s, 0.03 * s, 0.03 * s),
        Shape("bone", 0, -0.54 * s, 0.08 * s, 0.03 * s),
    ]
    _spine(shapes, 0.38 * s, s)
    if nodule:
        side = rng.choice((-1, 1))
        r = rng.uniform(0.03, 0.06) * s
        shapes.append(Shape("tumor", side * rng.uniform(0.3, 0.55) * s, rng.uniform(-0.25, 0.25) * s, r, r * 0.9,
                            rng.uniform(0, 180), rng.uniform(-0.2, 0.2), r * 2))  # fmt: skip
    return shapes


def _abdomen(rng: random.Random, *, mass: bool) -> list[Shape]:
    s = _jitter(rng, 0.05)
    w = _jitter(rng, 0.05)
    shapes = [
        Shape("skin", 0, 0.04, 0.9 * s * w, 0.64 * s),
        Shape("fat", 0, 0.04, 0.88 * s * w, 0.62 * s),
        Shape("muscle", 0, 0.04, 0.76 * s * w, 0.52 * s),
        Shape("fat", 0, 0.04, 0.73 * s * w, 0.49 * s),
        Shape("liver", -0.33 * s, -0.06 * s, 0.38 * s, 0.36 * s, 15, 0.35, 0.75),
        Shape("vessel", -0.3 * s, 0.02 * s, 0.035 * s, 0.03 * s, 0, 0.3, 0.4),  # (the portal vein)
        Shape("spleen", 0.5 * s, 0.12 * s, 0.13 * s, 0.24 * s, 28, 0.4, 0.45),
        Shape("bowel_fluid", 0.22 * s, -0.18 * s, 0.22 * s, 0.15 * s, -15, 0.45, 0.4),
        Shape("bowel_gas", 0.22 * s, -0.29 * s, 0.14 * s, 0.04 * s, -15, 0.45, 0.3),
    ]
    for _ in range(14):  # bowel loops in the lower abdomen
        x, y = rng.uniform(-0.45, 0.45) * s, rng.uniform(-0.35, 0.05) * s
        r = rng.uniform(0.05, 0.09) * s
        zc = rng.uniform(-0.9, 0.0)
        shapes.append(Shape("muscle", x, y, r, r * rng.uniform(0.7, 1.0), rng.uniform(0, 180), zc, 0.4))
        shapes.append(Shape(rng.choice(("bowel_gas", "bowel_fluid", "bowel_fluid")), x, y, r * 0.7, r * 0.6,
                            rng.uniform(0, 180), zc, 0.35))  # fmt: skip
    for side in (-1, 1):
        shapes.append(Shape("muscle", side * 0.17 * s, 0.3 * s, 0.07 * s, 0.09 * s, 0, -0.4, 0.8))  # psoas
        shapes.append(Shape("fat", side * 0.34 * s, 0.24 * s, 0.16 * s, 0.2 * s, side * -25, 0.0, 0.5))
        shapes.append(Shape("kidney", side * 0.34 * s, 0.24 * s, 0.11 * s, 0.16 * s, side * -25, 0.0, 0.45))
        shapes.append(Shape("fat", side * 0.29 * s, 0.2 * s, 0.035 * s, 0.06 * s, side * -25, 0.0, 0.25))
    shapes.append(Shape("vessel", 0.06 * s, 0.17 * s, 0.045 * s, 0.045 * s))  # the aorta
    shapes.append(Shape("vessel", -0.09 * s, 0.17 * s, 0.05 * s, 0.038 * s))  # the inferior vena cava
    _spine(shapes, 0.33 * s, s)
    if mass:
        side = rng.choice((-1, 1))
        r = rng.uniform(0.05, 0.08) * s
        shapes.append(Shape("tumor", side * 0.38 * s, 0.22 * s, r, r, 0, rng.uniform(-0.2, 0.2), r * 3))
    return shapes


def _breast_tissue(
    rng: random.Random,
    base: tuple[float, float],
    nipple: tuple[float, float],
    spread: float,
    count: int,
    tissue: str = "gland",
    **kw,
) -> list[Shape]:
    """Fibroglandular tissue between the chest wall (``base``) and the ``nipple``: blobs elongated along the
    ducts, which converge on the nipple, denser near the chest wall."""
    (bx, by), (nx, ny) = base, nipple
    length = math.hypot(nx - bx, ny - by)
    ux, uy = (nx - bx) / length, (ny - by) / length
    shapes = []
    for _ in range(count):
        depth = rng.uniform(0.08, 0.85) ** 1.2
        across = rng.gauss(0, 0.33) * spread * (1 - 0.7 * depth)
        x, y = bx + ux * depth * length - uy * across, by + uy * depth * length + ux * across
        angle = math.degrees(math.atan2(ny - y, nx - x)) + rng.uniform(-15, 15)
        r = rng.uniform(0.025, 0.07) * (1 - 0.5 * depth)
        shapes.append(Shape(tissue, x, y, r * rng.uniform(1.5, 3.0), r, angle, rng.uniform(-0.7, 0.7),
                            rng.uniform(0.15, 0.4), **kw))  # fmt: skip
    return shapes


def _parenchyma(rng: random.Random, base: tuple[float, float], nipple: tuple[float, float], half: float):
    """A mammogram's fibroglandular tissue: a dense cone from the chest wall towards the nipple, fat lobules
    in it, and denser strands along the ducts added on top."""
    (bx, by), (nx, ny) = base, nipple
    length = math.hypot(nx - bx, ny - by)
    ux, uy = (nx - bx) / length, (ny - by) / length
    angle = math.degrees(math.atan2(uy, ux))
    density = rng.uniform(0.45, 1.0)

    def at(depth: float, across: float) -> tuple[float, float]:
        return bx + ux * depth * length - uy * across, by + uy * depth * length + ux * across

    shapes = []
    for _ in range(9):  # the dense region, lobulated
        x, y = at(rng.uniform(0.15, 0.65), rng.gauss(0, 0.2) * half)
        a, b = length * rng.uniform(0.15, 0.3), half * rng.uniform(0.15, 0.35) * density
        shapes.append(Shape("gland", x, y, a, b, angle + rng.uniform(-35, 35), rng.uniform(-0.3, 0.3), 1.0))
    for _ in range(int(110 * (1.4 - density))):  # fat lobules
        x, y = at(rng.uniform(0.05, 0.9), rng.gauss(0, 0.3) * half)
        r = rng.uniform(0.015, 0.05)
        z, c = rng.uniform(-0.7, 0.7), rng.uniform(0.2, 0.5)
        shapes.append(Shape("fat_4", x, y, r * rng.uniform(1.0, 1.8), r, rng.uniform(0, 180), z, c))
    return shapes + _breast_tissue(rng, base, nipple, half * 1.3, 60, "strand", add=True)


def _breast_mr(rng: random.Random, *, sagittal: bool, tumour: bool) -> list[Shape]:
    s = _jitter(rng, 0.06)
    shapes: list[Shape] = []
    if sagittal:  # one breast, pointing left (anterior), the chest wall on the right
        shapes += [
            Shape("skin", 0.55, 0.05, 1.05 * s, 0.66 * s, 0, 0, 0.95),
            Shape("fat", 0.55, 0.05, 1.03 * s, 0.64 * s, 0, 0, 0.93),
        ]
        shapes += _breast_tissue(rng, (0.5, 0.0), (0.55 - 1.0 * s, 0.05), 0.55, 32)
        shapes += [
            Shape("muscle", points=((0.5, -1.0), (0.95, -1.0), (0.95, 1.0), (0.5, 1.0))),
            Shape("bone", 0.86, -0.62, 0.05, 0.035), Shape("bone", 0.86, -0.22, 0.05, 0.035),
            Shape("bone", 0.86, 0.18, 0.05, 0.035), Shape("bone", 0.86, 0.58, 0.05, 0.035),
            Shape("lung", points=((0.95, -1.0), (1.0, -1.0), (1.0, 1.0), (0.95, 1.0))),
        ]  # fmt: skip
        if tumour:
            r = rng.uniform(0.05, 0.09)
            shapes.append(Shape("tumor", rng.uniform(-0.1, 0.3), rng.uniform(-0.25, 0.25), r, r * 0.85,
                                rng.uniform(0, 180), rng.uniform(-0.3, 0.3), r * 2.5))  # fmt: skip
        return shapes
    # Axial, prone: both breasts hang towards the top of the image (anterior), the thorax below.
    for side in (-1, 1):
        shapes.append(Shape("skin", side * 0.45 * s, 0.1, 0.37 * s, 0.66 * s, side * -8, 0, 1.0))
    for side in (-1, 1):
        bx = side * 0.45 * s
        shapes.append(Shape("fat", bx, 0.1, 0.355 * s, 0.645 * s, side * -8, 0, 0.98))
        nipple = (bx + side * 0.07, 0.1 - 0.63 * s)
        shapes += _breast_tissue(rng, (bx, 0.1), nipple, 0.5, 24)
    shapes += [
        Shape("skin", 0, 0.66, 0.98 * s, 0.5 * s),
        Shape("fat", 0, 0.66, 0.96 * s, 0.48 * s),
        Shape("muscle", 0, 0.66, 0.9 * s, 0.42 * s),
        Shape("lung", -0.42 * s, 0.76, 0.32 * s, 0.3 * s, 10),
        Shape("lung", 0.42 * s, 0.76, 0.32 * s, 0.3 * s, -10),
        Shape("heart", 0.06, 0.7, 0.26 * s, 0.2 * s, -20, 0, 1.0),
        Shape("bone", 0, 0.27, 0.07 * s, 0.03 * s),
    ]
    for k in range(8):  # rib cross-sections on the chest wall
        phi = math.pi * (1.1 + 0.8 * k / 7)
        shapes.append(Shape("bone", 0.86 * s * math.cos(phi), 0.66 + 0.4 * s * math.sin(phi), 0.045, 0.022,
                            math.degrees(phi) + 90))  # fmt: skip
    if tumour:
        side = rng.choice((-1, 1))
        r = rng.uniform(0.04, 0.07)
        shapes.append(Shape("tumor", side * 0.45 * s + rng.uniform(-0.1, 0.1), rng.uniform(-0.3, -0.05), r,
                            r * 0.85, rng.uniform(0, 180), rng.uniform(-0.3, 0.3), r * 2.5))  # fmt: skip
    return shapes


def _within(shape: Shape, cx: float, cy: float, a: float, b: float, margin: float = 0.85) -> bool:
    """Whether ``shape``'s centre lies well inside the ellipse at (cx, cy) of semi-axes a, b."""
    return ((shape.cx - cx) / a) ** 2 + ((shape.cy - cy) / b) ** 2 < margin**2


def _mammogram(rng: random.Random, *, left: bool, mlo: bool, aspect: float, finding: str) -> list[Shape]:
    """A compressed breast against the chest-wall edge (the left edge for a left breast), nipple pointing
    in; its thickness, hence its brightness, falls off towards the skin line."""
    edge = -aspect if left else aspect
    toward = 1 if left else -1
    depth = rng.uniform(1.05, 1.3) * aspect
    half = rng.uniform(0.8, 0.92) * (1.25 if mlo else 1.0)  # an MLO view reaches up into the axilla
    cy = rng.uniform(-0.05, 0.05) + (0.22 if mlo else 0)
    shapes = [Shape("skin", edge, cy, depth, half, 0, 0, 1.0)]
    for k, tissue in enumerate(("fat", "fat_2", "fat_3", "fat_4")):
        shapes.append(Shape(tissue, edge, cy, depth * (0.99 - 0.1 * k), half * (0.99 - 0.06 * k), 0, 0, 1.0))
    nipple = (edge + toward * depth, cy)
    shapes.append(Shape("nipple", nipple[0], cy, 0.035, 0.05, 0, 0, 1.0))
    if mlo:  # the pectoral muscle, a triangle along the upper chest wall
        top = cy - 0.97 * half
        reach = rng.uniform(0.3, 0.45) * aspect
        corner = (edge + toward * reach, top + 0.04)
        shapes.append(Shape("pectoral", points=((edge, top), corner, (edge, rng.uniform(0.0, 0.25)))))
    inside = [p for p in _parenchyma(rng, (edge, cy - 0.04), nipple, half) if _within(p, edge, cy, depth, half)]
    shapes += inside
    if finding in ("mass", "calcification"):
        x = edge + toward * rng.uniform(0.3, 0.6) * depth
        y = cy + rng.uniform(-0.3, 0.3) * half
        if finding == "mass":
            r = rng.uniform(0.06, 0.1)
            shapes.append(Shape("mass", x, y, r, r * rng.uniform(0.75, 1.0), rng.uniform(0, 180), 0, 0.5, add=True))
        else:
            for _ in range(12):
                shapes.append(Shape("calcification", x + rng.gauss(0, 0.03), y + rng.gauss(0, 0.03), 0.008, 0.006,
                                    rng.uniform(0, 180), rng.uniform(-0.3, 0.3), 0.25))  # fmt: skip
    return shapes


def _chest_radiograph(rng: random.Random) -> list[Shape]:
    """A PA chest radiograph (bright where the body attenuates): bones add to what they overlie."""
    s = _jitter(rng, 0.04)
    shapes = [
        Shape("soft", 0, 0.15, 0.86 * s, 0.95 * s),
        Shape("soft", -0.55 * s, -0.62 * s, 0.42 * s, 0.26 * s, -18),
        Shape("soft", 0.55 * s, -0.62 * s, 0.42 * s, 0.26 * s, 18),
        Shape("soft", 0, -0.9, 0.22, 0.3),
        Shape("lung", -0.36 * s, -0.06 * s, 0.28 * s, 0.64 * s, 5),
        Shape("lung", 0.36 * s, -0.04 * s, 0.27 * s, 0.62 * s, -5),
        Shape("lung_2", -0.34 * s, -0.08 * s, 0.21 * s, 0.52 * s, 5),
        Shape("lung_2", 0.34 * s, -0.06 * s, 0.2 * s, 0.5 * s, -5),
        Shape("diaphragm", -0.36 * s, 0.72 * s, 0.36 * s, 0.2 * s),
        Shape("diaphragm", 0.38 * s, 0.76 * s, 0.34 * s, 0.2 * s),
        Shape("mediastinum", 0, -0.25 * s, 0.11 * s, 0.55 * s),
        Shape("heart", 0.1 * s, 0.34 * s, 0.3 * s, 0.25 * s, 18),
        Shape("trachea", 0, -0.56 * s, 0.03 * s, 0.3 * s),
    ]
    for side in (-1, 1):
        for _ in range(28):  # vascular markings fanning out from the hila
            phi = (math.pi if side < 0 else 0.0) + rng.uniform(-1.3, 1.3)
            r = rng.uniform(0.05, 0.4)
            x, y = side * 0.12 * s + r * math.cos(phi), -0.05 + r * math.sin(phi)
            shapes.append(Shape("marking", x, y, r * 0.35, 0.006, math.degrees(phi), add=True))
        for k in range(9):  # posterior ribs, sloping down towards the sides
            y = (-0.64 + 0.13 * k) * s
            shapes.append(Shape("rib", side * 0.35 * s, y, 0.32 * s, 0.024, side * -16, add=True))
        shapes.append(Shape("rib", side * 0.3 * s, -0.74 * s, 0.3 * s, 0.03, side * 12, add=True))  # clavicles
    shapes.append(Shape("spine", 0, -0.1, 0.05 * s, 1.1, add=True))
    return shapes


# --- choosing a phantom ---------------------------------------------------------------------------------


def seed_of(text: str) -> int:
    """A stable 64-bit seed (the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def region(modality: str, body_part: str, description: str = "") -> str:
    """``head``, ``chest``, ``abdomen`` or ``breast`` for a series' body part (free text on TCIA)."""
    text = f"{body_part} {description}".upper()
    if modality == "MG" or "BREAST" in text or "MAMM" in text:
        return "breast"
    if re.search(r"BRAIN|HEAD|SKULL|NEURO", text):
        return "head"
    if re.search(r"CHEST|LUNG|THORAX|CARDIAC", text):
        return "chest"
    if re.search(r"ABD|PELVIS|KIDNEY|LIVER|RENAL|PANCREAS", text):
        return "abdomen"
    return {"MR": "head", "CR": "chest", "DX": "chest", "PT": "abdomen"}.get(modality, "chest")


@lru_cache(maxsize=1024)
def phantom_for(
    modality: str,
    body_part: str = "",
    description: str = "",
    *,
    seed: str = "",
    aspect: float = 1.0,
    finding_hint: str = "",
) -> Phantom:
    """The phantom a series shows, from what its header says it is.

    :param modality: CT, MR, MG, CR, DX, PT …
    :param body_part: BodyPartExamined (free text).
    :param description: SeriesDescription: picks the MR contrast (T1, T2, FLAIR, post-contrast, fat-saturated
        DCE), CT contrast (``W`` / ``WO``), the mammographic view (CC, MLO) and 4D-CT breathing phases.
    :param seed: what the anatomy's details are drawn from (the series UID: series differ).
    :param aspect: columns / rows (mammograms are taller than wide).
    :param finding_hint: text that may name a finding (``Mass``, ``Calc``: CBIS-DDSM's patient IDs).

    Everything a header carries (window, field of view, extent) depends on the modality, the body part and
    the description only, never on the seed: files of series that share those have the same size.
    """
    rng = random.Random(seed_of(seed))
    where = region(modality, body_part, description)
    text = f"{description} {finding_hint}".upper()
    lucky = rng.random() < 0.65  # whether this series shows a tumour, a nodule, a mass

    if modality in ("CR", "DX"):
        look = Look(_RADIOGRAPH, blur=2, noise=4, texture=7, texture_blur=3, overlay_blur=1)
        return Phantom("radiograph", tuple(_chest_radiograph(rng)), look, 1.0, 430.0, (1800.0, 3000.0), True)
    if modality == "MG":
        left = "LEFT" in text or (" L " in f" {text} ") or ("RIGHT" not in text and rng.random() < 0.5)
        mlo = "MLO" in text
        finding = "calcification" if "CALC" in text else "mass" if "MASS" in text or lucky else ""
        shapes = _mammogram(rng, left=left, mlo=mlo, aspect=aspect, finding=finding)
        look = Look(_MAMMOGRAPHY, blur=2, noise=4, texture=10, texture_blur=3, overlay_blur=3)
        slices = bool(re.search(r"DBT.*SLICE|TOMO", description.upper()))
        return Phantom("mammogram", tuple(shapes), look, 50.0, 240.0, (2300.0, 2800.0), not slices)

    if where == "head":
        shapes = _head(rng, tumour=lucky and modality != "CT")
        extent, fov = 190.0, 240.0
        window = (40.0, 90.0)
    elif where == "breast":
        shapes = _breast_mr(rng, sagittal="SAG" in text, tumour=lucky)
        extent, fov = (150.0, 220.0) if "SAG" in text else (170.0, 340.0)
        window = (600.0, 1300.0)
    elif where == "abdomen":
        shapes = _abdomen(rng, mass=lucky)
        extent, fov = 300.0, 400.0
        window = (40.0, 400.0)
    else:
        phase = re.search(r"(\d+(?:\.\d+)?)\s*%", text)
        breath = math.cos(2 * math.pi * float(phase.group(1)) / 100) if phase else 0.0
        shapes = _chest(rng, nodule=lucky, breath=breath)
        extent, fov = 300.0, 380.0
        window = (40.0, 400.0)

    if modality == "CT":
        look = Look(
            _ct(_CT_CONTRAST_HU if _contrast_ct(description) else _CT_HU), blur=1, noise=3 if where == "head" else 5
        )
        return Phantom(f"ct-{where}", tuple(shapes), look, extent, fov, window)
    if modality == "PT":
        look = Look(_PET, blur=5, noise=6, texture=7, texture_blur=3)
        return Phantom(f"pet-{where}", tuple(shapes), look, extent, fov, (900.0, 1800.0))
    values = _mr_values(description, where)
    look = Look(values, blur=1, noise=5, texture=8, texture_blur=2)
    return Phantom(f"mr-{where}", tuple(shapes), look, extent, fov, (650.0, 1300.0))
