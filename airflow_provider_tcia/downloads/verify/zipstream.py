"""Checking a series zip while it streams, so a download is verified without a second read.

:class:`StreamingZipVerifier` is fed the body of a getImage response chunk by chunk. It walks the zip's local
file headers as the bytes arrive and, per entry, computes CRC-32 and MD5 of the uncompressed data (inflating
deflated entries on the fly), optionally writing each entry's data to a sink (the ``extract`` layout). Entries
whose sizes are not in the local header (a data descriptor follows the data, as written by Java's
``ZipOutputStream`` or Python's ``zipfile`` on a stream) are handled too: deflated ones end where the deflate
stream ends; stored ones end at a data descriptor whose CRC and size match what was read. The central directory
and end record are then checked against what was seen, so a zip cut short (TCIA sends those with HTTP 200) or
with a bad CRC fails here.

What the verifier cannot follow inline (an encrypted entry, a compression method other than stored or deflate)
makes it step aside (:attr:`StreamingZipVerifier.fallback_reason`);
:func:`~airflow_provider_tcia.downloads.verify.fallback.verify_zip_file` then checks the finished file through its
central directory with :mod:`zipfile`. Large entries can be hashed on worker threads
(:class:`~airflow_provider_tcia.downloads.verify.hashing.HashWorkers`).

With ``check_dicom``, each DICOM file's structure is checked on the way too
(:class:`~airflow_provider_tcia.downloads.verify.dicom.DicomStructureChecker`): what protects files that no
``md5hashes.csv`` vouches for (the legacy API) against a server that zipped a file cut short.

:func:`~airflow_provider_tcia.downloads.verify.contents.check_contents` finally compares the DICOM files with
the expected count (ImageCount / ObjectCount) and with ``md5hashes.csv`` when the zip has one.
"""

from __future__ import annotations

import hashlib
import posixpath
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from airflow_provider_tcia.downloads.verify.contents import (
    MAX_LISTING,
    MD5_LISTING,
    dicom_check_line,
    is_dicom_name,
    parse_md5_listing,
    unsafe_name,
)
from airflow_provider_tcia.downloads.verify.dicom import DicomStructureChecker
from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.exceptions import ZipVerificationError

if TYPE_CHECKING:
    from airflow_provider_tcia.downloads.verify.hashing import _Hashing

LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
EOCD_SIG = b"PK\x05\x06"
ZIP64_EOCD_SIG = b"PK\x06\x06"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
DESCRIPTOR_SIG = b"PK\x07\x08"
#: Bound on the output of one inflate call (a deflate bomb cannot make memory grow).
INFLATE_LIMIT = 4 << 20

_LOCAL = struct.Struct("<HHHHHIIIHH")
_CENTRAL = struct.Struct("<HHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<HHHHIIH")
#: A data descriptor's fields after its (optional) signature: CRC-32, compressed size, size.
_DESCRIPTOR = struct.Struct("<III")
_DESCRIPTOR64 = struct.Struct("<IQQ")
_ZIP64_SENTINEL = 0xFFFFFFFF


class EntrySink(Protocol):
    """Where the ``extract`` layout writes each entry's data."""

    def open(self, name: str) -> IO[bytes]: ...


@dataclass
class ZipEntry:
    """One entry of a verified zip."""

    name: str
    size: int
    compressed_size: int
    crc32: int
    md5: str | None
    crc_checked: bool = True
    """``False``: its CRC-32 was not computed (``crc32`` is the zip's own) because its MD5 is checked against
    ``md5hashes.csv`` instead (``crc_covered_by_md5``)."""

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_dicom(self) -> bool:
        """A file of the series (not LICENSE, md5hashes.csv or a folder)."""
        return is_dicom_name(self.name)


