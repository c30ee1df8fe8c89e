"""The emulator's data model: collections, patients, studies, series and their instances.

Knows nothing about HTTP or about how either API generation spells a row (that is :mod:`.views`); it answers
questions such as "the series of this collection with this modality, released after that day" with model
objects, and it changes only through :meth:`Dataset.publish`, :meth:`Dataset.revise`,
:meth:`Dataset.add_synthetic_series` and :meth:`Dataset.reset`.

The scaled collection (``SCALE-100K``, 100,000 series) is generated from an index on demand and never
materialised: see :class:`ScaledCollection`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import re
import threading
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from airflow_provider_tcia.emulator.dicom import SeriesTemplate, dicom_date

CC_BY_3 = "Creative Commons Attribution 3.0 Unported License"
CC_BY_3_URI = "http://creativecommons.org/licenses/by/3.0/"
CC_BY_4 = "Creative Commons Attribution 4.0 International License"
CC_BY_4_URI = "https://creativecommons.org/licenses/by/4.0/"
#: The root of UIDs the emulator invents (inside TCIA's own root, like the real identifiers).
EMULATOR_UID_ROOT = "1.3.6.1.4.1.14519.5.2.1.9999"


def hashed_uid(prefix: str, *parts: object) -> str:
    """A deterministic UID: ``prefix`` plus a number derived from ``parts`` (64 characters at most)."""
    digits = str(int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest(), "big"))
    return prefix + digits[: max(8, min(30, 64 - len(prefix)))]


@dataclass(frozen=True)
class Collection:
    name: str
    site: str = ""
    license_name: str = CC_BY_3
    license_uri: str = CC_BY_3_URI
    doi: str = ""

    @property
    def commercial_use(self) -> bool:
        """Whether its licence allows commercial use (NBIA's licence ``commercialUse``; a CC "NonCommercial"
        licence does not). NBIA marks the series of a collection that does not ``excludeCommercial=YES``."""
        return "noncommercial" not in self.license_name.replace("-", "").lower() and "/by-nc" not in self.license_uri

    @property
    def license_text(self) -> str:
        return (
            f"The images of {self.name} are provided by The Cancer Imaging Archive under the "
            f"{self.license_name} ({self.license_uri}).\n"
            + (f"Please cite the data set: {self.doi}\n" if self.doi else "")
            + "Served by the airflow-provider-tcia emulator: synthetic pixel data, real identifiers.\n"
        )


@dataclass(frozen=True)
class Patient:
    collection: str
    patient_id: str
    patient_name: str | None = None
    sex: str | None = None
    birth_date: dt.date | None = None
    ethnic_group: str | None = None
    phantom: str = "NO"
    species_code: str = "337915000"
    species_description: str = "Homo sapiens"


@dataclass(frozen=True)
class Study:
    collection: str
    patient_id: str
    study_instance_uid: str
    study_date: dt.date | None = None
    description: str | None = None
    patient_age: str | None = None
    study_id: str | None = None
    admitting_diagnoses: str | None = None
    event_type: str | None = None
    """LongitudinalTemporalEventType: the clinical event its time point counts from (NBIA's TimePointCriteria)."""
    days_from_event: int | None = None
    """LongitudinalTemporalOffsetFromEvent: days from that event (negative before it)."""


@dataclass(frozen=True)
class Series:
    collection: str
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    released: dt.date
    """When TCIA released it: what ``Date``/``fromDate`` queries select on."""
    image_count: int
    body_part: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    software: str | None = None
    protocol: str | None = None
    description: str | None = None
    series_number: int | None = None
    series_date: dt.date | None = None
    submitted: dt.date | None = None
    """The last submission (NBIA's ``TimeStamp``/``MaxSubmissionTimestamp``); defaults to ``released``."""
    annotations_flag: bool | None = None
    third_party: str = "NO"
    rows: int = 64
    columns: int = 64
    variants: int = 0
    """How many distinct frames the files cycle through (0: one per instance)."""
    phantom_seed: str | None = None
    """What the anatomy in its pixels is drawn from (default: its UID, so that series differ)."""
    known_sop_uids: tuple[str, ...] = ()
    """Real SOPInstanceUIDs of the first instances; the rest are derived."""
    legacy_file_base: int = 1
    """The seed API names files ``<n>.dcm``; the first instance is ``<legacy_file_base>.dcm``."""
    revision: int = 0
    """How many times :meth:`Dataset.revise` republished it (each revision has other pixels)."""

    def sop_instance_uid(self, index: int) -> str:
        if index < len(self.known_sop_uids):
            return self.known_sop_uids[index]
        if len(self.series_instance_uid) <= 56:
            return f"{self.series_instance_uid}.{index + 1}"
        prefix = self.series_instance_uid.rsplit(".", 1)[0] + "."
        return hashed_uid(prefix, self.series_instance_uid, index)

    def instances(self) -> Iterator[Instance]:
        for index in range(self.image_count):
            yield Instance(self, index)

    def instance(self, sop_instance_uid: str) -> Instance | None:
        for instance in self.instances():
            if instance.sop_instance_uid == sop_instance_uid:
                return instance
        return None


@dataclass(frozen=True)
class Instance:
    series: Series
    index: int

    @property
    def sop_instance_uid(self) -> str:
        return self.series.sop_instance_uid(self.index)

    @property
    def instance_number(self) -> int:
        return self.index + 1

    @property
    def legacy_file_name(self) -> str:
        return f"{self.series.legacy_file_base + self.index}.dcm"


class InstanceDigests:
    """The MD5 and CRC-32 of each instance file of a series, by instance index, packed: 16 + 4 bytes an
    instance (a 2,045-file series holds 40 KiB). NBIA keeps each image's MD5 in its database
    (getMD5HashForImage reads it) rather than hashing on every request; the emulator does the same."""

    __slots__ = ("_crcs", "_md5s")

    def __init__(self, md5s: bytes, crcs: array) -> None:
        self._md5s = md5s
        self._crcs = crcs

    def __len__(self) -> int:
        return len(self._crcs)

    def md5_hex(self, index: int) -> str:
        return self._md5s[16 * index : 16 * index + 16].hex()

    def crc32(self, index: int) -> int:
        return self._crcs[index]


#: Series with more bytes than this have their digests computed on two threads (hashlib and zlib release
#: the GIL on large buffers).
_PARALLEL_DIGESTS = 32 << 20


@dataclass(frozen=True)
class StudySummary:
    """A study with its patient and how many series it holds (what a patient-study row needs)."""

    study: Study
    patient: Patient
    series_count: int


@dataclass(frozen=True)
class Since:
    """A release-date bound: strictly after ``day`` (the seed, NBIA v1) or on or after it (NBIA v4)."""

    day: dt.date
    inclusive: bool = False

    def admits(self, released: dt.date) -> bool:
        return released >= self.day if self.inclusive else released > self.day


@dataclass
class Catalog:
    """The content a dataset starts from (see :mod:`.catalog`)."""

    collections: list[Collection] = field(default_factory=list)
    patients: list[Patient] = field(default_factory=list)
    studies: list[Study] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    shared_lists: dict[str, list[str]] = field(default_factory=dict)
    scaled: bool = False


# --- the scaled collection ------------------------------------------------------------------------------


class ScaledCollection:
    """``SCALE-100K``: 10,000 patients x 2 studies x 5 series = 100,000 series, made from their index.

    Nothing is stored: series ``i`` belongs to study ``i // 5`` of patient ``i // 10``; its modality,
    body part, manufacturer and image count follow from the index. Every identifier has a fixed width, so
    the DICOM file sizes depend only on those choices and are computed once per combination.
    """

    name = "SCALE-100K"
    patients_count = 10_000
    studies_per_patient = 2
    series_per_study = 5
    series_count = patients_count * studies_per_patient * series_per_study
    #: The first series in which every (modality, body part, maker) combination has occurred.
    representatives = 40
    _MODALITIES = ("CT", "CT", "PT", "MR", "CR")
    _MAKERS = (
        ("SIEMENS", "SOMATOM Definition AS"),
        ("GE MEDICAL SYSTEMS", "LightSpeed VCT"),
        ("Philips", "Gemini TF"),
        ("SIEMENS", "Avanto"),
        ("GE MEDICAL SYSTEMS", "Thunder Platform"),
    )
    _BODY_PARTS = ("CHEST", "ABDOMEN", "HEADNECK", "BRAIN")
    _STUDY_ROOT = f"{EMULATOR_UID_ROOT}.1."
    _SERIES_ROOT = f"{EMULATOR_UID_ROOT}.2."
    _OFFSET = 1_000_000
    _SERIES_RE = re.compile(re.escape(_SERIES_ROOT) + r"(1\d{6})")
    _STUDY_RE = re.compile(re.escape(_STUDY_ROOT) + r"(1\d{6})")
    _PATIENT_RE = re.compile(r"SCALE-(\d{5})")

    collection = Collection(name, site="EMULATOR", license_name=CC_BY_4, license_uri=CC_BY_4_URI)

    def __init__(self) -> None:
        self._sizes: dict[tuple[int, int, int], int] = {}
        self._lock = threading.Lock()

    def patient_at(self, p: int) -> Patient:
        pid = f"SCALE-{p:05d}"
        return Patient(self.name, pid, pid, "F" if p % 2 else "M")

    def study_at(self, j: int) -> Study:
        p = j // self.studies_per_patient
        return Study(
            self.name,
            f"SCALE-{p:05d}",
            f"{self._STUDY_ROOT}{self._OFFSET + j}",
            dt.date(2010, 1, 1) + dt.timedelta(days=j % 3000),
            f"SCALED STUDY {j % self.studies_per_patient + 1}",
            f"0{40 + p % 50}Y",
        )

    def released(self, p: int) -> dt.date:
        return dt.date(2016, 1, 1) + dt.timedelta(days=p // 10)

    def series_at(self, i: int) -> Series:
        j = i // self.series_per_study
        p = j // self.studies_per_patient
        k = i % self.series_per_study
        study = self.study_at(j)
        maker, model = self._MAKERS[k]
        return Series(
            self.name,
            study.patient_id,
            study.study_instance_uid,
            f"{self._SERIES_ROOT}{self._OFFSET + i}",
            self._MODALITIES[k],
            self.released(p),
            1 + i % 3,
            body_part=self._BODY_PARTS[p % len(self._BODY_PARTS)],
            manufacturer=maker,
            model=model,
            software="1.0",
            protocol=f"SCALED PROTOCOL {k + 1}",
            description=f"SCALED SERIES {k + 1}",
            series_number=k + 1,
            series_date=study.study_date,
            rows=32,
            columns=32,
        )

    def size_key(self, i: int) -> tuple[int, int, int]:
        p = i // (self.series_per_study * self.studies_per_patient)
        return i % self.series_per_study, p % len(self._BODY_PARTS), i % 3

    def find_series(self, uid: str) -> Series | None:
        m = self._SERIES_RE.fullmatch(uid)
        if not m or int(m.group(1)) - self._OFFSET >= self.series_count:
            return None
        return self.series_at(int(m.group(1)) - self._OFFSET)

    def find_study(self, uid: str) -> int | None:
        m = self._STUDY_RE.fullmatch(uid)
        j = int(m.group(1)) - self._OFFSET if m else -1
        return j if 0 <= j < self.patients_count * self.studies_per_patient else None

    def find_patient(self, patient_id: str) -> int | None:
        m = self._PATIENT_RE.fullmatch(patient_id)
        return int(m.group(1)) if m and int(m.group(1)) < self.patients_count else None

    def series_indexes(self, patient_id: str | None, study_uid: str | None) -> Iterable[int]:
        per_patient = self.series_per_study * self.studies_per_patient
        lo, hi = 0, self.series_count
        if patient_id is not None:
            p = self.find_patient(patient_id)
            if p is None:
                return ()
            lo, hi = p * per_patient, (p + 1) * per_patient
        if study_uid is not None:
            j = self.find_study(study_uid)
            if j is None:
                return ()
            lo, hi = max(lo, j * self.series_per_study), min(hi, (j + 1) * self.series_per_study)
        return range(lo, hi)

    def cached_size(self, i: int, compute: Callable[[], int]) -> int:
        key = self.size_key(i)
        size = self._sizes.get(key)
        if size is None:
            size = compute()
            with self._lock:
                self._sizes[key] = size
        return size


# --- the dataset ----------------------------------------------------------------------------------------


class Dataset:
    """The emulator's data: a :class:`Catalog` plus what was published since the last reset.

    Thread-safe: readers iterate over snapshots; writers hold a lock.

    :param catalog_factory: builds the initial content (called again by :meth:`reset`).
    :param today: the release date of what is published without one (defaults to the real today).
    """

    def __init__(self, catalog_factory: Callable[[], Catalog], today: Callable[[], dt.date] | None = None):
        self._factory = catalog_factory
        self._today = today or dt.date.today
        self._lock = threading.RLock()
        self._templates: dict[str, SeriesTemplate] = {}
        self._sizes: dict[str, int] = {}
        self._digests: dict[str, InstanceDigests] = {}
        self.reset()

    # --- state --------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial content: everything published or added since is gone."""
        catalog = self._factory()
        with self._lock:
            self._collections = {c.name: c for c in catalog.collections}
            self._patients = {(p.collection, p.patient_id): p for p in catalog.patients}
            self._studies = {s.study_instance_uid: s for s in catalog.studies}
            self._series = {s.series_instance_uid: s for s in catalog.series}
            self._shared = {name: tuple(uids) for name, uids in catalog.shared_lists.items()}
            self._scaled = ScaledCollection() if catalog.scaled else None
            self._counter = itertools.count(1)
            self._templates.clear()
            self._sizes.clear()
            self._digests.clear()
        self._check()

    def _check(self) -> None:
        for s in self._series.values():
            if s.study_instance_uid not in self._studies:
                raise ValueError(f"series {s.series_instance_uid} has no study {s.study_instance_uid}")
            if (s.collection, s.patient_id) not in self._patients:
                raise ValueError(f"series {s.series_instance_uid} has no patient {s.patient_id}")
        for name, uids in self._shared.items():
            missing = [u for u in uids if u not in self._series]
            if missing:
                raise ValueError(f"shared list {name} names unknown series {missing}")

    @property
    def scaled(self) -> ScaledCollection | None:
        return self._scaled

    # --- lookups --------------------------------------------------------------------------------------
    def collection(self, name: str) -> Collection | None:
        if self._scaled and name == ScaledCollection.name:
            return ScaledCollection.collection
        return self._collections.get(name) or (
            Collection(name) if any(p[0] == name for p in list(self._patients)) else None
        )

    def collection_names(self) -> list[str]:
        names = set(self._collections) | {c for c, _ in list(self._patients)}
        if self._scaled:
            names.add(ScaledCollection.name)
        return sorted(names)

    def patient(self, collection: str, patient_id: str) -> Patient | None:
        if self._scaled and collection == ScaledCollection.name:
            p = self._scaled.find_patient(patient_id)
            return None if p is None else self._scaled.patient_at(p)
        return self._patients.get((collection, patient_id))

    def study(self, uid: str) -> Study | None:
        found = self._studies.get(uid)
        if found is None and self._scaled:
            j = self._scaled.find_study(uid)
            found = None if j is None else self._scaled.study_at(j)
        return found

    def series(self, uid: str) -> Series | None:
        found = self._series.get(uid)
        if found is None and self._scaled:
            found = self._scaled.find_series(uid)
        return found

    def shared_list(self, name: str) -> list[Series] | None:
        uids = self._shared.get(name)
        return None if uids is None else [s for s in map(self.series, uids) if s is not None]

    # --- queries ------------------------------------------------------------------------------------
    def find_series(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        series_instance_uid: str | None = None,
        modality: str | None = None,
        body_part: str | None = None,
        manufacturer: str | None = None,
        model: str | None = None,
        since: Since | None = None,
    ) -> Iterator[Series]:
        """The series matching every given filter, lazily (the scaled collection is never listed whole)."""

        def keep(s: Series) -> bool:
            return (
                (collection is None or s.collection == collection)
                and (patient_id is None or s.patient_id == patient_id)
                and (study_instance_uid is None or s.study_instance_uid == study_instance_uid)
                and (modality is None or s.modality == modality)
                and (body_part is None or s.body_part == body_part)
                and (manufacturer is None or s.manufacturer == manufacturer)
                and (model is None or s.model == model)
                and (since is None or since.admits(s.released))
            )

        if series_instance_uid is not None:
            found = self.series(series_instance_uid)
            if found is not None and keep(found):
                yield found
            return
        for s in list(self._series.values()):
            if keep(s):
                yield s
        scaled = self._scaled
        if scaled and collection in (None, scaled.name):
            for i in scaled.series_indexes(patient_id, study_instance_uid):
                s = scaled.series_at(i)
                if keep(s):
                    yield s

    def distinct(self, attribute: str, **filters: str | None) -> list[str]:
        """The distinct non-empty values of a series ``attribute`` over the matching series, sorted."""
        pool = list(self._series.values())
        scaled = self._scaled
        if scaled and filters.get("collection") in (None, scaled.name):
            # Every combination of the scaled collection occurs within its first series.
            pool += [scaled.series_at(i) for i in range(scaled.representatives)]
        return sorted(
            {
                getattr(s, attribute)
                for s in pool
                if getattr(s, attribute) and all(getattr(s, k) == v for k, v in filters.items() if v is not None)
            }
        )

    def find_patients(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        modality: str | None = None,
        since: Since | None = None,
    ) -> Iterator[Patient]:
        """Patients with at least one series matching ``modality`` and ``since`` (all their series when
        neither is given), in catalog order."""
        with_series: dict[tuple[str, str], None] = {}
        for s in list(self._series.values()):
            if (modality is None or s.modality == modality) and (since is None or since.admits(s.released)):
                with_series[(s.collection, s.patient_id)] = None
        for key, patient in list(self._patients.items()):
            if collection is not None and key[0] != collection:
                continue
            if patient_id is not None and key[1] != patient_id:
                continue
            if key in with_series:
                yield patient
        scaled = self._scaled
        if scaled and collection in (None, scaled.name):
            if patient_id is not None:
                found = scaled.find_patient(patient_id)
                indexes: Iterable[int] = () if found is None else (found,)
            else:
                indexes = range(scaled.patients_count)
            modalities = set(ScaledCollection._MODALITIES)
            for p in indexes:
                if (modality is None or modality in modalities) and (since is None or since.admits(scaled.released(p))):
                    yield scaled.patient_at(p)

    def find_studies(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        since: Since | None = None,
    ) -> Iterator[StudySummary]:
        """Studies (with patient and series count) having a series released within ``since``."""
        counts: dict[str, int] = {}
        admitted: set[str] = set()
        for s in list(self._series.values()):
            counts[s.study_instance_uid] = counts.get(s.study_instance_uid, 0) + 1
            if since is None or since.admits(s.released):
                admitted.add(s.study_instance_uid)
        for uid, study in list(self._studies.items()):
            if (
                (collection is None or study.collection == collection)
                and (patient_id is None or study.patient_id == patient_id)
                and (study_instance_uid is None or uid == study_instance_uid)
                and uid in admitted
            ):
                patient = self._patients[(study.collection, study.patient_id)]
                yield StudySummary(study, patient, counts[uid])
        scaled = self._scaled
        if scaled and collection in (None, scaled.name):
            if study_instance_uid is not None:
                j = scaled.find_study(study_instance_uid)
                studies: Iterable[int] = () if j is None else (j,)
            elif patient_id is not None:
                p = scaled.find_patient(patient_id)
                per = scaled.studies_per_patient
                studies = () if p is None else range(p * per, (p + 1) * per)
            else:
                studies = range(scaled.patients_count * scaled.studies_per_patient)
            for j in studies:
                p = j // scaled.studies_per_patient
                if patient_id is not None and scaled.patient_at(p).patient_id != patient_id:
                    continue
                if since is None or since.admits(scaled.released(p)):
                    yield StudySummary(scaled.study_at(j), scaled.patient_at(p), scaled.series_per_study)

    # --- DICOM content ----------------------------------------------------------------------------------
    def template(self, series: Series) -> SeriesTemplate:
        """The DICOM template of ``series``: every file's tags agree with the model."""
        found = self._templates.get(series.series_instance_uid)
        if found is not None:
            return found
        patient = self.patient(series.collection, series.patient_id)
        study = self.study(series.study_instance_uid)
        attrs = {
            "Collection": series.collection,
            "PatientID": series.patient_id,
            "PatientName": (patient.patient_name if patient else None) or "",
            "PatientSex": (patient.sex if patient else None) or "",
            "PatientBirthDate": dicom_date(patient.birth_date) if patient else "",
            "EthnicGroup": (patient.ethnic_group if patient else None) or "",
            "StudyInstanceUID": series.study_instance_uid,
            "StudyDate": dicom_date(study.study_date) if study else "",
            "StudyDescription": (study.description if study else None) or "",
            "StudyID": (study.study_id if study else None) or "",
            "PatientAge": (study.patient_age if study else None) or "",
            "SeriesInstanceUID": series.series_instance_uid,
            "SeriesDate": dicom_date(series.series_date),
            "SeriesDescription": series.description or "",
            "SeriesNumber": "" if series.series_number is None else str(series.series_number),
            "Modality": series.modality,
            "BodyPartExamined": series.body_part or "",
            "Manufacturer": series.manufacturer or "",
            "ManufacturerModelName": series.model or "",
            "SoftwareVersions": series.software or "",
            "ProtocolName": series.protocol or "",
        }
        template = SeriesTemplate(
            attrs, series.rows, series.columns, series.variants, series.image_count, series.phantom_seed or ""
        )
        if self._scaled is None or series.collection != ScaledCollection.name:
            with self._lock:
                self._templates[series.series_instance_uid] = template
        return template

    def series_size(self, series: Series) -> int:
        """Total bytes of the series' DICOM files (what its zip holds, uncompressed)."""
        uid = series.series_instance_uid
        found = self._sizes.get(uid)
        if found is not None:
            return found

        def compute() -> int:
            template = self.template(series)
            return sum(template.file_size(i.sop_instance_uid, i.instance_number) for i in series.instances())

        scaled = self._scaled
        if scaled and series.collection == scaled.name:
            return scaled.cached_size(int(uid.rsplit(".", 1)[1]) - scaled._OFFSET, compute)
        size = compute()
        with self._lock:
            self._sizes[uid] = size
        return size

    def instance_file(self, instance: Instance) -> list[bytes]:
        """One instance's DICOM file as ``[header, pixel data]``."""
        return self.template(instance.series).file_parts(instance.sop_instance_uid, instance.instance_number)

    def instance_by_sop(self, sop_instance_uid: str) -> Instance | None:
        """The instance with this SOPInstanceUID, in whichever series (getMD5HashForImage names none)."""
        series = self.series(sop_instance_uid.rsplit(".", 1)[0])  # (most instances' UIDs extend their series')
        found = series.instance(sop_instance_uid) if series is not None else None
        if found is not None:
            return found
        for series in list(self._series.values()):
            found = series.instance(sop_instance_uid)
            if found is not None:
                return found
        return None

    def image_md5(self, sop_instance_uid: str) -> str | None:
        """The MD5 of one instance's file, as NBIA stores it (getMD5HashForImage), or None if it is unknown."""
        instance = self.instance_by_sop(sop_instance_uid)
        if instance is None:
            return None
        digests = self.digests(instance.series)
        if digests is not None:
            return digests.md5_hex(instance.index)
        digest = hashlib.md5(usedforsecurity=False)
        for part in self.instance_file(instance):
            digest.update(part)
        return digest.hexdigest()

    def digests(self, series: Series) -> InstanceDigests | None:
        """Every instance's MD5 and CRC-32, computed once per series and remembered (NBIA stores each
        image's MD5); ``None`` for the generated scaled collection, whose tiny files are hashed when served
        so that it stays unmaterialised."""
        uid = series.series_instance_uid
        found = self._digests.get(uid)
        if found is not None:
            return found
        if self._scaled and series.collection == self._scaled.name:
            return None
        found = self._compute_digests(series)
        with self._lock:
            if self._series.get(uid) is series:  # (not reset or replaced meanwhile)
                self._digests[uid] = found
        return found

    def _compute_digests(self, series: Series) -> InstanceDigests:
        count = series.image_count
        md5s = bytearray(16 * count)
        crcs = array("I", bytes(4 * count))

        def run(lo: int, hi: int) -> None:
            for index in range(lo, hi):
                parts = self.instance_file(Instance(series, index))
                digest = hashlib.md5(usedforsecurity=False)
                crc = 0
                for part in parts:
                    digest.update(part)
                    crc = zlib.crc32(part, crc)
                md5s[16 * index : 16 * index + 16] = digest.digest()
                crcs[index] = crc

        self.template(series)  # (built once, before any thread needs it)
        if count > 1 and self.series_size(series) > _PARALLEL_DIGESTS:
            half = count // 2
            with ThreadPoolExecutor(2, thread_name_prefix="emulator-digests") as pool:
                for job in [pool.submit(run, 0, half), pool.submit(run, half, count)]:
                    job.result()
        else:
            run(0, count)
        return InstanceDigests(bytes(md5s), crcs)

    # --- changes --------------------------------------------------------------------------------------
    def publish(
        self,
        collection: str,
        *,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        series_count: int = 1,
        modality: str = "CT",
        body_part: str = "CHEST",
        manufacturer: str = "SIEMENS",
        model: str = "SOMATOM Definition AS",
        image_count: int = 4,
        released: dt.date | str | None = None,
        study_date: dt.date | str | None = None,
        description: str | None = None,
        patient_sex: str = "O",
        rows: int = 256,
        columns: int = 256,
        license_name: str | None = None,
        license_uri: str | None = None,
        phantom: bool = False,
        patient_age: str | None = None,
        event_type: str | None = None,
        days_from_event: int | None = None,
    ) -> dict[str, object]:
        """Publish new series — and the study, patient and collection they need when those are new.

        :param collection: the collection (created if unknown).
        :param patient_id: an existing or new patient; a new one is named when omitted.
        :param study_instance_uid: an existing or new study; a new one is made when omitted.
        :param series_count: how many new series to add to the study.
        :param image_count: instances per new series.
        :param rows: the new series' frame height (pixels).
        :param columns: the new series' frame width (pixels).
        :param released: the release date (``YYYY-MM-DD`` or a date); today by default.
        :param license_name: a new collection's licence (default CC BY 3.0; a "NonCommercial" one makes its
            series ``excludeCommercial``).
        :param license_uri: a new collection's licence URI.
        :param phantom: a new patient is a phantom (NBIA's ``qcSubject`` ``YES``).
        :param patient_age: a new study's PatientAge, as DICOM writes it (``045Y``).
        :param event_type: a new study's LongitudinalTemporalEventType (its time point's event).
        :param days_from_event: a new study's LongitudinalTemporalOffsetFromEvent (days).
        :return: ``collection``, ``patient_id``, ``study_instance_uid``, ``series_instance_uids``, ``released``.
        """
        if series_count < 1 or image_count < 1:
            raise ValueError("series_count and image_count must be at least 1")
        if self._scaled and collection == ScaledCollection.name:
            raise ValueError(f"{collection} is generated and cannot be published to")
        released_day = _as_date(released, "released") or self._today()
        study_day = _as_date(study_date, "study_date") or released_day
        with self._lock:
            n = next(self._counter)
            if collection not in self._collections:
                licence = {"license_name": license_name or CC_BY_3, "license_uri": license_uri or CC_BY_3_URI}
                self._collections[collection] = Collection(collection, site="EMULATOR", **licence)
            if patient_id is None:
                patient_id = f"{collection}-NEW-{n:04d}"
            if (collection, patient_id) not in self._patients:
                self._patients[(collection, patient_id)] = Patient(
                    collection, patient_id, patient_id, patient_sex, phantom="YES" if phantom else "NO"
                )
            if study_instance_uid is None:
                study_instance_uid = hashed_uid(f"{EMULATOR_UID_ROOT}.3.", "study", collection, n)
            existing = self._studies.get(study_instance_uid)
            if existing is not None and (existing.collection, existing.patient_id) != (collection, patient_id):
                raise ValueError(f"study {study_instance_uid} belongs to {existing.collection}/{existing.patient_id}")
            if existing is None:
                self._studies[study_instance_uid] = Study(
                    collection, patient_id, study_instance_uid, study_day, description or "PUBLISHED STUDY",
                    patient_age=patient_age, event_type=event_type,
                    days_from_event=None if days_from_event is None else int(days_from_event),
                )  # fmt: skip
            uids = []
            base = sum(1 for s in self._series.values() if s.study_instance_uid == study_instance_uid)
            for k in range(series_count):
                uid = hashed_uid(f"{EMULATOR_UID_ROOT}.4.", "series", collection, n, k)
                self._series[uid] = Series(
                    collection, patient_id, study_instance_uid, uid, modality, released_day, image_count,
                    body_part=body_part, manufacturer=manufacturer, model=model, software="1.0",
                    protocol=f"{modality} PROTOCOL", description=f"PUBLISHED {modality} {base + k + 1}",
                    series_number=base + k + 1, series_date=study_day, rows=rows, columns=columns,
                )  # fmt: skip
                uids.append(uid)
        return {
            "collection": collection,
            "patient_id": patient_id,
            "study_instance_uid": study_instance_uid,
            "series_instance_uids": uids,
            "released": released_day.isoformat(),
        }

    def revise(
        self,
        series_instance_uid: str,
        *,
        image_count: int | None = None,
        released: dt.date | str | None = None,
        submitted: dt.date | str | None = None,
    ) -> dict[str, object]:
        """Publish a revision of an existing series, as TCIA does when a collection is corrected: same
        SeriesInstanceUID, other files (other pixels in every file, and ``image_count`` files if given: more
        are new images, fewer drop the last ones), a new release date and submission timestamp.

        :param released: the revision's DateReleased (``YYYY-MM-DD`` or a date); today by default.
        :param submitted: its MaxSubmissionTimestamp / TimeStamp; ``released`` by default.
        :return: ``series_instance_uid``, ``collection``, ``patient_id``, ``study_instance_uid``,
            ``image_count``, ``released``, ``submitted``, ``revision`` (1 for the first).
        """
        if image_count is not None and (isinstance(image_count, bool) or int(image_count) < 1):
            raise ValueError("image_count must be at least 1")
        released_day = _as_date(released, "released") or self._today()
        submitted_day = _as_date(submitted, "submitted") or released_day
        with self._lock:
            old = self._series.get(series_instance_uid)
            if old is None:
                generated = self._scaled is not None and self._scaled.find_series(series_instance_uid) is not None
                raise ValueError(
                    f"series {series_instance_uid} is generated and cannot be revised"
                    if generated
                    else f"no series {series_instance_uid} to revise"
                )
            revision = old.revision + 1
            new = replace(
                old,
                image_count=old.image_count if image_count is None else int(image_count),
                released=released_day,
                submitted=submitted_day,
                revision=revision,
                # other pixels in every file (the anatomy is drawn from the seed)
                phantom_seed=f"{old.phantom_seed or old.series_instance_uid}#revision-{revision}",
                known_sop_uids=old.known_sop_uids[: old.image_count if image_count is None else int(image_count)],
            )
            self._templates.pop(series_instance_uid, None)
            self._sizes.pop(series_instance_uid, None)
            self._digests.pop(series_instance_uid, None)
            self._series[series_instance_uid] = new
        return {
            "series_instance_uid": series_instance_uid,
            "collection": new.collection,
            "patient_id": new.patient_id,
            "study_instance_uid": new.study_instance_uid,
            "image_count": new.image_count,
            "released": released_day.isoformat(),
            "submitted": submitted_day.isoformat(),
            "revision": revision,
        }

    def add_synthetic_series(
        self,
        size_bytes: int,
        *,
        collection: str = "SYNTHETIC-LARGE",
        patient_id: str = "SYNTHETIC-0001",
        modality: str = "CT",
        rows: int = 512,
        columns: int = 512,
        released: dt.date | str | None = None,
    ) -> Series:
        """Add a series of about ``size_bytes`` (rounded up to whole files of ``rows`` x ``columns``).

        Its files are generated while they are streamed: 16 slices of a chest phantom (a head for MR),
        rendered once and shared by every synthetic series of the same modality, matrix and size, so a
        series of any size costs no memory. Each file's MD5 and CRC-32 are computed here, once (20 bytes a
        file), so that serving it with ``md5hashes.csv`` costs no more than without.
        """
        if size_bytes < 1:
            raise ValueError("size_bytes must be positive")
        released_day = _as_date(released, "released") or self._today()
        with self._lock:
            n = next(self._counter)
            study_uid = f"{EMULATOR_UID_ROOT}.5.{n}"
            series_uid = f"{EMULATOR_UID_ROOT}.6.{n}"
            probe = Series(
                collection, patient_id, study_uid, series_uid, modality, released_day, 1,
                rows=rows, columns=columns, variants=16, phantom_seed="SYNTHETIC",
            )  # fmt: skip
            if collection not in self._collections:
                self._collections[collection] = Collection(collection, site="EMULATOR")
            if (collection, patient_id) not in self._patients:
                self._patients[(collection, patient_id)] = Patient(collection, patient_id, patient_id, "O")
            self._studies[study_uid] = Study(collection, patient_id, study_uid, released_day, "SYNTHETIC STUDY")
            per_file = self.template(probe).file_size(probe.sop_instance_uid(0), 1)
            count = max(1, math.ceil(size_bytes / per_file))
            series = replace(
                probe,
                image_count=count,
                description=f"SYNTHETIC {size_bytes} BYTES",
                series_number=n,
                series_date=released_day,
                manufacturer="EMULATOR",
                model="SYNTHETIC",
                body_part="CHEST",
            )
            self._templates.pop(series_uid, None)
            self._sizes.pop(series_uid, None)
            digests = self._compute_digests(series)
            self._series[series_uid] = series
            self._digests[series_uid] = digests
        return series


def _as_date(value: dt.date | str | None, name: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a date (YYYY-MM-DD)") from None
