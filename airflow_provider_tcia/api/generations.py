"""How each generation of TCIA's API spells a request and shapes its answer.

Two generations:

* ``legacy`` — the key-based query API our user specified (Bindaas): ``/services/<v2|v3|v4>/TCIA/query/<ep>``,
  ``api_key``, ``Date`` as ``YYYY-MM-DD`` meaning "added after", ``[]`` for no rows, ``/metadata``.
* ``nbia`` — TCIA's current API: ``/nbia-api/services/v4/<ep>`` (``v1`` for what v4 lacks), no key, NBIA's
  names (``getPatientByCollectionAndModality``, ``getContentsByName``), ``fromDate`` as ``MM-DD-YYYY``
  meaning "on or after" in v4 (``Date`` as ``yyyy/MM/dd`` in v1), ``PatientId`` in patient rows and an empty
  body for no rows.

Both the hook (to build requests and normalise answers) and the emulator (to route and validate) use these
objects, so the two can never disagree about the wire format.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from airflow_provider_tcia.api.dates import parse_date
from airflow_provider_tcia.api.endpoints import ENDPOINTS, DateSpelling, Endpoint, Param
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaConfigurationError

#: Fields NBIA spells differently from the seed, renamed when we normalise its rows.
NBIA_FIELD_ALIASES = {
    "PatientId": "PatientID",
    "Date Released": "DateReleased",
    "AdmittingDiagnosisDescription": "AdmittingDiagnosesDescription",
}
#: Fields that arrive as numbers or float-looking strings ("16357620.0") and are normalised to int.
INTEGER_FIELDS = ("TotalSizeInBytes", "ObjectCount", "ImageCount", "SeriesCount")


#: NBIA's MD5 of one image (getMD5HashForImage, text/plain), which the download engine asks for too.
IMAGE_MD5 = ENDPOINTS["getMD5HashForImage"]


#: How a generation spells a date (NewPatientsInCollection's unless the endpoint table says otherwise).
DateParam = DateSpelling


@dataclass(frozen=True)
class ApiRequest:
    """A request ready to send: path relative to the server root and query parameters (API spellings)."""

    endpoint: Endpoint
    path: str
    params: tuple[tuple[str, str], ...]
    format: str | None
    """The format asked of the server (``None`` for downloads, text answers and JSON-only endpoints)."""
    render_locally: str | None = None
    """A format the server cannot produce for this endpoint, rendered by us from its JSON rows."""
    method: str = "GET"
    """``POST``: ``params`` are sent as a form body (``application/x-www-form-urlencoded``), not in the URL."""


class ApiGeneration:
    """Base of the two generations."""

    name: ClassVar[str]
    servers: ClassVar[Mapping[str, str]]
    versions: ClassVar[tuple[str, ...]]
    #: Whether the server answers ``/metadata``; otherwise it is built from the endpoint table.
    serves_metadata: ClassVar[bool]
    #: Whether an empty body means "no rows" (NBIA) rather than a broken answer (the seed always sends ``[]``).
    empty_body_is_no_rows: ClassVar[bool]

    def __init__(self, version: str | None = None) -> None:
        version = version or self.versions[0]
        if version not in self.versions:
            raise TciaConfigurationError(
                f"api_version={version!r} is not one of {', '.join(self.versions)} for the {self.name} API"
            )
        self.version = version

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version!r})"

    # --- to be provided by each generation ---------------------------------------------------------
    def path(self, endpoint: Endpoint) -> str:
        raise NotImplementedError

    def date_param(self, endpoint: Endpoint) -> DateParam:
        raise NotImplementedError

    def send_date(self, endpoint: Endpoint, day: dt.date) -> dt.date:
        """The date to send so that the query means the seed's "added after ``day``"."""
        return day + dt.timedelta(days=1) if self.date_param(endpoint).inclusive else day

    def param_name(self, endpoint: Endpoint, name: str) -> str:
        param = endpoint.param(name)
        if param.is_date:
            return self.date_param(endpoint)[0]
        return self.spelling(param)

    def spelling(self, param: Param) -> str:
        """How this generation spells a (non-date) parameter."""
        return param.api_name

    def serves(self, endpoint: Endpoint) -> bool:
        """Whether this generation's server has the endpoint (the seed lacks NBIA-only ones)."""
        return self.name in endpoint.apis

    def refusal(self, endpoint: Endpoint) -> str:
        """Why an endpoint this generation lacks is refused, before anything is sent."""
        return (
            f"{endpoint.name} is served only by NBIA, TCIA's current API; this connection uses the {self.name} API "
            f"({self.version}). Use a tcia connection with api=nbia in its extras; nothing was sent"
        )

    def server(self, environment: str) -> str:
        try:
            return self.servers[environment]
        except KeyError:
            raise TciaConfigurationError(
                f"environment={environment!r} is not one of {', '.join(self.servers)} for the {self.name} API"
            ) from None

    # --- shared ---------------------------------------------------------------------------------------
    def encode(self, endpoint: Endpoint, params: Mapping[str, object]) -> list[tuple[str, str]]:
        """Query parameters in this generation's spelling; ``params`` are checked, by Python name."""
        out = []
        for name, value in params.items():
            param = endpoint.param(name)
            if param.is_date:
                day = self.send_date(endpoint, parse_date(value, param=param.name))
                out.append((self.param_name(endpoint, name), day.strftime(self.date_param(endpoint).format)))
            else:
                out.append((self.param_name(endpoint, name), _text(value)))
        return out

    def query_request(self, endpoint: Endpoint, params: Mapping[str, object], fmt: str = "json") -> ApiRequest:
        """The request for a query endpoint; a :class:`TciaBadRequestError` where this generation lacks it."""
        if not self.serves(endpoint):
            raise TciaBadRequestError(self.refusal(endpoint))
        query = self.encode(endpoint, params)
        method = endpoint.http_method
        if self.supports_format(endpoint):
            return ApiRequest(endpoint, self.path(endpoint), (*query, ("format", fmt)), fmt, method=method)
        local = None if fmt == "json" else fmt
        return ApiRequest(endpoint, self.path(endpoint), tuple(query), None, local, method=method)

    def supports_format(self, endpoint: Endpoint) -> bool:
        return endpoint.kind == "query" and endpoint.answer == "rows"

    def download_request(self, endpoint: Endpoint, params: Mapping[str, object], *, md5: bool) -> ApiRequest:
        return ApiRequest(endpoint, self.path(endpoint), tuple(self.encode(endpoint, params)), None)

    def offers_md5(self) -> bool:
        return False

    def image_md5_request(self, sop_instance_uid: str) -> ApiRequest | None:
        """getMD5HashForImage for one image, or None where the API offers no MD5 (the seed)."""
        if not self.serves(IMAGE_MD5):
            return None
        return self.query_request(IMAGE_MD5, {"sop_instance_uid": sop_instance_uid})

    def normalise_row(self, row: Mapping[str, object]) -> dict[str, object]:
        out = {NBIA_FIELD_ALIASES.get(k, k): v for k, v in row.items()}
        for key in INTEGER_FIELDS:
            value = out.get(key)
            if isinstance(value, str | float) and value != "":
                with contextlib.suppress(ValueError):
                    out[key] = int(float(value))
        return out

    def metadata_path(self, endpoint: Endpoint) -> str | None:
        return f"{self.path(endpoint)}/metadata" if self.serves_metadata else None


