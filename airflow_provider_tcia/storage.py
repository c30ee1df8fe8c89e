"""Writing to object storage so that no partial object is ever visible at the final path.

Data is written under a hidden temporary name beside the destination (``.<name>.partial-<id>``) and moved
into place only when the writer finished without error; on error the temporary object is removed. On
``file://`` the move is an atomic rename; on object stores it is a server-side copy then delete, so readers
of the final key see the old object or the whole new one, never a prefix of it.

The primitives, in one place: :func:`atomic_writer` (one object), :func:`publish` (a finished temporary object
or folder moved into place), :func:`replace_tree` and :func:`publish_tree` (a folder replacing another; object by
object on object stores), :func:`open_writer` and :class:`FolderSink` (streamed writes: a plain file locally, a
multipart upload in small parts elsewhere), :func:`remove_path` (a file, object or folder, if it exists).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import IO, Any

from airflow_provider_tcia.compat import ObjectStoragePath

PARTIAL_MARK = ".partial-"
#: ObjectStoragePath protocols that are this machine's file system (where a rename is atomic).
LOCAL_PROTOCOLS = ("file", "local", "")
#: Part size of uploads to object stores: the least S3 accepts, so each upload buffers little.
UPLOAD_BLOCK = 5 << 20
#: Path suffixes that name a data format (the query operators write these; the download operator reads them).
SUFFIX_FORMATS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".xml": "xml",
    ".html": "html",
    ".htm": "html",
    ".parquet": "parquet",
}


def suffix_format(name: str) -> tuple[str, str | None]:
    """(suffix, the format it names or None) of a file name: ``series.CSV`` → ``(".csv", "csv")``."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix, SUFFIX_FORMATS.get(suffix)


def as_path(value: str | ObjectStoragePath) -> ObjectStoragePath:
    """An ObjectStoragePath from a URL (``file:///…``, ``s3://conn_id@bucket/key``) or a path; a clear
    error for anything else."""
    if isinstance(value, ObjectStoragePath):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an object storage path must be a non-empty URL or path, not {value!r}")
    text = value.strip()
    if "://" not in text:
        if not text.startswith("/"):
            raise ValueError(f"{text!r} is relative: give an absolute path or a URL such as file:///data/out.json")
        text = "file://" + text
    try:
        path = ObjectStoragePath(text)
        path.fs  # noqa: B018 - resolve the filesystem now (Airflow 2.11 does it lazily, at the first write)
    except (ValueError, ImportError) as err:  # worded differently by each Airflow and universal-pathlib
        scheme = text.split("://", 1)[0]
        raise ValueError(f"unsupported filesystem {scheme!r} in {text!r} (is its provider installed?): {err}") from None
    return path


def temporary_sibling(path: ObjectStoragePath) -> ObjectStoragePath:
    return path.parent / f".{path.name}{PARTIAL_MARK}{uuid.uuid4().hex[:12]}"


def is_partial(path: ObjectStoragePath) -> bool:
    return path.name.startswith(".") and PARTIAL_MARK in path.name


def publish(tmp: ObjectStoragePath, final: ObjectStoragePath) -> None:
    """Move a finished temporary object or directory tree into place."""
    if final.protocol in LOCAL_PROTOCOLS:
        # Same filesystem: os.replace is atomic for files and, for directories, when final is absent.
        os.replace(tmp.path, final.path)
        return
    fs = final.fs
    fs.mv(tmp.path, final.path, recursive=tmp.is_dir())


