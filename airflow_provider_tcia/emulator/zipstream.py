"""A streaming zip writer: stored entries, yielded piece by piece, never holding the archive.

Each entry's content is given as a list of byte strings (a DICOM header and its shared pixel data, say);
its CRC-32 is given (the data model remembers each file's) or computed over those pieces just before its
local header is yielded, so the archive is
produced entry by entry with only one entry's pieces referenced at a time. Only the small central directory
records are kept until the end. Zip64 records are written when offsets, sizes or the entry count need
them (a series of many GiB, or more than 65,535 files).
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

_LOCAL = 0x04034B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50
_U32 = 0xFFFFFFFF
_U16 = 0xFFFF


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive: its name, its content as pieces and, when known already, its CRC-32."""

    name: str
    parts: Sequence[bytes]
    crc32: int | None = None


def _dos_time(when: dt.datetime) -> tuple[int, int]:
    date = ((when.year - 1980) << 9) | (when.month << 5) | when.day
    time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    return time, date


def iter_zip(
    entries: Iterable[ZipEntry],
    *,
    when: dt.datetime | None = None,
    zip64_limit: int = _U32,
    count_limit: int = _U16,
) -> Iterator[bytes]:
    """Yield a stored (uncompressed) zip archive of ``entries``, piece by piece.

    :param entries: the files, consumed lazily (an entry may be computed from the ones before it).
    :param when: the modification time of every entry (deterministic archives by default).
    :param zip64_limit: offsets and sizes from this value on are written as zip64 (lowered only by tests).
    :param count_limit: entry counts from this value on need the zip64 end record (lowered only by tests).
    """
    dos_time, dos_date = _dos_time(when or dt.datetime(2024, 1, 1))
    central: list[bytes] = []
    offset = 0
    count = 0
    for entry in entries:
        name = entry.name.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        if entry.crc32 is not None:
            crc = entry.crc32
            size = sum(len(part) for part in entry.parts)
        else:
            crc = 0
            size = 0
            for part in entry.parts:
                crc = zlib.crc32(part, crc)
                size += len(part)
        big_size = size >= zip64_limit
        local_extra = struct.pack("<HHQQ", 1, 16, size, size) if big_size else b""
        version = 45 if big_size else 20
        local = struct.pack(
            "<IHHHHHIIIHH",
            _LOCAL, version, flags, 0, dos_time, dos_date, crc,
            _U32 if big_size else size, _U32 if big_size else size, len(name), len(local_extra),
        )  # fmt: skip
        yield local + name + local_extra
        yield from entry.parts

        big_offset = offset >= zip64_limit
        extra = b""
        if big_size:
            extra += struct.pack("<QQ", size, size)
        if big_offset:
            extra += struct.pack("<Q", offset)
        if extra:
            extra = struct.pack("<HH", 1, len(extra)) + extra
        version = 45 if extra else 20
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            _CENTRAL, version, version, flags, 0, dos_time, dos_date, crc,
            _U32 if big_size else size, _U32 if big_size else size, len(name), len(extra), 0, 0, 0, 0,
            _U32 if big_offset else offset,
        )  # fmt: skip
        central.append(record + name + extra)
        offset += len(local) + len(name) + len(local_extra) + size
        count += 1

    cd_offset = offset
    cd_size = sum(len(c) for c in central)
    yield b"".join(central)
    if count >= count_limit or cd_offset >= zip64_limit or cd_size >= zip64_limit:
        end64_offset = cd_offset + cd_size
        yield struct.pack("<IQHHIIQQQQ", _END64, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)
        yield struct.pack("<IIQI", _LOCATOR64, 0, end64_offset, 1)
        yield struct.pack("<IHHHHIIH", _END, 0, 0, _U16, _U16, _U32, _U32, 0)
    else:
        yield struct.pack("<IHHHHIIH", _END, 0, 0, count, count, cd_size, cd_offset, 0)


def zip_size(entries: Iterable[tuple[str, int]]) -> int:
    """The exact length of the archive :func:`iter_zip` writes for entries of these (name, size) pairs,
    without zip64 (for a default truncation point and for tests)."""
    total = 22
    for name, size in entries:
        n = len(name.encode("utf-8"))
        total += 30 + n + size + 46 + n
    return total