@dataclass
class ZipReport:
    """What a verified zip holds."""

    entries: list[ZipEntry]
    zip_bytes: int
    md5_listing: dict[str, str] | None = None
    """``md5hashes.csv`` parsed (file name → lower-case hex MD5), if the zip has one."""
    checks: list[str] = field(default_factory=list)
    """The checks that passed, in words (for the manifest and the log)."""
    dicom_unchecked: dict[str, str] = field(default_factory=dict)
    """With ``check_dicom``: the DICOM files whose structure could not be checked, and why."""

    @property
    def dicom_entries(self) -> list[ZipEntry]:
        return [e for e in self.entries if e.is_dicom]

    @property
    def uncompressed_bytes(self) -> int:
        return sum(e.size for e in self.entries)


class _Entry:
    """The entry being read: its header fields and running digests."""

    __slots__ = (
        "compressed",
        "crc",
        "dicom",
        "expected_crc",
        "expected_csize",
        "expected_size",
        "flags",
        "hashing",
        "listing",
        "md5",
        "method",
        "name",
        "out",
        "size",
        "wants_crc",
        "zip64",
    )

    def __init__(self, name: str, flags: int, method: int, crc: int, csize: int, size: int, zip64: bool) -> None:
        self.name = name
        self.flags = flags
        self.method = method
        self.expected_crc = crc
        self.expected_csize = csize
        self.expected_size = size
        self.zip64 = zip64
        self.crc = 0
        self.size = 0
        self.compressed = 0
        self.md5: Any = None
        """A ``hashlib.md5`` object, or None."""
        self.hashing: _Hashing | None = None
        """Its CRC-32 and MD5 computed by :class:`HashWorkers` (None: inline, in ``crc`` and ``md5``)."""
        self.wants_crc = True
        """Whether its CRC-32 is computed (not where md5hashes.csv vouches for it: its MD5 is checked)."""
        self.out: IO[bytes] | None = None
        self.listing: bytearray | None = None
        self.dicom: DicomStructureChecker | None = None

    @property
    def has_descriptor(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def wide_descriptor(self) -> bool:
        """Whether the data descriptor has 8-byte sizes: with a zip64 extra field (Python's zipfile), or once
        the entry passed 4 GiB (Java's ZipOutputStream)."""
        return self.zip64 or self.size >= _ZIP64_SENTINEL or self.compressed >= _ZIP64_SENTINEL

    @property
    def descriptor(self) -> struct.Struct:
        return _DESCRIPTOR64 if self.wide_descriptor else _DESCRIPTOR


class StreamingZipVerifier:
    """Feed it a zip's bytes in order; :meth:`finish` returns a :class:`ZipReport` or raises
    :class:`ZipVerificationError`.

    Memory stays bounded whatever the zip's size: only record headers, a few bytes at chunk boundaries and
    ``md5hashes.csv`` are held.

    :param sink: where to write each entry's uncompressed data (``None``: verify only).
    :param compute_md5: compute each entry's MD5 (needed to check ``md5hashes.csv`` and for the manifest).
    :param what: how messages name the zip (``"getImage(SeriesInstanceUID='1.2.3')"``).
    :param on_data: called with the number of uncompressed bytes as each piece of entry data is checked.
    :param on_entry: called with each entry once its structure and size passed their checks (with
        ``hash_workers``, its CRC-32 and MD5 may be checked and set later).
    :param hash_workers: hash large entries (CRC-32 and MD5) on these worker threads instead of inline;
        :meth:`finish` waits for them. The caller must then not reuse a chunk's buffer before
        :meth:`HashWorkers.after` says so.
    :param check_dicom: check the structure of every DICOM file as it is read (on this thread: it reads element
        headers only, so it costs little).
    :param crc_covered_by_md5: the caller requires ``md5hashes.csv`` to list every DICOM file
        (:func:`~airflow_provider_tcia.downloads.verify.contents.check_contents` with ``require_md5=True``): the
        DICOM entries get their MD5 only, not their CRC-32 — a CRC-32 mismatch would fail the MD5 too, so
        computing both costs CPU and catches nothing more (an entry followed by a data descriptor keeps its
        CRC-32: with stored data, its end is found by it). Their
        :attr:`ZipEntry.crc_checked` is ``False`` (``crc32`` is the zip's); ``check_contents`` refuses such a
        report without a listing that covers them.
    """

    def __init__(
        self,
        *,
        sink: EntrySink | None = None,
        compute_md5: bool = True,
        what: str = "the zip",
        on_data: Callable[[int], None] | None = None,
        on_entry: Callable[[ZipEntry], None] | None = None,
        hash_workers: HashWorkers | None = None,
        check_dicom: bool = False,
        crc_covered_by_md5: bool = False,
    ) -> None:
        self.sink = sink
        self.crc_covered_by_md5 = crc_covered_by_md5 and compute_md5
        self._crc_skipped = 0
        self.hash_workers = hash_workers
        self.check_dicom = check_dicom
        self._dicom_checked = 0
        self._dicom_unchecked: dict[str, str] = {}
        self.compute_md5 = compute_md5
        self.what = what
        self.on_data = on_data
        self.on_entry = on_entry
        self.position = 0
        """Bytes fed so far."""
        self.fallback_reason: str | None = None
        """Why the rest of the zip could not be followed inline;
        :func:`~airflow_provider_tcia.downloads.verify.fallback.verify_zip_file` must check it."""
        self._parsed = 0
        self._buf = bytearray()
        self._need = 4
        self._handler: Callable[[bytes], None] = self._on_signature
        self._data: Callable[[memoryview, int], int] | None = None
        self._chunk: bytes | bytearray | None = b""
        self._entry: _Entry | None = None
        self._inflater: Any = None
        """The running ``zlib.decompressobj`` of a deflated entry."""
        self._remaining = 0
        self._tail = b""
        self._entries: list[ZipEntry] = []
        self._by_name: dict[str, ZipEntry] = {}
        self._central = 0
        self._central_start: int | None = None
        self._listing: dict[str, str] | None = None
        self._zip64_total: int | None = None
        self._done = False

    # --- feeding ------------------------------------------------------------------------------------
    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Check the next bytes of the zip (not copied: entry data is hashed and written from ``chunk``)."""
        view = memoryview(chunk)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        n = view.nbytes
        self.position += n
        if self.fallback_reason is not None or self._done:
            return
        self._chunk = chunk if isinstance(chunk, bytes | bytearray) else None  # (see _stored_until_descriptor)
        i = 0
        while i < n:
            if self._data is not None:
                i = self._data(view, i)
                continue
            if self._done:
                return  # bytes after the end record are ignored, as unzip does
            take = min(self._need - len(self._buf), n - i)
            self._buf += view[i : i + take]
            i += take
            self._parsed += take
            if len(self._buf) == self._need:
                record = bytes(self._buf)
                self._buf.clear()
                self._handler(record)
                if self.fallback_reason is not None:
                    return

    def finish(self) -> ZipReport:
        """The report once every byte was fed; raises if the zip ended early or was inconsistent."""
        if self.fallback_reason is not None:
            raise RuntimeError("the zip was not followed inline; check it with verify_zip_file()")
        if not self._done:
            raise self._error(f"the zip is truncated: it ended after {self.position:,} bytes {self._where()}")
        if self.hash_workers is not None:
            self.hash_workers.drain()
        crc = "CRC-32 of every entry matches"
        if self._crc_skipped:
            crc = (
                f"CRC-32 of every entry matches, except the {self._crc_skipped} DICOM files whose MD5 is checked "
                f"against {MD5_LISTING} instead"
            )
        checks = [f"zip complete: {len(self._entries)} entries, central directory and end record agree", crc]
        if self.check_dicom:
            checks.append(dicom_check_line(self._dicom_checked, self._dicom_unchecked))
        return ZipReport(list(self._entries), self.position, self._listing, checks, dict(self._dicom_unchecked))

    def abort(self) -> None:
        """Close the sink's open file, if any (the caller removes what was written)."""
        entry = self._entry
        if entry is not None and entry.out is not None:
            out, entry.out = entry.out, None
            out.close()

    # --- records ------------------------------------------------------------------------------------
    def _expect(self, n: int, handler: Callable[[bytes], None]) -> None:
        if n == 0:
            handler(b"")
        else:
            self._need, self._handler = n, handler

    def _next_record(self, _record: bytes = b"") -> None:
        self._expect(4, self._on_signature)

    def _on_signature(self, sig: bytes) -> None:
        start = self._parsed - 4
        if sig == LOCAL_SIG:
            if self._central_start is not None:
                raise self._error(f"a local file header follows the central directory (byte {start:,})")
            self._expect(_LOCAL.size, self._on_local)
            return
        if sig in (CENTRAL_SIG, ZIP64_EOCD_SIG, EOCD_SIG) and self._central_start is None:
            self._central_start = start
            if self.hash_workers is not None:
                self.hash_workers.drain()  # (every entry's CRC-32, to compare with the central directory)
        if sig == CENTRAL_SIG:
            self._expect(_CENTRAL.size, self._on_central)
        elif sig == ZIP64_EOCD_SIG:
            self._expect(8, self._on_zip64_eocd_size)
        elif sig == ZIP64_LOCATOR_SIG:
            self._expect(16, self._next_record)
        elif sig == EOCD_SIG:
            self._expect(_EOCD.size, self._on_eocd)
        else:
            raise self._error(f"unexpected bytes {sig!r} at byte {start:,}, {self._where()}")

    def _on_local(self, record: bytes) -> None:
        _ver, flags, method, _time, _date, crc, csize, size, name_len, extra_len = _LOCAL.unpack(record)
        self._expect(
            name_len + extra_len,
            lambda rest: self._start_entry(flags, method, crc, csize, size, rest[:name_len], rest[name_len:]),
        )

    def _start_entry(self, flags: int, method: int, crc: int, csize: int, size: int, raw: bytes, extra: bytes) -> None:
        name = _decode_name(raw, flags)
        if flags & 0x01:
            self._fallback(f"entry {name!r} is encrypted")
            return
        if method not in (0, 8):
            self._fallback(f"entry {name!r} uses compression method {method}")
            return
        problem = unsafe_name(name)
        if problem:
            raise self._error(f"entry {name!r} {problem}")
        if name in self._by_name:
            raise self._error(f"the zip holds {name!r} twice")
        zip64 = _zip64_extra(extra) is not None
        if csize == _ZIP64_SENTINEL or size == _ZIP64_SENTINEL:
            size, csize = _zip64_sizes(extra, size, csize)
        entry = _Entry(name, flags, method, crc, csize, size, zip64)
        if self.compute_md5:
            entry.md5 = hashlib.md5(usedforsecurity=False)
        # (an entry followed by a data descriptor keeps its CRC-32, and is hashed here: its end is found by it)
        entry.wants_crc = entry.has_descriptor or not (self.crc_covered_by_md5 and is_dicom_name(name))
        if posixpath.basename(name).lower() == MD5_LISTING:
            entry.listing = bytearray()
        elif self.hash_workers is not None and not entry.has_descriptor and size >= HashWorkers.MIN_ENTRY:
            entry.hashing = self.hash_workers.start(self.compute_md5, crc=entry.wants_crc)  # (None: hash it here)
            if entry.hashing is not None:
                entry.md5 = None
        if self.sink is not None and not name.endswith("/"):
            entry.out = self.sink.open(name)
        if self.check_dicom and is_dicom_name(name):
            entry.dicom = DicomStructureChecker(f"{self.what}: entry {name!r}")
        self._entry = entry
        if method == 8:
            self._inflater = zlib.decompressobj(-15)
            if entry.has_descriptor:
                self._data = self._inflate_until_end
            else:
                self._remaining = csize
                self._data = self._inflate_known
        elif entry.has_descriptor and csize == 0:
            self._tail = b""
            self._data = self._stored_until_descriptor
        elif csize == 0:
            self._end_of_data()
        else:
            self._remaining = csize
            self._data = self._stored_known

    # --- entry data ---------------------------------------------------------------------------------
    @property
    def _current(self) -> _Entry:
        """The entry whose data or descriptor is being read (only asked while there is one)."""
        entry = self._entry
        assert entry is not None
        return entry

    def _emit(self, data: bytes | memoryview) -> None:
        if not data:
            return
        entry = self._current
        entry.size += len(data)
        if entry.hashing is not None:
            workers = self.hash_workers
            assert workers is not None  # (an entry is hashed on workers only when there are some)
            workers.update(entry.hashing, data)
        else:
            if entry.wants_crc:
                entry.crc = zlib.crc32(data, entry.crc)
            if entry.md5 is not None:
                entry.md5.update(data)
        if entry.out is not None:
            entry.out.write(data)
        if entry.dicom is not None:
            entry.dicom.feed(data)
        if entry.listing is not None:
            if len(entry.listing) + len(data) > MAX_LISTING:
                raise self._error(f"{entry.name} is larger than {MAX_LISTING:,} bytes")
            entry.listing += data
        if self.on_data is not None:
            self.on_data(len(data))

    def _emit_stored(self, data: bytes | memoryview) -> None:
        self._emit(data)
        self._current.compressed += len(data)

    def _stored_known(self, view: memoryview, i: int) -> int:
        take = min(self._remaining, len(view) - i)
        self._emit_stored(view[i : i + take])
        self._remaining -= take
        self._parsed += take
        if self._remaining == 0:
            self._data = None
            self._end_of_data()
        return i + take

    def _inflate_known(self, view: memoryview, i: int) -> int:
        take = min(self._remaining, len(view) - i)
        used = self._inflate(view[i : i + take])
        self._remaining -= used
        self._parsed += used
        if self._inflater.eof or self._remaining == 0:
            if not self._inflater.eof or self._remaining:
                raise self._error(
                    f"entry {self._current.name!r}: its deflate data does not end where the header's compressed "
                    f"size ({self._current.expected_csize:,} bytes) says"
                )
            self._data = None
            self._end_of_data()
        return i + used

    def _inflate_until_end(self, view: memoryview, i: int) -> int:
        used = self._inflate(view[i:])
        self._parsed += used
        if self._inflater.eof:
            self._data = None
            self._end_of_data()
        return i + used

    def _inflate(self, data: memoryview) -> int:
        """Inflate ``data`` with bounded output; returns how many of its bytes belong to this entry."""
        inflater = self._inflater
        try:
            out = inflater.decompress(data, INFLATE_LIMIT)
            self._emit(out)
            # Output can still be pending once every input byte is taken (a match cut at the output limit).
            while not inflater.eof and (inflater.unconsumed_tail or len(out) == INFLATE_LIMIT):
                out = inflater.decompress(inflater.unconsumed_tail, INFLATE_LIMIT)
                self._emit(out)
        except zlib.error as err:
            raise self._error(f"entry {self._current.name!r}: its deflate data is corrupt ({err})") from None
        used = len(data) - len(inflater.unused_data) if inflater.eof else len(data)
        self._current.compressed += used
        return used

    def _stored_until_descriptor(self, view: memoryview, i: int) -> int:
        """A stored entry of unknown size ends at a data descriptor whose CRC and sizes match the bytes before
        it; a ``PK\\x07\\x08`` inside the data fails that test and is read as data."""
        n = len(view)
        tail, self._tail = self._tail, b""
        if tail and n - i < 64:
            # A tiny chunk: scan it together with the bytes held back from the previous one.
            buf = tail + bytes(view[i:])
            end = self._scan(buf, 0, len(buf))
            used = (len(buf) if end is None else end) - len(tail)
            self._parsed += used
            return i + used
        if tail:
            # A descriptor may start in the held-back bytes and end in this chunk.
            window = tail + bytes(view[i : i + self._descriptor_size()])
            end = self._scan(window, 0, len(tail), hold=False)
            if end is not None:
                self._parsed += end - len(tail)
                return i + end - len(tail)
        if self._chunk is None:  # (fed a memoryview: searching needs bytes; copied once per chunk)
            self._chunk = bytes(view)
        end = self._scan(self._chunk, i, n)
        used = (n if end is None else end) - i
        self._parsed += used
        return i + used

    def _descriptor_size(self) -> int:
        return 4 + self._current.descriptor.size

    def _scan(self, buf: bytes | bytearray, start: int, stop: int, *, hold: bool = True) -> int | None:
        """Read ``buf[start:stop]`` as data up to a matching descriptor; return the index just after it, or
        None if the entry goes on (with ``hold``, the last bytes that may begin a descriptor are kept back)."""
        view = memoryview(buf)
        need = self._descriptor_size()
        emitted = pos = start
        while (hit := buf.find(DESCRIPTOR_SIG, pos, stop + 3)) >= 0 and hit < stop:
            self._emit_stored(view[emitted:hit])
            emitted = hit
            if len(buf) - hit < need:
                self._tail = bytes(view[hit:])
                return None
            if self._descriptor_matches(buf[hit + 4 : hit + need]):
                self._data = None
                self._finish_entry()
                return hit + need
            pos = hit + 1
        keep = min(3, stop - emitted) if hold else 0  # a signature may straddle two chunks
        self._emit_stored(view[emitted : stop - keep])
        self._tail = bytes(view[stop - keep : stop])
        return None

    def _descriptor_matches(self, fields: bytes | bytearray) -> bool:
        entry = self._current
        crc, csize, size = entry.descriptor.unpack_from(fields)
        if (crc, csize, size) != (entry.crc, entry.compressed, entry.size):
            return False
        entry.expected_crc, entry.expected_csize, entry.expected_size = crc, csize, size
        return True

    def _end_of_data(self) -> None:
        if self._current.has_descriptor:
            self._expect(4, self._on_descriptor_start)
        else:
            self._finish_entry()

    def _on_descriptor_start(self, first: bytes) -> None:
        rest = self._current.descriptor.size
        if first == DESCRIPTOR_SIG:
            self._expect(rest, self._on_descriptor)
        else:  # the signature is optional
            self._expect(rest - 4, lambda more: self._on_descriptor(first + more))

    def _on_descriptor(self, fields: bytes) -> None:
        entry = self._current
        entry.expected_crc, entry.expected_csize, entry.expected_size = entry.descriptor.unpack(fields)
        self._finish_entry()

    def _finish_entry(self) -> None:
        entry = self._current
        if entry.hashing is None and entry.wants_crc:
            self._check_crc(entry.name, entry.expected_crc, entry.crc)
        if entry.size != entry.expected_size or entry.compressed != entry.expected_csize:
            raise self._error(
                f"entry {entry.name!r}: the zip says {entry.expected_size:,} bytes ({entry.expected_csize:,} "
                f"compressed), the data has {entry.size:,} ({entry.compressed:,} compressed)"
            )
        if entry.out is not None:
            out, entry.out = entry.out, None
            out.close()
        if entry.listing is not None:
            self._listing = parse_md5_listing(bytes(entry.listing), what=self.what)
        if entry.dicom is not None:
            result = entry.dicom.finish()
            if result.checked:
                self._dicom_checked += 1
            else:
                self._dicom_unchecked[entry.name] = result.detail
        done = ZipEntry(
            entry.name, entry.size, entry.compressed, entry.crc, entry.md5.hexdigest() if entry.md5 else None
        )
        if not entry.wants_crc:
            done.crc32, done.crc_checked = entry.expected_crc, False  # (the central directory must agree)
            self._crc_skipped += 1
        if entry.hashing is not None:
            name, expected = entry.name, entry.expected_crc
            assert self.hash_workers is not None
            self.hash_workers.finish(entry.hashing, done, lambda crc: self._check_crc(name, expected, crc))
        self._entries.append(done)
        self._by_name[done.name] = done
        self._entry = None
        self._inflater = None
        if self.on_entry is not None:
            self.on_entry(done)
        self._next_record()

    def _check_crc(self, name: str, expected: int, crc: int) -> None:
        if crc != expected:
            raise self._error(
                f"entry {name!r} fails its CRC check: the zip says {expected:08x}, the data gives {crc:08x}"
            )

    # --- central directory and end records ----------------------------------------------------------
    def _on_central(self, record: bytes) -> None:
        fields = _CENTRAL.unpack(record)
        flags, crc, csize, size = fields[2], fields[6], fields[7], fields[8]
        name_len, extra_len, comment_len = fields[9], fields[10], fields[11]

        def check(rest: bytes) -> None:
            name = _decode_name(rest[:name_len], flags)
            c, s = csize, size
            if c == _ZIP64_SENTINEL or s == _ZIP64_SENTINEL:
                s, c = _zip64_sizes(rest[name_len : name_len + extra_len], s, c)
            seen = self._by_name.get(name)
            if seen is None:
                raise self._error(f"the central directory lists {name!r}, which is not in the zip's data")
            if (seen.crc32, seen.compressed_size, seen.size) != (crc, c, s):
                raise self._error(
                    f"the central directory disagrees with entry {name!r}: CRC {crc:08x}, {s:,} bytes ({c:,} "
                    f"compressed) there; CRC {seen.crc32:08x}, {seen.size:,} ({seen.compressed_size:,}) in the data"
                )
            self._central += 1
            self._next_record()

        self._expect(name_len + extra_len + comment_len, check)

    def _on_zip64_eocd_size(self, record: bytes) -> None:
        (size,) = struct.unpack("<Q", record)

        def parse(rest: bytes) -> None:
            if len(rest) >= 28:
                self._zip64_total = struct.unpack_from("<Q", rest, 20)[0]
            self._next_record()

        self._expect(size, parse)

    def _on_eocd(self, record: bytes) -> None:
        _disk, _cd_disk, _disk_entries, total, _cd_size, cd_offset, comment_len = _EOCD.unpack(record)
        listed = self._zip64_total if total == 0xFFFF and self._zip64_total is not None else total
        if not listed == self._central == len(self._entries):
            raise self._error(
                f"the zip's end record counts {listed} entries, its central directory {self._central} and its "
                f"data {len(self._entries)}"
            )
        if cd_offset not in (_ZIP64_SENTINEL, self._central_start):
            raise self._error(
                f"the end record puts the central directory at byte {cd_offset:,}, but it starts at "
                f"byte {self._central_start:,}"
            )

        def done(_comment: bytes) -> None:
            self._done = True

        self._expect(comment_len, done)

    # --- helpers ------------------------------------------------------------------------------------
    def _fallback(self, reason: str) -> None:
        self.abort()
        self.fallback_reason = reason
        self._data = None

    def _where(self) -> str:
        entry = self._entry
        if entry is not None:
            return f"inside entry {entry.name!r} ({entry.size:,} bytes of its data read)"
        if self._central_start is not None:
            return f"in the central directory, after {len(self._entries)} entries"
        return f"after {len(self._entries)} complete entries, before the central directory"

    def _error(self, problem: str) -> ZipVerificationError:
        return ZipVerificationError(f"{self.what}: {problem}")


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")


def _zip64_extra(extra: bytes) -> bytes | None:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 0x0001:
            return extra[i + 4 : i + 4 + size]
        i += 4 + size
    return None


def _zip64_sizes(extra: bytes, size: int, csize: int) -> tuple[int, int]:
    """(size, compressed size) with the 0xFFFFFFFF placeholders read from the zip64 extra field."""
    data = _zip64_extra(extra) or b""
    offset = 0
    if size == _ZIP64_SENTINEL and offset + 8 <= len(data):
        size = struct.unpack_from("<Q", data, offset)[0]
        offset += 8
    if csize == _ZIP64_SENTINEL and offset + 8 <= len(data):
        csize = struct.unpack_from("<Q", data, offset)[0]
    return size, csize
