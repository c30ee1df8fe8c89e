"""What the sync (requests) and async (httpx) sides of the hook share: preparing a call, judging a response,
and the messages of the errors they raise. Only moving bytes is left to each side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from airflow_provider_tcia.api.generations import ApiRequest
from airflow_provider_tcia.api.redact import redact_text, redact_url
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaCorruptPayloadError,
    TciaError,
    TciaIncompleteResponseError,
    TciaNotFoundError,
    TciaServerError,
    excerpt,
)
from airflow_provider_tcia.hooks.config import TciaConfig

__all__ = [
    "Call",
    "TciaIncompleteResponseError",
    "corrupt",
    "error_for_status",
    "exhausted",
    "payload_problem",
    "prepare",
]

#: First bytes each kind of payload must start with (an HTML error page sent with 200 fails this).
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
DICOM_MAGIC_OFFSET = 128


@dataclass(frozen=True)
class Call:
    """A request ready for either transport."""

    request: ApiRequest
    url: str
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str] = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    empty_body_is_no_rows: bool = True
    """NBIA sends nothing when nothing matches; the seed API always sends ``[]``."""

    @property
    def shown_url(self) -> str:
        """The full URL as it may be logged: the key is never in it."""
        query = urlencode([(k, v) for k, v in self.params])
        return redact_url(f"{self.url}?{query}" if query else self.url)

    @property
    def what(self) -> str:
        """A short description for messages: ``getSeries(Collection='TCGA-GBM')``."""
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params if k != "api_key")
        return f"{self.request.endpoint.name}({shown})"

    def redact(self, text: str) -> str:
        return redact_text(text, self.secret)


def prepare(config: TciaConfig, request: ApiRequest, *, path: str | None = None) -> Call:
    headers, auth_params = config.auth()
    return Call(
        request=request,
        url=config.url(path or request.path),
        params=(*request.params, *auth_params),
        headers={"Accept": "*/*", "User-Agent": "airflow-provider-tcia", **headers},
        secret=config.api_key,
        empty_body_is_no_rows=config.generation.empty_body_is_no_rows,
    )


def error_for_status(call: Call, status: int, body: bytes | str) -> TciaError:
    """The exception for a final (non-retryable, or retries exhausted) HTTP status."""
    shown = call.redact(excerpt(body))
    message = f"{call.what} → HTTP {status} from {call.shown_url}: {shown}"
    if status in (401, 403):
        hint = " (check the API key in the tcia connection's password)" if status == 401 else ""
        return TciaAuthError(message + hint)
    if status == 404:
        return TciaNotFoundError(message)
    if status in (400, 405, 409, 413, 414, 415, 422):
        return TciaBadRequestError(message)
    return TciaServerError(message)


def payload_problem(call: Call, first: bytes, *, expect: str) -> str | None:
    """Why the first bytes of a 200 response are not the payload asked for, or None if they may be.

    ``expect`` is ``json``, ``zip``, ``dicom`` or ``text``.
    """
    head = first.lstrip()
    if expect == "json":
        if not head and not call.empty_body_is_no_rows:
            return "the body is empty (this API answers [] when nothing matches)"
        if head and head[:1] not in (b"[", b"{"):
            return f"expected JSON but the body begins {excerpt(first)!r}"
    elif expect == "zip":
        if not first.startswith(ZIP_MAGIC):
            return f"expected a zip but the body begins {excerpt(first[:120])!r}" if first else "the body is empty"
    elif expect == "dicom" and (
        len(first) < DICOM_MAGIC_OFFSET + 4 or first[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] != b"DICM"
    ):
        return f"expected a DICOM file but the body begins {excerpt(first[:120])!r}" if first else "the body is empty"
    return None


def corrupt(call: Call, problem: str) -> TciaCorruptPayloadError:
    return TciaCorruptPayloadError(f"{call.what} → HTTP 200 from {call.shown_url}, but {call.redact(problem)}")


def exhausted(call: Call, tries: int, failure: str) -> TciaServerError:
    return TciaServerError(f"{call.what} failed after {tries} tries; last: {call.redact(failure)} ({call.shown_url})")
