"""The manifest written beside each downloaded series: what was verified, and the marker of a finished series.

``<SeriesInstanceUID>.manifest.json`` sits next to ``<SeriesInstanceUID>.zip`` (layout ``zip``) or the
``<SeriesInstanceUID>/`` folder (layout ``extract``). It is written last, atomically, once the data is in
place and what is stored was compared with what was verified (:func:`stored_listing`: the size of the zip, or
of every file of the folder). It records that listing — sizes and each object's stamp (the ETag or checksum an
object store reports, else the modification time) — so a series counts as present only when its manifest
exists and what is stored still has those sizes and stamps (:func:`check_present`). A re-run skips such a
series; one whose data was changed, cut or removed since is downloaded again, and its manifest, which no longer
vouches for it, is removed first.

Manifests written before stamps were recorded have sizes only; those are compared.

It also records which revision of the series was downloaded, as the server reported it (``server_revision``:
``date_released``, ``submitted`` — MaxSubmissionTimestamp or TimeStamp — and ``image_count``; see
:mod:`airflow_provider_tcia.revisions`), so that a later run can tell a copy of an older revision from the
current one and download the revision again. Manifests without it count as the current revision.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.api.redact import redact_url
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.downloads.verify.zipstream import ZipReport

MANIFEST_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"


def build_manifest(
    *,
    series_instance_uid: str,
    layout: str,
    path: ObjectStoragePath,
    report: ZipReport,
    source_url: str,
    api: str,
    attempts: int,
    seconds: float,
    patient_id: str | None = None,
    study_instance_uid: str | None = None,
    stored: dict[str, dict[str, Any]] | None = None,
    server_revision: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of a verified series; ``stored`` is :func:`stored_listing` of its data, once in place;
    ``server_revision`` the :meth:`~airflow_provider_tcia.revisions.Revision.record` of what was downloaded."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "series_instance_uid": series_instance_uid,
        "patient_id": patient_id,
        "study_instance_uid": study_instance_uid,
        "layout": layout,
        "path": str(path),
        "bytes": report.zip_bytes,
        "uncompressed_bytes": report.uncompressed_bytes,
        "files": len(report.dicom_entries),
        "verified": True,
        "checks": list(report.checks),
        "md5_source": "md5hashes.csv" if report.md5_listing is not None else "computed",
        # A CRC-32 left to md5hashes.csv (not computed) is not recorded as if it were: null.
        "entries": [
            {"name": e.name, "size": e.size, "crc32": f"{e.crc32:08x}" if e.crc_checked else None, "md5": e.md5}
            for e in report.entries
        ],
        "stored": stored or {},
        "source_url": redact_url(source_url, drop=True),
        "api": api,
        "server_revision": server_revision,
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "attempts": attempts,
    }


#: Keys of an object's info, in order of preference, that change whenever the object is rewritten: an object
#: store's ETag or checksum (S3, GCS, Azure), else its modification time (local files, and the rest).
STAMP_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "crc32c",
    "content_md5",
    "generation",
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
)


def stamp_of(info: dict[str, Any]) -> str | None:
    """What changes when a stored object is rewritten, from its fsspec info (``"mtime=1767…"``), or None."""
    for key in STAMP_KEYS:
        value = info.get(key)
        if value not in (None, ""):
            return f"{key}={value}"
    return None


def stored_listing(data_path: ObjectStoragePath, layout: str) -> dict[str, dict[str, Any]]:
    """What is stored at ``data_path``: name → ``{"size", "stamp"}`` — the zip itself (by its file name), or
    every file under the folder (by its name inside it). One ``stat`` or one listing: no data is read."""
    fs = data_path.fs
    invalidate = getattr(fs, "invalidate_cache", None)
    if invalidate is not None:  # (an object store's listing cache must not answer for what was just written)
        invalidate(data_path.path)
    if layout == "zip":
        try:
            info = fs.info(data_path.path)
        except FileNotFoundError:
            return {}
        if info.get("type") == "directory":
            return {}
        return {data_path.name: {"size": info.get("size"), "stamp": stamp_of(info)}}
    try:
        listing = fs.find(data_path.path, detail=True)
    except FileNotFoundError:
        listing = {}
    root = data_path.path.rstrip("/") + "/"
    return {
        name[len(root) :]: {"size": info.get("size"), "stamp": stamp_of(info)}
        for name, info in listing.items()
        if name.startswith(root) and info.get("type") != "directory"
    }


def expected_listing(manifest: dict[str, Any], data_path: ObjectStoragePath, layout: str) -> dict[str, dict]:
    """What a manifest says is stored: its ``stored`` listing, or (older manifests) the sizes it recorded."""
    stored = manifest.get("stored")
    if isinstance(stored, dict) and stored:
        return stored
    if layout == "zip":
        return {data_path.name: {"size": manifest.get("bytes"), "stamp": None}}
    return {
        e["name"]: {"size": e.get("size"), "stamp": None}
        for e in manifest.get("entries", [])
        if isinstance(e, dict) and not str(e.get("name", "/")).endswith("/")
    }


def listing_mismatch(expected: dict[str, dict], found: dict[str, dict], where: str) -> str | None:
    """Why ``found`` (a :func:`stored_listing`) is not what ``expected`` says, or None if it is."""
    for name, want in expected.items():
        have = found.get(name)
        if have is None:
            return f"{name} is missing" if name == where else f"{name} is missing from {where}/"
        if have.get("size") != want.get("size"):
            return f"{name} has {_count(have.get('size'))} bytes, its manifest says {_count(want.get('size'))}"
        if want.get("stamp") is not None and have.get("stamp") != want.get("stamp"):
            return f"{name} was rewritten after it was verified (now {have.get('stamp')}, then {want.get('stamp')})"
    return None


@dataclass
class Presence:
    """Whether a series is already at the destination, and why not if it is not."""

    manifest: dict[str, Any] | None
    reason: str
    stale: bool = False
    """A manifest of ours is there but the data no longer matches it: it must not vouch for the data."""

    @property
    def present(self) -> bool:
        return self.manifest is not None


def check_present(manifest_path: ObjectStoragePath, data_path: ObjectStoragePath, layout: str) -> Presence:
    """Whether the series at ``data_path`` was downloaded and verified before and is still as it was then:
    every object the manifest lists is there with the size and the stamp it recorded (:func:`stored_listing`)."""
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        return Presence(None, "no manifest")
    except ValueError as err:
        return Presence(None, f"its manifest is not JSON ({err})")
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        return Presence(None, "its manifest is of an unknown version")
    if manifest.get("layout") != layout:
        return Presence(None, f"it was downloaded with layout {manifest.get('layout')!r}")
    if not manifest.get("verified"):
        return Presence(None, "its manifest does not say verified")
    expected = expected_listing(manifest, data_path, layout)
    problem = listing_mismatch(expected, stored_listing(data_path, layout), data_path.name)
    if problem is not None:
        return Presence(None, problem, stale=True)
    return Presence(manifest, "present and verified")


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else repr(value)