class LegacyApi(ApiGeneration):
    """The seed: TCIA's key-based query API (v2 by default; v3 and v4 share its shape)."""

    name = "legacy"
    versions = ("v2", "v3", "v4")
    serves_metadata = True
    empty_body_is_no_rows = False
    servers = {
        "production": "https://services.cancerimagingarchive.net",
        "test": "https://services-test.cancerimagingarchive.net",
    }

    def path(self, endpoint: Endpoint) -> str:
        return f"/services/{self.version}/{endpoint.resource}/query/{endpoint.name}"

    def date_param(self, endpoint: Endpoint) -> DateParam:
        return DateParam("Date", "%Y-%m-%d", inclusive=False)


class NbiaApi(ApiGeneration):
    """TCIA's current API: NBIA v4, falling back to v1 for what v4 lacks."""

    name = "nbia"
    versions = ("v4", "v1")
    serves_metadata = False
    empty_body_is_no_rows = True
    servers = {
        "production": "https://nbia.cancerimagingarchive.net",
        "test": "https://nbia-stage.cancerimagingarchive.net",
        "nlst": "https://nlst.cancerimagingarchive.net",
    }

    def endpoint_version(self, endpoint: Endpoint) -> str:
        """The version that serves ``endpoint``: v1 on a v1 connection where v1 has it, else its own (v4)."""
        return "v1" if self.version == "v1" and endpoint.nbia_v1 else endpoint.nbia_version

    def path(self, endpoint: Endpoint) -> str:
        name = endpoint.nbia_name or endpoint.name
        if self.endpoint_version(endpoint) == "v1" and endpoint.nbia_v1_name:
            name = endpoint.nbia_v1_name
        return f"/nbia-api/services/{self.endpoint_version(endpoint)}/{name}"

    def spelling(self, param: Param) -> str:
        # (only v1 endpoints' own spellings differ by version: the endpoint's version is v1 on a v1 connection)
        if self.version == "v1" and param.nbia_v1_name:
            return param.nbia_v1_name
        return param.nbia_name or param.api_name

    def date_param(self, endpoint: Endpoint) -> DateParam:
        version = self.endpoint_version(endpoint)
        own = endpoint.nbia_date(version)
        if own is not None:
            return own
        if version == "v4":
            return DateParam("fromDate", "%m-%d-%Y", inclusive=True)
        return DateParam("Date", "%Y/%m/%d", inclusive=False)

    def supports_format(self, endpoint: Endpoint) -> bool:
        return endpoint.kind == "query" and endpoint.answer == "rows" and endpoint.nbia_formats

    def offers_md5(self) -> bool:
        return True

    def download_request(self, endpoint: Endpoint, params: Mapping[str, object], *, md5: bool) -> ApiRequest:
        query = self.encode(endpoint, params)
        path = self.path(endpoint)
        if endpoint.name == "getImage" and md5:
            if self.endpoint_version(endpoint) == "v4":
                query.append(("IncludeMD5", "Yes"))
            else:
                path = path.replace("/getImage", "/getImageWithMD5Hash")
        return ApiRequest(endpoint, path, tuple(query), None)

    def api_params(self, endpoint: Endpoint) -> tuple[str, ...]:
        """Every query parameter this version accepts for ``endpoint`` (v4 rejects any other)."""
        names = [self.param_name(endpoint, p.name) for p in endpoint.params]
        if self.supports_format(endpoint):
            names.append("format")
        if endpoint.name == "getImage":
            names.append("NewFileNames")
            if self.endpoint_version(endpoint) == "v4":
                names.append("IncludeMD5")
        return tuple(names)


GENERATIONS: dict[str, type[ApiGeneration]] = {"legacy": LegacyApi, "nbia": NbiaApi}


def get_generation(api: str, version: str | None = None) -> ApiGeneration:
    """The generation called ``api`` (``legacy`` or ``nbia``) at ``version``; a clear error otherwise."""
    try:
        cls = GENERATIONS[api]
    except KeyError:
        raise TciaConfigurationError(f"api={api!r} is not one of {', '.join(GENERATIONS)}") from None
    return cls(version)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)
