"""Zips for the verifier's tests: of every shape (stored, deflated, data descriptors, zip64), fed in any chunking,
inline or through reused buffers as the downloader feeds them."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

from airflow_provider_tcia.downloads.verify.hashing import HashWorkers
from airflow_provider_tcia.downloads.verify.zipstream import DESCRIPTOR_SIG, StreamingZipVerifier

FILES = {
    "LICENSE": b"CC BY 3.0\n",
    "00000001.dcm": b"\0" * 128 + b"DICM" + os.urandom(3000),
    "00000002.dcm": b"\0" * 128 + b"DICM" + bytes(range(256)) * 40,
    # A fake data-descriptor signature inside the data must not end a stored entry early.
    "00000003.dcm": b"\0" * 128 + b"DICM" + b"xx" + DESCRIPTOR_SIG + b"\0" * 20 + DESCRIPTOR_SIG + os.urandom(500),
}


def md5_listing(files: dict[str, bytes]) -> bytes:
    rows = ["Filename,MD5Hash"] + [
        f"{name},{hashlib.md5(data).hexdigest()}" for name, data in files.items() if name.endswith(".dcm")
    ]
    return ("\n".join(rows) + "\n").encode()


class _Unseekable(io.RawIOBase):
    """What zipfile writes to when it cannot seek back: sizes go in data descriptors after each entry."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)


def make_zip(files: dict[str, bytes], *, method: int = zipfile.ZIP_STORED, streamed: bool = False, zip64=False):
    if streamed:
        out = _Unseekable()
        with zipfile.ZipFile(out, "w", compression=method) as zf:
            for name, data in files.items():
                with zf.open(name, "w", force_zip64=zip64) as fh:
                    fh.write(data)
        return bytes(out.data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in files.items():
            if zip64:
                with zf.open(name, "w", force_zip64=True) as fh:
                    fh.write(data)
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def feed(data: bytes, size: int, **kwargs) -> StreamingZipVerifier:
    verifier = StreamingZipVerifier(what="getImage(SeriesInstanceUID='1.2.3')", **kwargs)
    for i in range(0, len(data), size):
        verifier.feed(data[i : i + size])
    return verifier


SHAPES = {
    "stored": {},
    "deflated": {"method": zipfile.ZIP_DEFLATED},
    "stored+descriptor": {"streamed": True},
    "deflated+descriptor": {"method": zipfile.ZIP_DEFLATED, "streamed": True},
    "stored+zip64": {"zip64": True},
    "stored+descriptor+zip64": {"streamed": True, "zip64": True},
    "deflated+descriptor+zip64": {"method": zipfile.ZIP_DEFLATED, "streamed": True, "zip64": True},
}


class MemorySink:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def open(self, name: str):
        sink = self

        class _File(io.BytesIO):
            def close(self) -> None:
                sink.files[name] = self.getvalue()
                super().close()

        return _File()


# --- for hashing on worker threads (one series at a time) ---------------------------------------------
BIG_FILES = {
    "LICENSE": b"CC BY 3.0\n",
    **{f"{i:08d}.dcm": b"\0" * 128 + b"DICM" + os.urandom(HashWorkers.MIN_ENTRY + 7919 * i) for i in range(1, 6)},
    "00000006.dcm": b"\0" * 128 + b"DICM" + os.urandom(900),  # small: hashed inline
}


def central_offset(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.start_dir


def feed_reusing_buffers(data: bytes, size: int, workers: HashWorkers, **kwargs) -> StreamingZipVerifier:
    """Feed ``data`` as the downloader does: through two reused buffers, each given back only when the workers
    say so — and scribbled over right then, so a slice still in use would show."""
    import queue

    free: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(2):
        free.put(bytearray(size))

    def give_back(buffer: bytearray) -> None:
        buffer[:] = b"\xee" * len(buffer)
        free.put(buffer)

    verifier = StreamingZipVerifier(what="getImage(SeriesInstanceUID='1.2.3')", hash_workers=workers, **kwargs)
    for i in range(0, len(data), size):
        buffer = free.get(timeout=10)
        piece = data[i : i + size]
        buffer[: len(piece)] = piece
        verifier.feed(memoryview(buffer)[: len(piece)])
        workers.after(lambda b=buffer: give_back(b))
    return verifier


def covered_report(data: bytes, workers: HashWorkers):
    return feed_reusing_buffers(data, 65536, workers, crc_covered_by_md5=True).finish()
