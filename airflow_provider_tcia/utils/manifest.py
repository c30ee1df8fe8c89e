"""The manifest written beside each downloaded series: what was verified, and the marker of a finished series.

``<SeriesInstanceUID>.manifest.json`` sits next to ``<SeriesInstanceUID>.zip`` (layout ``zip``) or the
``<SeriesInstanceUID>/`` folder (layout ``extract``). It is written last, atomically, after the data is in
place, so a series counts as present only when its manifest exists and the data still matches it (same zip
size; every listed file there with its size). A re-run skips such a series.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.api.redact import redact_url
from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.utils.zipverify import ZipReport

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
) -> dict[str, Any]:
    """The manifest of a verified series."""
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
        "entries": [{"name": e.name, "size": e.size, "crc32": f"{e.crc32:08x}", "md5": e.md5} for e in report.entries],
        "source_url": redact_url(source_url, drop=True),
        "api": api,
        "downloaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "attempts": attempts,
    }


@dataclass
class Presence:
    """Whether a series is already at the destination, and why not if it is not."""

    manifest: dict[str, Any] | None
    reason: str

    @property
    def present(self) -> bool:
        return self.manifest is not None


def check_present(manifest_path: ObjectStoragePath, data_path: ObjectStoragePath, layout: str) -> Presence:
    """Whether the series at ``data_path`` was downloaded and verified before and is still intact."""
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
    if layout == "zip":
        try:
            size = data_path.stat().st_size
        except FileNotFoundError:
            return Presence(None, f"{data_path.name} is missing")
        if size != manifest.get("bytes"):
            return Presence(None, f"{data_path.name} has {size:,} bytes, its manifest says {manifest.get('bytes'):,}")
        return Presence(manifest, "present and verified")
    try:
        listing = data_path.fs.find(data_path.path, detail=True)
    except FileNotFoundError:
        listing = {}
    root = data_path.path.rstrip("/") + "/"
    sizes = {name[len(root) :]: info.get("size") for name, info in listing.items() if name.startswith(root)}
    for entry in manifest.get("entries", []):
        if entry["name"].endswith("/"):
            continue
        if entry["name"] not in sizes:
            return Presence(None, f"{entry['name']} is missing from {data_path.name}/")
        if sizes[entry["name"]] != entry["size"]:
            return Presence(
                None, f"{entry['name']} has {sizes[entry['name']]} bytes, its manifest says {entry['size']}"
            )
    return Presence(manifest, "present and verified")
