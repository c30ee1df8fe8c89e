"""Checking a DICOM file's structure while its bytes stream past: what a file sent without an MD5 (the legacy
API's getSingleImage and getImage) can still be checked against.

:class:`DicomStructureChecker` is fed a file's bytes in order. It reads the header of every data element and
skips its value without looking at it, so it costs little whatever the size of the pixel data, and memory stays
flat (element headers and a few short values are held, never the data). :meth:`DicomStructureChecker.finish`
raises :class:`~airflow_provider_tcia.exceptions.TciaCorruptDicomError` or returns a :class:`DicomCheck`.

What is checked:

* a DICOM Part 10 file: 128-byte preamble, ``DICM``, a file meta group whose elements fit in it;
* every data element's declared length fits in what is left of the file, and in the sequence or item that holds
  it (sequences of explicit VR are followed inside, items too); sequences and items of undefined length end with
  their delimiters; nothing is left open at the end, and the file does not end inside an element;
* native pixel data is as long as Rows x Columns x SamplesPerPixel x BitsAllocated / 8 x NumberOfFrames (two
  samples a pixel for ``YBR_*_422``; bit-packed for BitsAllocated 1; plus the pad byte of an odd length) — shorter
  fails, longer is tolerated and said (as pydicom does: the frames are all there); encapsulated pixel data is a
  sequence of items that ends with its sequence delimiter; an image (Rows and Columns given) without any pixel
  data fails;
* transfer syntaxes: implicit VR little endian, explicit VR little endian and big endian, deflated explicit VR
  little endian (inflated on the way, with bounded output; a deflate stream cut short fails), and every other
  standard one (all explicit VR little endian, their pixel data encapsulated). A file that says explicit VR but
  is written in implicit VR (a known encoder bug) is read as implicit, as pydicom does.

What is not checked — :attr:`DicomCheck.checked` is False, :attr:`DicomCheck.detail` says why, and nothing
calls such a file verified: a file that is not Part 10 (no ``DICM``), a file meta without TransferSyntaxUID, a
transfer syntax outside DICOM's standard root (a private one).

What no structural check can see: a value changed in place (a flipped bit in the pixel data, which keeps every
length) and a file cut exactly at an element boundary after its pixel data (trailing padding or a signature
lost). Only a checksum from the server (NBIA's MD5) sees those.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.exceptions import TciaCorruptDicomError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
#: Deflated Explicit VR Little Endian, and JPIP Referenced Deflate: the dataset is one raw deflate stream.
DEFLATED = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"})
#: Transfer syntaxes whose pixel data is native (uncompressed): its length is checked.
NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, "1.2.840.10008.1.2.1.99"})
#: Every other standard transfer syntax is explicit VR little endian (with encapsulated pixel data).
STANDARD_ROOT = "1.2.840.10008.1.2."

VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
#: VRs whose explicit header has two reserved bytes and a 4-byte length.
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())

UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
#: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_TAGS = frozenset({PIXEL_DATA, 0x7FE00008, 0x7FE00009})
SAMPLES, PHOTOMETRIC, FRAMES, ROWS, COLUMNS, BITS = (
    0x00280002,
    0x00280004,
    0x00280008,
    0x00280010,
    0x00280011,
    0x00280100,
)
PIXEL_PROVIDER_URL = 0x00287FE0
#: Top-level attributes whose (short) values the pixel-length check needs.
CAPTURED = frozenset({SAMPLES, PHOTOMETRIC, FRAMES, ROWS, COLUMNS, BITS})
META_GROUP_LENGTH, META_SOP_CLASS, META_SOP_INSTANCE, META_TRANSFER_SYNTAX = (
    0x00020000,
    0x00020002,
    0x00020003,
    0x00020010,
)
META_KEPT = frozenset({META_GROUP_LENGTH, META_SOP_CLASS, META_SOP_INSTANCE, META_TRANSFER_SYNTAX})
_STORAGE = "1.2.840.10008.5.1.4.1.1."
#: Storage SOP classes whose instances are images (Pixel Data required; DICOM PS3.4 Annex B, PS3.3): a file of
#: one of them that ends before its pixel data is cut short, even at an element boundary. (Not RT Dose, whose
#: pixel data is optional, nor MR Spectroscopy.)
_IMAGE_STORAGE_SUFFIXES = (
    "1", "1.1", "1.1.1", "1.2", "1.2.1", "1.3", "1.3.1", "2", "2.1", "2.2", "3", "3.1", "4", "4.1", "4.3",
    "4.4", "5", "6", "6.1", "6.2", "6.3", "7", "7.1", "7.2", "7.3", "7.4", "12.1", "12.1.1", "12.2", "12.2.1",
    "12.3", "13.1.1", "13.1.2", "13.1.3", "13.1.4", "13.1.5", "14.1", "14.2", "20", "30", "66.4", "77.1", "77.2",
    "77.1.1", "77.1.1.1", "77.1.2", "77.1.2.1", "77.1.3", "77.1.4", "77.1.4.1", "77.1.5.1", "77.1.5.2",
    "77.1.5.4", "77.1.5.5", "77.1.5.6", "77.1.5.7", "77.1.5.8", "77.1.6", "77.1.7", "81.1", "82.1", "128",
    "128.1", "130", "481.1",
)  # fmt: skip
IMAGE_STORAGE = frozenset(_STORAGE + suffix for suffix in _IMAGE_STORAGE_SUFFIXES)
#: Longest value kept (UIDs are at most 64 characters).
MAX_KEPT = 256
#: Bound on the output of one inflate call.
INFLATE_LIMIT = 1 << 20

#: Element headers of explicit VR (tag, VR as a number, 2-byte length) and implicit VR (tag, 4-byte length).
_EXPLICIT_HEADER = struct.Struct("<HHHH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_LENGTH = struct.Struct("<I")
_VR_CODES = frozenset(int.from_bytes(vr, "little") for vr in VRS)
_LONG_VR_CODES = frozenset(int.from_bytes(vr, "little") for vr in LONG_VRS)
_SQ = int.from_bytes(b"SQ", "little")

# What a frame of the nesting stack is.
DATASET, SEQUENCE, ITEM_FRAME, FRAGMENTS = range(4)
_KIND_NAMES = {DATASET: "the dataset", SEQUENCE: "sequence", ITEM_FRAME: "item", FRAGMENTS: "encapsulated pixel data"}


@dataclass(frozen=True)
class DicomCheck:
    """What the structural check of one file found."""

    size: int
    """Bytes of the file."""
    checked: bool
    """Whether the structure was checked (False: :attr:`detail` says why it could not be)."""
    detail: str
    """What was checked (``"84 elements fit; native pixel data …"``) or why nothing was."""
    transfer_syntax: str | None = None
    sop_instance_uid: str | None = None
    """MediaStorageSOPInstanceUID from the file meta."""

    def describe(self) -> str:
        if self.checked:
            return f"DICOM structure checked ({self.detail})"
        return f"DICOM structure not checked: {self.detail}"


class DicomStructureChecker:
    """Feed it a DICOM file's bytes in order; :meth:`finish` returns a :class:`DicomCheck` or raises
    :class:`~airflow_provider_tcia.exceptions.TciaCorruptDicomError`. Problems seen early (an element that
    overruns its sequence, a bad VR) raise from :meth:`feed` at once.

    :param what: how messages name the file (``"getSingleImage(SOPInstanceUID='1.2.3')"``).
    """

    def __init__(self, what: str = "the file") -> None:
        self.what = what
        self.size = 0
        """Bytes fed so far."""
        self.transfer_syntax: str | None = None
        self.sop_instance_uid: str | None = None
        """MediaStorageSOPInstanceUID, as soon as the file meta has been read."""
        self.sop_class_uid: str | None = None
        """MediaStorageSOPClassUID, as soon as the file meta has been read."""
        self.unchecked: str | None = None
        """Why the structure cannot be checked, once known (the rest of the file is then only counted)."""
        self._pos = 0
        self._buf = bytearray()
        self._need = 132
        self._handler: Callable[[bytes | memoryview], None] = self._on_preamble
        self._header_handler = self._on_header  # (one bound method, so that `is` tells the state)
        self._skip = 0
        self._then: Callable[[], None] = self._next_record
        self._stack: list[list] = []
        self._limit: int | None = None
        self._endian = "<"
        self._meta_end: int | None = None
        self._in_dataset = False
        self._first = True
        self._native = False
        self._inflater: Any = None  # (a zlib.decompressobj for a deflated dataset)
        self._inflating = False
        self._carry = b""
        self._tag = 0
        self._vr: bytes | None = None
        self._start = 0
        self._length = 0
        self._elements = 0
        self._values: dict[int, bytes | None] = {}
        self._pixel_tag: int | None = None
        self._pixel_length: int | None = None
        self._pixel_closed = False
        self._fragments = 0
        self._notes: list[str] = []

    # --- feeding ------------------------------------------------------------------------------------
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Check the next bytes of the file (``data`` is not kept)."""
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        self.size += view.nbytes
        if self.unchecked is not None:
            return
        if self._inflater is not None:
            self._inflate(view)
        else:
            self._parse(view)

    def finish(self) -> DicomCheck:
        """The result once every byte was fed; raises if the file ended early or is inconsistent."""
        if self.unchecked is None and self._inflater is not None:
            self._finish_inflating()
        if self.unchecked is not None:
            return DicomCheck(self.size, False, self.unchecked, self.transfer_syntax, self.sop_instance_uid)
        if not self._in_dataset:
            if self._handler == self._on_preamble:
                raise self._error(f"{self.size:,} bytes are too few for a DICOM file (preamble and DICM)")
            raise self._error(f"it ends inside its file meta, at byte {self._pos:,}")
        if self._skip:
            raise self._error(
                f"it ends inside {self._element_name()} at byte {self._start:,}, which declares "
                f"{self._length:,} bytes: {self._skip:,} of them are missing"
            )
        if self._buf or self._handler is not self._header_handler:
            raise self._error(f"it ends inside the header or value of an element, at byte {self._pos:,}{self._in()}")
        if len(self._stack) > 1:
            kind, _end, _explicit, opened, tag = self._stack[-1]
            what = "with no sequence delimiter" if kind in (SEQUENCE, FRAGMENTS) else "with no item delimiter"
            raise self._error(
                f"it ends inside {_KIND_NAMES[kind]} {_tag(tag)} opened at byte {opened:,}, {what}{self._in()}"
            )
        if not self._elements:
            raise self._error("it holds nothing after its file meta")
        pixels = self._pixel_detail()
        detail = f"{self._elements:,} elements fit; {pixels}"
        if self._notes:
            detail += "; " + "; ".join(self._notes)
        return DicomCheck(self.size, True, detail, self.transfer_syntax, self.sop_instance_uid)

    # --- the byte loop ------------------------------------------------------------------------------
    def _parse(self, view: memoryview) -> None:
        n = len(view)
        i = 0
        while i < n:
            if not self._skip and self._handler is self._header_handler and not self._buf and self._endian == "<":
                i = self._plain_elements(view, i, n)
                if i >= n:
                    return
            skip = self._skip
            if skip:
                take = n - i if skip > n - i else skip
                self._skip = skip - take
                i += take
                self._pos += take
                if not self._skip:
                    self._then()
                    if self.unchecked is not None or (self._inflater is not None and not self._inflating):
                        self._switch(view[i:])
                        return
                continue
            need = self._need
            buf = self._buf
            if buf:
                take = min(need - len(buf), n - i)
                buf += view[i : i + take]
                i += take
                self._pos += take
                if len(buf) < need:
                    return
                record: bytes | memoryview = bytes(buf)
                buf.clear()
            elif n - i >= need:
                record = view[i : i + need]
                i += need
                self._pos += need
            else:
                buf += view[i:]
                self._pos += n - i
                return
            self._handler(record)
            if self.unchecked is not None or (self._inflater is not None and not self._inflating):
                self._switch(view[i:])
                return

    def _switch(self, rest: memoryview) -> None:
        """Stop reading these bytes as they are: the structure cannot be checked, or the dataset starts here
        and is deflated (the rest goes through the inflater)."""
        if self.unchecked is None:
            self._inflating = True
            carry, self._carry = self._carry, b""
            self._inflate(memoryview(carry + bytes(rest)) if carry else rest)

    def _expect(self, n: int, handler: Callable[[bytes | memoryview], None]) -> None:
        if n == 0:
            handler(b"")
        else:
            self._need, self._handler = n, handler

    def _skip_then(self, n: int, then: Callable[[], None]) -> None:
        if n == 0:
            then()
        else:
            self._skip, self._then = n, then

    # --- preamble and file meta ---------------------------------------------------------------------
    def _on_preamble(self, record: bytes | memoryview) -> None:
        if bytes(record[128:132]) != b"DICM":
            self.unchecked = "not a DICOM Part 10 file (no DICM after a 128-byte preamble)"
            return
        self._expect(8, self._on_meta_header)

    def _on_meta_header(self, record: bytes | memoryview) -> None:
        group, elem = struct.unpack_from("<HH", record)
        if group != 0x0002:  # (no group length: the meta ends where group 0002 does)
            self._begin_dataset(bytes(record))
            return
        vr = bytes(record[4:6])
        if vr not in VRS:
            raise self._error(f"file meta element {_tag(0x00020000 | elem)} has no valid VR ({vr!r})")
        self._tag, self._vr, self._start = 0x00020000 | elem, vr, self._pos - 8
        if vr in LONG_VRS:
            self._expect(4, self._on_meta_long_length)
        else:
            self._meta_element(struct.unpack_from("<H", record, 6)[0])

    def _on_meta_long_length(self, record: bytes | memoryview) -> None:
        self._meta_element(struct.unpack_from("<I", record)[0])

    def _meta_element(self, length: int) -> None:
        self._length = length
        if length == UNDEFINED or (self._meta_end is not None and self._pos + length > self._meta_end):
            raise self._error(
                f"file meta element {_tag(self._tag)} at byte {self._start:,} declares "
                f"{'an undefined length' if length == UNDEFINED else f'{length:,} bytes'}, past the end of the file meta"
            )
        if self._tag in META_KEPT and length <= MAX_KEPT:
            self._expect(length, self._on_meta_value)
        else:
            self._skip_then(length, self._next_meta)

    def _on_meta_value(self, value: bytes | memoryview) -> None:
        raw = bytes(value)
        if self._tag == META_GROUP_LENGTH and len(raw) == 4 and self._meta_end is None:
            self._meta_end = self._pos + struct.unpack("<I", raw)[0]
        elif self._tag == META_SOP_INSTANCE:
            self.sop_instance_uid = _text(raw)
        elif self._tag == META_SOP_CLASS:
            self.sop_class_uid = _text(raw)
        elif self._tag == META_TRANSFER_SYNTAX:
            self.transfer_syntax = _text(raw)
        self._next_meta()

    def _next_meta(self) -> None:
        if self._meta_end is not None and self._pos >= self._meta_end:
            self._begin_dataset(b"")
        else:
            self._expect(8, self._on_meta_header)

    def _begin_dataset(self, carry: bytes) -> None:
        """The file meta is read: set up the dataset's encoding; ``carry`` is its first bytes, already read."""
        ts = self.transfer_syntax
        if ts is None:
            self.unchecked = "its file meta has no TransferSyntaxUID, so its encoding is unknown"
            return
        explicit = ts != IMPLICIT_LE
        if ts == EXPLICIT_BE:
            self._endian = ">"
        elif ts in DEFLATED:
            self._inflater = zlib.decompressobj(-15)
        elif ts not in (IMPLICIT_LE, EXPLICIT_LE) and not ts.startswith(STANDARD_ROOT):
            self.unchecked = f"its transfer syntax {ts} is not a standard one, so its encoding is unknown"
            return
        self._native = ts in NATIVE
        self._in_dataset = True
        self._stack = [[DATASET, None, explicit, self._pos - len(carry), 0]]
        if self._inflater is not None:
            self._carry = carry
            self._pos = 0  # (offsets from here are in the inflated dataset)
            self._next_record()
        elif carry:
            self._on_header(carry)
        else:
            self._next_record()

    # --- the dataset ----------------------------------------------------------------------------------
    def _next_record(self) -> None:
        """Close the sequences and items of defined length that end here, then read the next header."""
        stack = self._stack
        pos = self._pos
        while len(stack) > 1:
            end = stack[-1][1]
            if end is None or pos < end:
                break
            if pos > end:  # (every header and length is checked against its frame's end first)
                raise self._error(f"{_KIND_NAMES[stack[-1][0]]} {_tag(stack[-1][4])} overran its length{self._in()}")
            self._pop()
        self._need, self._handler = 8, self._header_handler

    def _plain_elements(self, view: memoryview, i: int, n: int) -> int:
        """Skip, straight from ``view``, the run of plain elements that starts at ``i`` (defined length, not a
        sequence, value within this chunk and its sequence or item, nothing this check keeps): most of a
        header, at a fraction of the cost of the general path, which takes over at anything else."""
        top = self._stack[-1]
        if top[0] not in (DATASET, ITEM_FRAME):
            return i
        explicit, end, limit = top[2], top[1], self._limit
        top_level = len(self._stack) == 1
        pos, count = self._pos, 0
        while n - i >= 12 and (end is None or pos < end):
            if explicit:
                group, elem, vr, length = _EXPLICIT_HEADER.unpack_from(view, i)
                if vr not in _VR_CODES or vr == _SQ:
                    break
                if vr in _LONG_VR_CODES:
                    length = _LENGTH.unpack_from(view, i + 8)[0]
                    size = 12 + length
                else:
                    size = 8 + length
            else:
                group, elem, length = _IMPLICIT_HEADER.unpack_from(view, i)
                size = 8 + length
            if group == 0xFFFE or length == UNDEFINED:
                break
            if i + size > n or (limit is not None and pos + size > limit):
                break
            if top_level and (group == 0x0028 or group == 0x7FE0):  # (what the pixel-length check reads)
                tag = group << 16 | elem
                if tag in PIXEL_TAGS:
                    self._pixel_tag, self._pixel_length = tag, length
                elif tag in CAPTURED and length <= MAX_KEPT:
                    self._values[tag] = bytes(view[i + size - length : i + size])
                elif tag == PIXEL_PROVIDER_URL:
                    self._values[tag] = None
            i += size
            pos += size
            count += 1
        if count:
            self._pos = pos
            self._elements += count
            self._first = False
            self._next_record()  # (closes the item or sequence that ends here)
        return i

    def _on_header(self, record: bytes | memoryview) -> None:
        endian = self._endian
        group, elem = struct.unpack_from(endian + "HH", record)
        tag = group << 16 | elem
        self._start = self._pos - 8
        self._tag = tag
        if self._limit is not None and self._pos > self._limit:
            raise self._overrun(f"the header of {_tag(tag)} at byte {self._start:,} runs")
        if group == 0xFFFE:
            self._vr = None
            self._delimiter(tag, struct.unpack_from(endian + "I", record, 4)[0])
            return
        top = self._stack[-1]
        if top[0] in (SEQUENCE, FRAGMENTS):
            raise self._error(
                f"{_KIND_NAMES[top[0]]} {_tag(top[4])} opened at byte {top[3]:,} holds element {_tag(tag)} at byte "
                f"{self._start:,} where an item or its delimiter belongs{self._in()}"
            )
        if top[2]:
            vr = bytes(record[4:6])
            if vr not in VRS:
                if not (self._first and len(self._stack) == 1):
                    raise self._error(
                        f"element {_tag(tag)} at byte {self._start:,} has no valid VR ({vr!r}){self._in()}"
                    )
                top[2] = False  # explicit VR said, implicit VR written: read it as implicit (pydicom does too)
                self._notes.append("written in implicit VR although its transfer syntax says explicit")
            else:
                self._vr = vr
                if vr in LONG_VRS:
                    self._expect(4, self._on_long_length)
                else:
                    self._element(struct.unpack_from(endian + "H", record, 6)[0])
                return
        self._vr = None
        self._element(struct.unpack_from(endian + "I", record, 4)[0])

    def _on_long_length(self, record: bytes | memoryview) -> None:
        self._element(struct.unpack_from(self._endian + "I", record)[0])

    def _element(self, length: int) -> None:
        tag, vr = self._tag, self._vr
        self._first = False
        self._elements += 1
        self._length = length
        top_level = len(self._stack) == 1
        if length == UNDEFINED:
            explicit = self._stack[-1][2]
            if tag == PIXEL_DATA:
                self._push(FRAGMENTS, None, explicit)
                if top_level:
                    self._pixel_tag, self._pixel_length = tag, None
            elif vr == b"SQ" or vr is None:  # (in implicit VR only a sequence has an undefined length)
                self._push(SEQUENCE, None, explicit)
            elif vr == b"UN":  # an undefined-length UN holds a sequence in implicit VR little endian
                self._push(SEQUENCE, None, False)
            else:
                raise self._error(
                    f"element {_tag(tag)} ({vr.decode()}) at byte {self._start:,} has an undefined length"
                )
            self._next_record()
            return
        self._fits(length)
        if vr == b"SQ":
            self._push(SEQUENCE, self._pos + length, self._stack[-1][2])
            self._next_record()
            return
        if top_level:
            if tag in PIXEL_TAGS:
                self._pixel_tag, self._pixel_length = tag, length
            elif tag in CAPTURED and length <= MAX_KEPT:
                self._expect(length, self._on_value)
                return
            elif tag == PIXEL_PROVIDER_URL:
                self._values[tag] = None
        self._skip_then(length, self._next_record)

    def _on_value(self, value: bytes | memoryview) -> None:
        self._values[self._tag] = bytes(value)
        self._next_record()

    def _delimiter(self, tag: int, length: int) -> None:
        top = self._stack[-1]
        kind = top[0]
        self._length = length
        if tag == ITEM and kind == SEQUENCE:
            if length == UNDEFINED:
                self._push(ITEM_FRAME, None, top[2])
            else:
                self._fits(length)
                self._push(ITEM_FRAME, self._pos + length, top[2])
            self._next_record()
            return
        if tag == ITEM and kind == FRAGMENTS:
            if length == UNDEFINED:
                raise self._error(
                    f"a fragment of encapsulated pixel data at byte {self._start:,} has an undefined length"
                )
            self._fits(length)
            self._fragments += len(self._stack) == 2
            self._skip_then(length, self._next_record)
            return
        if tag == ITEM_END and kind == ITEM_FRAME and top[1] is None:
            self._pop()
            self._next_record()
            return
        if tag == SEQUENCE_END and kind in (SEQUENCE, FRAGMENTS) and top[1] is None:
            self._pop()
            if kind == FRAGMENTS and len(self._stack) == 1:
                self._pixel_closed = True
            self._next_record()
            return
        where = f"{_KIND_NAMES[kind]} {_tag(top[4])} opened at byte {top[3]:,}" if kind != DATASET else "the dataset"
        raise self._error(f"{_tag(tag)} at byte {self._start:,} does not belong in {where}{self._in()}")

    def _fits(self, length: int) -> None:
        limit = self._limit
        if limit is not None and self._pos + length > limit:
            raise self._overrun(f"{self._element_name()} at byte {self._start:,} declares {length:,} bytes,")

    def _overrun(self, what: str) -> TciaCorruptDicomError:
        kind, _end, _explicit, opened, tag = next(f for f in reversed(self._stack) if f[1] is not None)
        return self._error(
            f"{what} past the end of the {_KIND_NAMES[kind]} {_tag(tag)} opened at byte {opened:,} (which ends at "
            f"byte {self._limit:,}){self._in()}"
        )

    def _push(self, kind: int, end: int | None, explicit: bool) -> None:
        self._stack.append([kind, end, explicit, self._start, self._tag])
        if end is not None:
            self._limit = end

    def _pop(self) -> None:
        self._stack.pop()
        self._limit = next((f[1] for f in reversed(self._stack) if f[1] is not None), None)

    # --- deflated datasets --------------------------------------------------------------------------
    def _inflate(self, data: memoryview) -> None:
        inflater = self._inflater
        if inflater.eof:
            return  # (bytes after the end of the deflate stream are ignored, as readers do)
        try:
            out = inflater.decompress(data, INFLATE_LIMIT)
            self._parse(memoryview(out))
            # Output can still be pending once every input byte is taken (a match cut at the output limit).
            while not inflater.eof and (inflater.unconsumed_tail or len(out) == INFLATE_LIMIT):
                out = inflater.decompress(inflater.unconsumed_tail, INFLATE_LIMIT)
                self._parse(memoryview(out))
        except zlib.error as err:
            raise self._error(f"its deflated dataset is corrupt ({err})") from None

    def _finish_inflating(self) -> None:
        if not self._inflating:  # (the file ended with its file meta)
            return
        if not self._inflater.eof:
            raise self._error(
                f"its deflated dataset is cut short: the deflate stream does not end ({self._pos:,} bytes inflated)"
            )

    # --- pixel data -----------------------------------------------------------------------------------
    def _pixel_detail(self) -> str:
        values = self._values
        if self._pixel_tag is None:
            if PIXEL_PROVIDER_URL in values:
                return "no pixel data (it names a pixel data provider)"
            if ROWS in values and COLUMNS in values:
                raise self._error("it is an image (Rows and Columns are given) but holds no pixel data")
            if self.sop_class_uid in IMAGE_STORAGE:
                raise self._error(f"it is an image (SOP class {self.sop_class_uid}) but holds no pixel data")
            return "no pixel data"
        if self._pixel_length is None:
            return f"encapsulated pixel data: {self._fragments:,} items, ended by its sequence delimiter"
        length = self._pixel_length
        if not self._native and self._pixel_tag == PIXEL_DATA:
            return f"pixel data of {length:,} bytes in a compressed transfer syntax (fits; its length not compared)"
        expected, formula = self._expected_pixel_length()
        if expected is None:
            return f"native pixel data of {length:,} bytes (fits; not compared: {formula})"
        if length < expected:
            raise self._error(
                f"its pixel data {_tag(self._pixel_tag)} has {length:,} bytes, but {formula} makes {expected:,}"
            )
        if length <= expected + (expected & 1):
            return f"native pixel data of {length:,} bytes = {formula}"
        return f"native pixel data of {length:,} bytes, {length - expected:,} more than {formula} (tolerated)"

    def _expected_pixel_length(self) -> tuple[int | None, str]:
        rows, columns, bits = self._number(ROWS), self._number(COLUMNS), self._number(BITS)
        if rows is None or columns is None or bits is None:
            return None, "Rows, Columns or BitsAllocated missing"
        samples = self._number(SAMPLES) or 1
        frames_text = _text(self._values.get(FRAMES) or b"")
        try:
            frames = int(float(frames_text)) if frames_text else 1
        except ValueError:
            return None, f"NumberOfFrames is {frames_text!r}"
        frames = max(frames, 1)
        photometric = _text(self._values.get(PHOTOMETRIC) or b"")
        per_pixel = 2 if samples == 3 and photometric in ("YBR_FULL_422", "YBR_PARTIAL_422") else samples
        formula = f"Rows {rows} x Columns {columns} x {per_pixel} samples a pixel x {bits} bits / 8 x {frames} frames"
        return (rows * columns * per_pixel * frames * bits + 7) // 8, formula

    def _number(self, tag: int) -> int | None:
        raw = self._values.get(tag)
        if not raw or len(raw) < 2:
            return None
        return struct.unpack_from(self._endian + "H", raw)[0]

    # --- messages -------------------------------------------------------------------------------------
    def _element_name(self) -> str:
        if self._tag == ITEM:
            return "an item"
        return f"element {_tag(self._tag)}"

    def _in(self) -> str:
        return " (offsets in the inflated dataset)" if self._inflating else ""

    def _error(self, problem: str) -> TciaCorruptDicomError:
        return TciaCorruptDicomError(f"{self.what}: {problem} ({self.size:,} bytes received)")


def check_dicom_bytes(data: bytes, what: str = "the file") -> DicomCheck:
    """The structural check of a whole file held in memory (tests, small files)."""
    checker = DicomStructureChecker(what)
    checker.feed(data)
    return checker.finish()


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _text(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").strip("\x00 ")
