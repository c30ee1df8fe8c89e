"""What NBIA's v4-only endpoints compute over the data model: counts per value, MD5s over a level, collection
descriptions, DOIs. Plain functions of a :class:`~.dataset.Dataset`; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Iterator

from airflow_provider_tcia.emulator.dataset import Dataset, Series

#: The counts endpoints: (the row's value column, the series attribute or ``None`` for a patient's species).
COUNTED = {
    "getCollectionValuesAndCounts": ("Collection", "collection"),
    "getModalityValuesAndCounts": ("Modality", "modality"),
    "getBodyPartValuesAndCounts": ("BodyPart", "body_part"),
    "getManufacturerValuesAndCounts": ("Manufacturer", "manufacturer"),
    "getSpeciesValuesAndCounts": ("Species", None),
}


def value_counts(data: Dataset, endpoint: str, **filters: str | None) -> Iterator[dict[str, object]]:
    """Each value and its number of distinct patients (NBIA counts patients, not series), sorted by value."""
    column, attribute = COUNTED[endpoint]
    patients: dict[str, set[tuple[str, str]]] = {}
    for s in data.find_series(**filters):  # type: ignore[arg-type]  # (the model's filter names)
        if attribute is None:
            patient = data.patient(s.collection, s.patient_id)
            value = patient.species_description if patient else None
        else:
            value = getattr(s, attribute)
        if value:
            patients.setdefault(str(value), set()).add((s.collection, s.patient_id))
    for value in sorted(patients):
        yield {column: value, "Count": len(patients[value]), "Authorized": 1}


def _md5_of(hexes: Iterable[str]) -> str:
    """NBIA's MD5 over a level: the MD5 of its children's MD5s, sorted and concatenated."""
    return hashlib.md5("".join(sorted(hexes)).encode(), usedforsecurity=False).hexdigest()


def series_md5(data: Dataset, series: Series) -> str:
    digests = data.digests(series)
    if digests is not None:
        return _md5_of(digests.md5_hex(i) for i in range(len(digests)))
    return _md5_of(data.image_md5(i.sop_instance_uid) or "" for i in series.instances())


#: The levels of getMD5Hierarchy, top down, by the endpoint table's parameter names.
LEVELS = ("collection", "patient_id", "study_instance_uid", "series_instance_uid")


def md5_hierarchy(data: Dataset, level: str, value: str, collection: str | None = None) -> str | None:
    """getMD5Hierarchy for one level (a name of :data:`LEVELS`); ``None`` when nothing is there (NBIA then
    answers an empty body). Each level's MD5 is over its children's: a study's over its series', a patient's
    over its studies', a collection's over its patients'. A patient may be narrowed to a ``collection``."""
    if level == "series_instance_uid":
        series = data.series(value)
        return None if series is None else series_md5(data, series)
    filters = {level: value} | ({"collection": collection} if collection and level == "patient_id" else {})
    found = list(data.find_series(**filters))  # type: ignore[arg-type]  # (the model's filter names)
    return _level_md5(data, found, LEVELS.index(level)) if found else None


def _level_md5(data: Dataset, series: list[Series], depth: int) -> str:
    if depth == len(LEVELS) - 1:
        return series_md5(data, series[0])
    key = {1: lambda s: s.patient_id, 2: lambda s: s.study_instance_uid, 3: lambda s: s.series_instance_uid}[depth + 1]
    children: dict[str, list[Series]] = {}
    for s in series:
        children.setdefault(key(s), []).append(s)
    return _md5_of(_level_md5(data, group, depth + 1) for group in children.values())


def collection_descriptions(data: Dataset, name: str | None) -> Iterator[dict[str, object]]:
    """getCollectionDescriptions' rows: every collection, or the one called ``name`` (none if unknown)."""
    names = data.collection_names()
    for number, collection_name in enumerate(names, start=1):
        if name is not None and collection_name != name:
            continue
        collection = data.collection(collection_name)
        doi = collection.doi if collection else ""
        description = (
            f"<p>{html.escape(collection_name)}: images of {html.escape(collection.site or collection_name)} "
            "served by the airflow-provider-tcia emulator.</p>"
            + (f'<p>Cite it as <a href="{html.escape(doi)}">{html.escape(doi)}</a>.</p>' if doi else "")
        ) if collection else ""  # fmt: skip
        row: dict[str, object] = {"collectionName": collection_name, "description": description, "id": number}
        if doi:
            row["descriptionURI"] = doi
        yield {k: row[k] for k in ("collectionName", "description", "descriptionURI", "id") if k in row}


def doi_rows(data: Dataset, doi: str | None, collection_or_series: str | None) -> Iterator[dict[str, object]]:
    """getCollectionOrSeriesForDOI: the collections whose DOI is ``doi`` (with ``CollectionOrSeries=Series``:
    their series), with NBIA's spelling ``thirdPartyAnanlysis``."""
    if not doi:
        return
    by_series = (collection_or_series or "").lower() == "series"
    for name in data.collection_names():
        collection = data.collection(name)
        if collection is None or collection.doi.lower() != doi.strip().lower():
            continue
        if not by_series:
            yield {"collection": name, "thirdPartyAnanlysis": "NO", "authorized": 1}
            continue
        for s in data.find_series(collection=name):
            yield {
                "collection": name,
                "seriesInstanceUID": s.series_instance_uid,
                "thirdPartyAnanlysis": s.third_party,
                "authorized": 1,
            }
