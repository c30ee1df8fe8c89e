"""The layout of what lands at a destination, and how to read it back.

A series is stored as ``<folder>/<SeriesInstanceUID>.zip`` (layout ``zip``) or as the files of its zip under
``<folder>/<SeriesInstanceUID>/`` (layout ``extract``), its manifest ``<SeriesInstanceUID>.manifest.json``
beside it (:mod:`~airflow_provider_tcia.downloads.manifest`); ``<folder>`` is the destination, or
``<destination>/<PatientID>/<StudyInstanceUID>`` when nested (:class:`DownloadPlan`). A single image is stored
as ``<destination>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (:func:`image_path`).

For whoever reads the downloads (a processing DAG): :func:`verified_series` finds the series under a
destination that are there and verified, and :func:`dicom_members` opens the DICOM files of one, whichever
layout it was stored in — so a reader needs to know neither the manifests, nor the layouts, nor the names of
temporary objects, nor which files of a TCIA zip are not DICOM.
"""

from __future__ import annotations

import contextlib
import functools
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from airflow_provider_tcia.compat import ObjectStoragePath
from airflow_provider_tcia.downloads.inputs import SeriesRef, check_segment
from airflow_provider_tcia.downloads.manifest import MANIFEST_SUFFIX, check_present
from airflow_provider_tcia.downloads.verify.contents import is_dicom_name
from airflow_provider_tcia.storage import as_path, is_partial

LAYOUTS = ("zip", "extract")


def data_name(series_instance_uid: str, layout: str) -> str:
    """The name a series' data is stored under in its folder: ``<SeriesInstanceUID>.zip`` or the folder
    ``<SeriesInstanceUID>``."""
    return f"{series_instance_uid}.zip" if layout == "zip" else series_instance_uid


@dataclass(frozen=True)
class DownloadPlan:
    """Where each series goes.

    :param destination: the root folder (any object storage).
    :param layout: ``zip`` (``<folder>/<SeriesInstanceUID>.zip``) or ``extract``
        (``<folder>/<SeriesInstanceUID>/<files>``).
    :param nested: ``<folder>`` is ``<destination>/<PatientID>/<StudyInstanceUID>`` instead of the root.
    """

    destination: ObjectStoragePath
    layout: str = "zip"
    nested: bool = False

    def folder(self, ref: SeriesRef) -> ObjectStoragePath:
        if not self.nested:
            return self.destination
        patient = check_segment(ref.patient_id, f"PatientID of series {ref.series_instance_uid}")
        study = check_segment(ref.study_instance_uid, f"StudyInstanceUID of series {ref.series_instance_uid}")
        return self.destination / patient / study

    def data_path(self, ref: SeriesRef) -> ObjectStoragePath:
        return self.folder(ref) / data_name(ref.series_instance_uid, self.layout)

    def manifest_path(self, ref: SeriesRef) -> ObjectStoragePath:
        return self.folder(ref) / f"{ref.series_instance_uid}{MANIFEST_SUFFIX}"


def image_path(destination: ObjectStoragePath, series_instance_uid: str, sop_instance_uid: str) -> ObjectStoragePath:
    return destination / series_instance_uid / f"{sop_instance_uid}.dcm"


def verified_series(root: str | ObjectStoragePath) -> list[ObjectStoragePath]:
    """Where every series downloaded and verified below ``root`` is stored (its ``.zip`` or its folder), in
    either layout, nested or not, sorted.

    A series counts only if its manifest is there and still vouches for the data beside it
    (:func:`~airflow_provider_tcia.downloads.manifest.check_present`, as a re-run's skip decides): what is
    stored is re-checked against the listing the manifest recorded — one ``stat`` of a zip or one listing of a
    folder per series, no data read — so a series cut, rewritten or removed since it was verified is left out.
    Temporary objects and anything under a hidden folder are not looked at.

    :param root: a destination of the download operators (a URL or an ObjectStoragePath).
    """
    base = as_path(root)
    if not base.exists():
        return []
    found = []
    for manifest_path in base.rglob(f"*{MANIFEST_SUFFIX}"):
        if _hidden(manifest_path, base):
            continue
        uid = manifest_path.name[: -len(MANIFEST_SUFFIX)]
        for layout in LAYOUTS:
            data_path = manifest_path.parent / data_name(uid, layout)
            if check_present(manifest_path, data_path, layout).present:
                found.append(data_path)
                break
    return sorted(found, key=str)


@contextlib.contextmanager
def dicom_members(data_path: str | ObjectStoragePath) -> Iterator[list[tuple[str, Callable[[], IO[bytes]]]]]:
    """The DICOM files of a stored series as ``(name, opener)`` pairs, sorted by name; ``opener()`` opens one
    for binary reading, inside the ``with`` block.

    :param data_path: where the series is stored (as :func:`verified_series` or the download operator's
        ``path`` says): a ``.zip`` (layout ``zip``: read through the store, never copied to local disk) or a
        folder (layout ``extract``: names are relative to it; hidden and temporary objects are skipped). The
        sidecars of a TCIA zip (LICENSE, ``md5hashes.csv``:
        :data:`~airflow_provider_tcia.downloads.verify.contents.SIDECARS`, the list the verifier goes by) are
        never listed.
    """
    path = as_path(data_path)
    if path.suffix.lower() == ".zip":
        with path.open("rb") as raw, zipfile.ZipFile(raw) as archive:
            names = sorted(n for n in archive.namelist() if is_dicom_name(n))
            yield [(n, functools.partial(archive.open, n)) for n in names]
        return
    files = sorted((p for p in path.rglob("*") if is_dicom_name(p.name) and not _hidden(p, path)), key=str)
    yield [(_relative(p, path), functools.partial(p.open, "rb")) for p in files if p.is_file()]


def _relative(path: ObjectStoragePath, base: ObjectStoragePath) -> str:
    return str(path.path)[len(str(base.path)) :].lstrip("/")


def _hidden(path: ObjectStoragePath, base: ObjectStoragePath) -> bool:
    """Temporary (partial) objects and anything under a hidden folder are not data yet."""
    return is_partial(path) or any(part.startswith(".") for part in _relative(path, base).split("/") if part)