@contextlib.contextmanager
def atomic_writer(path: ObjectStoragePath, mode: str = "wb", *, lineage: bool = True) -> Iterator[IO]:
    """Open ``path`` for writing; the object appears at ``path`` only if the block completes.

    :param lineage: through ``ObjectStoragePath.open``, whose file reports the write to Airflow's hook lineage
        collector. ``False`` for a sidecar (a download's manifest) on a local path: a plain file, which also
        spares the task the collector's first import (~1 s of CPU per task process).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_writer opens for writing only, not {mode!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        opened = open(tmp.path, mode) if not lineage and tmp.protocol in LOCAL_PROTOCOLS else tmp.open(mode)  # noqa: SIM115
        with opened as fh:
            yield fh
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            if tmp.exists():
                tmp.unlink()
        raise


class FolderSink:
    """Writes each extracted entry under a (temporary) folder on any object storage."""

    def __init__(self, root: ObjectStoragePath) -> None:
        self.root = root
        self.local = root.protocol in LOCAL_PROTOCOLS
        self._folders: set[str] = set()
        if self.local:
            os.makedirs(root.path, exist_ok=True)
            self._folders.add(os.path.normpath(root.path))

    def open(self, name: str) -> IO[bytes]:
        if self.local:
            path = os.path.join(self.root.path, *name.split("/"))
            folder = os.path.normpath(os.path.dirname(path))
            if folder not in self._folders:  # (a TCIA zip is flat: its files go straight into the root)
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            return open(path, "wb")
        return (self.root / name).open("wb", block_size=UPLOAD_BLOCK)


@contextlib.contextmanager
def open_writer(path: ObjectStoragePath) -> Iterator[IO[bytes]]:
    """Open ``path`` for writing: a plain file on ``file://``, a multipart upload in small parts elsewhere."""
    if path.protocol in LOCAL_PROTOCOLS:
        os.makedirs(os.path.dirname(path.path), exist_ok=True)
        with open(path.path, "wb") as fh:
            yield fh
    else:
        with path.open("wb", block_size=UPLOAD_BLOCK) as fh:
            yield fh


def replace_tree(tmp: ObjectStoragePath, final: ObjectStoragePath) -> None:
    """Move a finished temporary folder into place, replacing a folder already at ``final`` whole: by a rename
    on local paths, object by object elsewhere (:func:`publish_tree`).

    On Linux the two folders are swapped in one atomic step (``renameat2(RENAME_EXCHANGE)``) and the old one,
    now at the temporary name, is removed after: a reader of ``final`` sees the old folder or the new one,
    never neither and never a mix. Where the swap is not available (another OS, a file system without it) the
    old folder is renamed aside first, then the new one renamed in: for that instant ``final`` is absent. Object
    stores have no folder rename at all: the old objects are removed, then the new ones copied."""
    if final.protocol in LOCAL_PROTOCOLS and final.exists() and _exchange(tmp.path, final.path):
        remove_path(tmp)  # (the old folder, swapped to the temporary name)
        return
    if final.exists():
        old = temporary_sibling(final)
        if final.protocol in LOCAL_PROTOCOLS:
            os.replace(final.path, old.path)
        else:
            old = final
        remove_path(old)
    if final.protocol not in LOCAL_PROTOCOLS:
        publish_tree(tmp, final)
    else:
        publish(tmp, final)


@functools.cache
def _renameat2() -> object | None:
    libc = ctypes.CDLL(None, use_errno=True)
    return getattr(libc, "renameat2", None)  # (glibc 2.28+; None elsewhere)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
#: What renameat2 answers where the swap cannot be done (the kernel or the file system lacks it).
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


def _exchange(a: str, b: str) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where that cannot be done."""
    call: Any = _renameat2()
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), b)


def publish_tree(tmp: ObjectStoragePath, final: ObjectStoragePath) -> None:
    """Copy every object under ``tmp`` to the same name under ``final``, then delete ``tmp``. Object stores
    have no atomic folder rename: if a copy fails, the objects already copied are deleted again."""
    fs = tmp.fs
    source = tmp.path.rstrip("/")
    target = final.path.rstrip("/")
    copied: list[str] = []
    try:
        for name in fs.find(source):
            destination = target + name[len(source) :]
            fs.copy(name, destination)
            copied.append(destination)
    except BaseException:
        for name in copied:
            with contextlib.suppress(Exception):
                fs.rm_file(name)
        raise
    fs.rm(source, recursive=True)


def remove_path(path: ObjectStoragePath) -> None:
    """Remove a file, an object, or a folder / prefix with everything under it, if it exists."""
    try:
        if path.protocol in LOCAL_PROTOCOLS:
            if os.path.isdir(path.path):
                shutil.rmtree(path.path)
            elif os.path.lexists(path.path):
                os.remove(path.path)
            return
        if path.exists():
            path.fs.rm(path.path, recursive=True)
    except FileNotFoundError:
        pass
