"""Writing to object storage so that no partial object is ever visible at the final path.

Data is written under a hidden temporary name beside the destination (``.<name>.partial-<id>``) and moved
into place only when the writer finished without error; on error the temporary object is removed. On
``file://`` the move is an atomic rename; on object stores it is a server-side copy then delete, so readers
of the final key see the old object or the whole new one, never a prefix of it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import IO

from airflow_provider_tcia.compat import ObjectStoragePath

PARTIAL_MARK = ".partial-"
#: ObjectStoragePath protocols that are this machine's file system (where a rename is atomic).
LOCAL_PROTOCOLS = ("file", "local", "")
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
        import os

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
