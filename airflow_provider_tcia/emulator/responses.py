"""TCIA's endpoints, both generations: a request in, a :class:`Response` out.

Translation only: routing comes from the shared endpoint table (:mod:`airflow_provider_tcia.api.routes`),
parameter spellings and date formats from the API generations, rows from :mod:`.views`, data from the
:class:`~.dataset.Dataset`, renderers from :mod:`airflow_provider_tcia.api.formats`. Faults are not known
here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from airflow_provider_tcia.api.endpoints import FORMATS, Endpoint, get_endpoint
from airflow_provider_tcia.api.formats import iter_rendered
from airflow_provider_tcia.api.generations import ApiGeneration, NbiaApi
from airflow_provider_tcia.api.manifest_endpoints import MANIFEST_ENDPOINTS
from airflow_provider_tcia.api.routes import resolve_path
from airflow_provider_tcia.emulator import aggregates, views
from airflow_provider_tcia.emulator.dataset import Dataset, Series, Since
from airflow_provider_tcia.emulator.manifests import manifest_response, manifest_route
from airflow_provider_tcia.emulator.messages import Request, Response, as_json, text
from airflow_provider_tcia.emulator.search import SearchError, simple_search
from airflow_provider_tcia.emulator.tags import tag_rows
from airflow_provider_tcia.emulator.zipstream import ZipEntry, zip_size

NBIA_FORMATS = ("json", "html", "xml", "csv", "csvquoted", "csv-download")
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xml": "application/xml",
    "html": "text/html; charset=utf-8",
}
#: Filters of the data model, by the endpoint table's Python parameter names.
MODEL_FILTERS = {
    "collection": "collection",
    "patient_id": "patient_id",
    "study_instance_uid": "study_instance_uid",
    "series_instance_uid": "series_instance_uid",
    "modality": "modality",
    "body_part_examined": "body_part",
    "manufacturer": "manufacturer",
    "manufacturer_model_name": "model",
}
#: NBIA-only endpoints served next to the table's (path name -> (table endpoint, what it does)).
NBIA_EXTRAS = {
    "getImageWithMD5Hash": ("getImage", "md5_download"),
    "getSeriesMetaData": ("getSeries", "series_metadata_v1"),
}
#: NBIA endpoints whose "nothing" is ``[]`` (Jackson writing an empty list), not an empty body.
EMPTY_AS_ARRAY = frozenset({"getCollectionDescriptions", "getCollectionOrSeriesForDOI"})
#: NBIA endpoints that never check their required parameters (a missing one just matches nothing).
UNCHECKED = frozenset({"getCollectionOrSeriesForDOI"})
#: Table endpoints answered by their own responder (their forms are not one field per parameter), by name.
OWN_ACTIONS = {"getSeriesMetadata": "series_metadata", "getSimpleSearch": "simple_search"}
#: Query parameters NBIA accepts beyond the table's (NBIA's getPatient filters by ``PatientId``).
NBIA_EXTRA_PARAMS = {"getPatient": ("PatientId",)}


@dataclass(frozen=True)
class Target:
    """What a request addresses."""

    generation: ApiGeneration
    endpoint: Endpoint
    action: str
    """``query``, ``metadata``, ``download``, ``md5_download``, ``series_metadata`` or ``series_metadata_v1``."""
    path_name: str
    names: frozenset[str] = field(default_factory=frozenset)
    """Every name a fault may target this request by."""

    @property
    def api(self) -> str:
        return self.generation.name

    @property
    def style(self) -> views.Style:
        return views.style_of(self.generation)


class BadRequest(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def route(path: str) -> Target | None:
    """The target of ``path``, or ``None`` (404)."""
    found = resolve_path(path)
    if found is not None:
        endpoint = found.endpoint
        action = "metadata" if found.metadata else ("download" if endpoint.kind == "download" else "query")
        action = OWN_ACTIONS.get(endpoint.name, action)
        name = path.rstrip("/").rsplit("/", 2 if found.metadata else 1)[-2 if found.metadata else -1]
        return Target(found.generation, endpoint, action, name, frozenset({endpoint.name, name}))
    manifest = manifest_route(path)  # NBIA's manifest endpoints (emulator/manifests.py)
    if manifest is not None:
        generation, name = manifest
        return Target(generation, MANIFEST_ENDPOINTS[name], "manifest", name, frozenset({name}))
    parts = path.rstrip("/").split("/")
    if len(parts) == 5 and parts[1:3] == ["nbia-api", "services"] and parts[4] in NBIA_EXTRAS:
        version, name = parts[3], parts[4]
        if version not in NbiaApi.versions:
            return None
        base, action = NBIA_EXTRAS[name]
        if (action == "series_metadata" and version != "v4") or (action == "series_metadata_v1" and version != "v1"):
            return None  # POST getSeriesMetadata is v4's; GET getSeriesMetaData is v1's
        endpoint = get_endpoint(base)
        return Target(NbiaApi(version), endpoint, action, name, frozenset({name, endpoint.name}))
    return None


class Responder:
    """Answers TCIA requests from a dataset.

    :param data: the data model.
    :param api_key: when set, the seed API answers 401 to requests without it (NBIA never asks for one).
    """

    def __init__(self, data: Dataset, api_key: str | None = None) -> None:
        self.data = data
        self.api_key = api_key or None

    # --- auth -------------------------------------------------------------------------------------------
    def unauthorised(self, request: Request, target: Target) -> Response | None:
        """401 for a seed-API request without the right key, when a key is required."""
        if self.api_key is None or target.api != "legacy":
            return None
        given = request.headers.get("api_key") or request.first("api_key")
        if given and hmac.compare_digest(given.encode(), self.api_key.encode()):
            return None
        return text(401, "Unauthorized access: a valid api_key is required (HTTP header or query parameter)")

    # --- dispatch ---------------------------------------------------------------------------------------
    def respond(self, request: Request, target: Target) -> Response:
        posted = target.action == "query" and target.endpoint.http_method == "POST"
        posted = posted or target.action == "manifest"
        wanted = "POST" if target.action in OWN_ACTIONS.values() or posted else "GET"
        if request.method not in (wanted, "HEAD" if wanted == "GET" else wanted):
            response = text(405, f"Method {request.method} is not allowed here; use {wanted}")
            response.headers.append(("Allow", wanted))
            return response
        try:
            if target.action == "metadata":
                return as_json(200, target.endpoint.metadata())
            if target.action == "series_metadata":
                return self._series_metadata(request, target)
            if target.action == "simple_search":
                return self._simple_search(request)
            if target.action == "manifest":
                return manifest_response(request, target.path_name, self.data)
            params = self._params(request, target)
            if target.action in ("download", "md5_download"):
                if target.endpoint.name == "getSingleImage":
                    return self._single_image(target, params)
                return self._image(request, target, params)
            if target.action == "series_metadata_v1":
                return self._series_metadata_v1(request, target, params)
            return self._query(request, target, params)
        except BadRequest as bad:
            return bad.response

    # --- parameters -------------------------------------------------------------------------------------
    def _params(self, request: Request, target: Target) -> dict[str, object]:
        """The request's parameters by the table's Python names (dates parsed), validated as the target's
        generation does."""
        generation, endpoint = target.generation, target.endpoint
        if target.action in ("md5_download", "series_metadata_v1"):
            # NBIA-only endpoints: one required SeriesInstanceUID.
            spelled = {"series_instance_uid": "SeriesInstanceUID"}
            required_names: tuple[str, ...] = ("series_instance_uid",)
            allowed: tuple[str, ...] = ("SeriesInstanceUID", "format")
            dates: frozenset[str] = frozenset()
        else:
            spelled = {p.name: generation.param_name(endpoint, p.name) for p in endpoint.params}
            required_names = tuple(p.name for p in endpoint.required)
            dates = frozenset(p.name for p in endpoint.params if p.is_date)
            allowed = generation.api_params(endpoint) if isinstance(generation, NbiaApi) else tuple(spelled.values())
        extras = NBIA_EXTRA_PARAMS.get(endpoint.name, ()) if target.api == "nbia" else ()
        # A POST endpoint reads form fields (and v4 checks the query string's names with them, as a servlet's
        # parameter names are both).
        source = "form" if target.action == "query" and endpoint.http_method == "POST" else "query"
        if target.api == "nbia" and generation.version == "v4":
            allowed = (*allowed, *extras)
            kind = "form" if source == "form" else "query"
            for key, _ in (*request.query, *request.form) if source == "form" else request.query:
                if key not in allowed:
                    listed = ", ".join(allowed)
                    raise BadRequest(
                        text(400, f"Invalid {kind} parameter: '{key}'. Allowed parameters are: [{listed}]")
                    )
        out: dict[str, object] = {}
        for name, api_name in spelled.items():
            value = request.first(api_name, source)
            if value is None or not value.strip():
                continue
            out[name] = self._date(target, api_name, value) if name in dates else value
        if "PatientId" in extras and request.first("PatientId"):
            out["patient_id"] = request.first("PatientId")
        unchecked = target.api == "nbia" and endpoint.name in UNCHECKED
        if any(n not in out for n in required_names) and not unchecked:
            raise BadRequest(text(400, _missing_message(endpoint, required_names, spelled)))
        return out

    def _date(self, target: Target, api_name: str, value: str) -> Since:
        param = target.generation.date_param(target.endpoint)
        try:
            day = dt.datetime.strptime(value.strip(), param.format).date()
        except ValueError:
            human = param.format.replace("%Y", "yyyy" if target.api == "nbia" else "YYYY").replace("%m", "MM")
            human = human.replace("%d", "dd" if target.api == "nbia" else "DD")
            raise BadRequest(text(400, f"{api_name}={value!r} is not a date; the format is {human}")) from None
        return Since(day, inclusive=param.inclusive)

    def _format(self, request: Request, target: Target) -> tuple[str, bool]:
        """(format, as attachment) asked for; an unknown one is the server error the servers answer."""
        if target.api == "nbia" and not target.endpoint.nbia_formats:
            return "json", False
        asked = (request.first("format") or "json").strip().lower()
        if target.api == "legacy":
            if asked not in FORMATS:
                raise BadRequest(as_json(500, {"errorMessage": f"java.lang.IllegalArgumentException: {asked}"}))
            return asked, False
        if asked not in NBIA_FORMATS:
            raise BadRequest(text(500, "Server was not able to process your request"))
        return ("csv" if asked.startswith("csv") else asked), asked == "csv-download"

    # --- metadata queries -------------------------------------------------------------------------------
    def _rows(self, target: Target, params: dict[str, object]) -> Iterator[dict[str, object]]:
        data, style, name = self.data, target.style, target.endpoint.name
        # The filters are checked query strings, typed object with the rest of params (whose date is a Since):
        # hence the arg-type ignores below.
        filters = {MODEL_FILTERS[k]: v for k, v in params.items() if k in MODEL_FILTERS}
        since = params.get("date")
        assert since is None or isinstance(since, Since)
        if name == "getCollectionValues":
            return ({"Collection": c} for c in data.collection_names())
        if name in ("getModalityValues", "getBodyPartValues", "getManufacturerValues"):
            column, attribute = {
                "getModalityValues": ("Modality", "modality"),
                "getBodyPartValues": ("BodyPartExamined", "body_part"),
                "getManufacturerValues": ("Manufacturer", "manufacturer"),
            }[name]
            return ({column: v} for v in data.distinct(attribute, **filters))  # type: ignore[arg-type]
        if name in ("getPatient", "NewPatientsInCollection"):
            return (views.patient_row(style, p) for p in data.find_patients(**filters, since=since))  # type: ignore[arg-type]
        if name == "PatientsByModality":
            return (views.patient_by_modality_row(style, p) for p in data.find_patients(**filters))  # type: ignore[arg-type]
        if name in ("getPatientStudy", "NewStudiesInPatientCollection"):
            return (views.study_row(style, s) for s in data.find_studies(**filters, since=since))  # type: ignore[arg-type]
        if name == "getSeries":
            return (views.series_row(style, s, data) for s in data.find_series(**filters))  # type: ignore[arg-type]
        if name == "getSeriesSize":
            series = data.series(str(params["series_instance_uid"]))
            if series is None:
                return iter([{}] if style == "legacy" else [])
            return iter([views.size_row(style, data.series_size(series), series.image_count)])
        if name == "getSOPInstanceUIDs":
            series = data.series(str(params["series_instance_uid"]))
            return ({"SOPInstanceUID": i.sop_instance_uid} for i in (series.instances() if series else ()))
        if name == "getUpdatedSeries":
            return (views.series_row(style, s, data) for s in data.find_series(since=since))
        if name in aggregates.COUNTED:
            return aggregates.value_counts(data, name, **filters)  # type: ignore[arg-type]
        if name == "getCollectionDescriptions":
            return aggregates.collection_descriptions(data, params.get("collection"))  # type: ignore[arg-type]
        if name == "getCollectionOrSeriesForDOI":
            return aggregates.doi_rows(data, params.get("doi"), params.get("collection_or_series"))  # type: ignore[arg-type]
        if name == "getDicomTags":
            series = self._find_series(target, str(params["series_instance_uid"]))
            first = next(series.instances(), None)
            return iter(()) if first is None else tag_rows(data.instance_file(first)[0])
        if name == "ContentsByName":
            listed = data.shared_list(str(params["name"])) or []
            if style == "legacy":
                return (views.series_row(style, s, data) for s in listed)
            return (views.contents_row(s, data) for s in listed)
        raise AssertionError(f"no responder for {name}")

    def _text_answer(self, target: Target, params: dict[str, object]) -> str | None:
        """The one value of a text/plain endpoint (``None``: the empty answer)."""
        name = target.endpoint.name
        if name == "getMD5HashForImage":
            # NBIA's stored MD5; nothing for an unknown image (an assumption: NBIA answers "none" with no body)
            return self.data.image_md5(str(params["sop_instance_uid"]))
        if name == "getMD5Hierarchy":
            # As NBIA's code: none given is an empty answer; of several, a patient (within a collection if one
            # is given) wins, then a collection, a study, a series.
            given = {k: str(v) for k, v in params.items()}
            for level in ("patient_id", "collection", "study_instance_uid", "series_instance_uid"):
                if level in given:
                    return aggregates.md5_hierarchy(self.data, level, given[level], given.get("collection"))
            return None
        raise AssertionError(f"no responder for {name}")

    def _query(self, request: Request, target: Target, params: dict[str, object]) -> Response:
        if target.endpoint.answer == "text":
            value = self._text_answer(target, params)
            return Response(200, [("Content-Type", "text/plain")], (value or "").encode())
        fmt, attachment = self._format(request, target)
        rows = self._rows(target, params)
        return self._render(rows, views.columns(target.style, target.endpoint.name), fmt, target, attachment)

    def _render(
        self, rows: Iterator[dict[str, object]], columns: Iterable[str], fmt: str, target: Target, attachment=False
    ) -> Response:
        headers = [("Content-Type", CONTENT_TYPES[fmt])]
        if attachment:
            headers.append(("Content-Disposition", f"attachment; filename={target.path_name}.csv"))
        first = next(rows, None)
        if first is None and target.api == "nbia":
            if target.endpoint.name in EMPTY_AS_ARRAY:
                return Response(200, headers, b"[]")
            return Response(200, headers, b"")  # NBIA: no rows, no body
        all_rows = rows if first is None else itertools.chain([first], rows)
        pieces = iter_rendered(all_rows, list(columns), fmt)
        return Response(200, headers, (piece.encode("utf-8") for piece in pieces))

    def _series_metadata(self, request: Request, target: Target) -> Response:
        for key, _ in (*request.query, *request.form):  # (v4's parameter validation)
            if key not in ("list", "format"):
                return text(400, f"Invalid form parameter: '{key}'. Allowed parameters are: [list, format]")
        # (every ``list`` field, each comma-separated: one field of all the UIDs is what clients send)
        listed = [v for k, v in (*request.form, *request.query) if k == "list"]
        uids = [u.strip() for value in listed for u in value.split(",") if u.strip()]
        if not uids:
            return text(400, "A form parameter, list, containing at least one SeriesInstanceUID is required.")
        fmt = (request.first("format", "form") or request.first("format") or "csv").lower()
        if fmt not in ("csv", "json"):
            return text(500, "Server was not able to process your request")
        found = (self.data.series(u) for u in uids)
        rows = (views.series_metadata_row(s, self.data) for s in found if s is not None)
        return self._render(rows, views.SERIES_METADATA_COLUMNS, fmt, target)

    def _simple_search(self, request: Request) -> Response:
        try:
            answer = simple_search(self.data, (*request.query, *request.form))
        except SearchError as error:
            return text(error.status, error.message)
        return as_json(200, answer)

    def _series_metadata_v1(self, request: Request, target: Target, params: dict[str, object]) -> Response:
        series = self.data.series(str(params["series_instance_uid"]))
        if series is None:
            return Response(204, [], b"")
        fmt, _ = self._format(request, target)
        row = views.series_metadata_v1_row(series, self.data)
        return self._render(iter([row]), list(row), fmt, target)

    # --- downloads --------------------------------------------------------------------------------------
    def _find_series(self, target: Target, uid: str) -> Series:
        series = self.data.series(uid)
        if series is not None:
            return series
        if target.style == "v1":
            raise BadRequest(text(400, f"Image with given SeriesInstanceUID,{uid}, is not in public domain."))
        if target.style == "v4":
            raise BadRequest(
                text(
                    400,
                    f"The user has not been granted the access to image with given SeriesInstanceUID,{uid}. "
                    "Please contact System Admin to resolve this issue.",
                )
            )
        raise BadRequest(text(404, f"No series found for SeriesInstanceUID {uid}"))

    def _image(self, request: Request, target: Target, params: dict[str, object]) -> Response:
        series = self._find_series(target, str(params["series_instance_uid"]))
        data = self.data
        if target.api == "legacy":
            names = [i.legacy_file_name for i in series.instances()]
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Disposition", "attachment; filename=bindaas-blob-download.zip"),
                ("imageCount", str(series.image_count)),
            ]
            license_entry: list[ZipEntry] = []
            md5 = False
        else:
            if (request.first("NewFileNames") or "").lower() == "yes":
                names = [f"1-{i.instance_number:03d}.dcm" for i in series.instances()]
            else:
                names = [f"{i.instance_number:08d}.dcm" for i in series.instances()]
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Disposition", f'attachment; filename="{series.series_instance_uid}.zip"'),
            ]
            collection = data.collection(series.collection)
            license_text = collection.license_text if collection else ""
            license_entry = [ZipEntry("LICENSE", [license_text.encode("utf-8")])]
            md5 = target.action == "md5_download" or (
                target.style == "v4" and (request.first("IncludeMD5") or "").lower() == "yes"
            )

        def entries() -> Iterator[ZipEntry]:
            yield from license_entry
            # Each file's MD5 and CRC-32 are remembered by the data model (as NBIA keeps MD5s in its
            # database), so md5hashes.csv costs no hashing here; the scaled collection's are computed.
            digests = data.digests(series)
            hashes = []
            for name, instance in zip(names, series.instances(), strict=True):
                parts = data.instance_file(instance)
                if digests is not None:
                    if md5:
                        hashes.append(f"{name},{digests.md5_hex(instance.index)}")
                    yield ZipEntry(name, parts, digests.crc32(instance.index))
                    continue
                if md5:
                    digest = hashlib.md5()
                    for part in parts:
                        digest.update(part)
                    hashes.append(f"{name},{digest.hexdigest()}")
                yield ZipEntry(name, parts)
            if md5:
                yield ZipEntry("md5hashes.csv", ["\n".join(["Filename,MD5Hash", *hashes, ""]).encode()])

        def size() -> int:
            template = data.template(series)
            sizes = [(e.name, len(e.parts[0])) for e in license_entry] + [
                (name, template.file_size(i.sop_instance_uid, i.instance_number))
                for name, i in zip(names, series.instances(), strict=True)
            ]
            if md5:
                sizes.append(("md5hashes.csv", 17 + sum(len(n) + 34 for n in names)))
            return zip_size(sizes)

        return Response(200, headers, zip_entries=entries(), size_hint=size)

    def _single_image(self, target: Target, params: dict[str, object]) -> Response:
        series = self._find_series(target, str(params["series_instance_uid"]))
        instance = series.instance(str(params["sop_instance_uid"]))
        if instance is None:
            sop = params["sop_instance_uid"]
            if target.api == "legacy":
                return text(404, f"No image found for SOPInstanceUID {sop} in series {series.series_instance_uid}")
            return text(400, f"Image with given SOPInstanceUID,{sop}, is not in public domain.")
        filename = instance.legacy_file_name if target.api == "legacy" else f"{instance.sop_instance_uid}.dcm"
        body = b"".join(self.data.instance_file(instance))
        return Response(
            200,
            [("Content-Type", "application/dicom"), ("Content-Disposition", f"attachment; filename={filename}")],
            body,
        )


def _missing_message(endpoint: Endpoint, required: tuple[str, ...], spelled: dict[str, str]) -> str:
    """NBIA's wording (the seed's is not on record; the emulator uses the same)."""
    if endpoint.name in ("NewPatientsInCollection", "NewStudiesInPatientCollection"):
        return "A parameter, Collection and Date are required for this API call."
    if len(required) > 1:
        return f"A parameter, {' and '.join(spelled[n] for n in required)}, are required for this API call."
    return f"A parameter, {spelled[required[0]]}, is required for this API call."
