"""What the sync (requests) and async (httpx) sides of the hook share: preparing a call, judging a response,
and the messages of the errors they raise. Only moving bytes is left to each side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from airflow_provider_tcia.api.generations import ApiRequest
from airflow_provider_tcia.api.redact import redact_text, redact_url
from airflow_provider_tcia.api.retry import RetryPolicy
from airflow_provider_tcia.api.uids import shown
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaCorruptPayloadError,
    TciaError,
    TciaNotFoundError,
    TciaServerError,
    excerpt,
)
from airflow_provider_tcia.hooks.config import TciaConfig

__all__ = [
    "Call",
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
    method: str = "GET"
    form: tuple[tuple[str, str], ...] = ()
    """A POST's form fields (API spellings): sent as the body, never in the URL."""

    @property
    def shown_url(self) -> str:
        """The full URL as it may be logged: the key is never in it."""
        query = urlencode([(k, v) for k, v in self.params])
        return redact_url(f"{self.url}?{query}" if query else self.url)

    @property
    def what(self) -> str:
        """A short description for messages: ``getSeries(Collection='TCGA-GBM')`` (a long value, such as a
        getSeriesMetadata chunk's thousand UIDs, cut to its start)."""
        given = ", ".join(f"{k}={shown(v)}" for k, v in (*self.form, *self.params) if k != "api_key")
        return f"{self.request.endpoint.name}({given})"

    def redact(self, text: str) -> str:
        return redact_text(text, self.secret)


def prepare(config: TciaConfig, request: ApiRequest, *, path: str | None = None) -> Call:
    headers, auth_params = config.auth()
    post = request.method == "POST"
    return Call(
        request=request,
        url=config.url(path or request.path),
        params=tuple(auth_params) if post else (*request.params, *auth_params),
        headers={"Accept": "*/*", "User-Agent": "airflow-provider-tcia", **headers},
        secret=config.api_key,
        empty_body_is_no_rows=config.generation.empty_body_is_no_rows,
        method=request.method,
        form=request.params if post else (),
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


@dataclass(frozen=True)
class Failure:
    """Why a try failed in a way worth another try."""

    message: str
    retry_after: str | None = None
    """The server's ``Retry-After``, if it sent one."""
    payload: bool = False
    """A 200 whose body is not what was asked for (reported as corrupt when no tries are left)."""


def judge(
    call: Call, status: int, headers: Mapping[str, str], head: bytes, *, expect: str, policy: RetryPolicy
) -> Failure | None:
    """Judge an answer by its status and first bytes: ``None`` if it is usable, a :class:`Failure` worth
    another try, or raise the final error (400/401/403/404 …). Shared by the sync and the async transport."""
    if status < 400:
        problem = payload_problem(call, head, expect=expect)
        return None if problem is None else Failure(problem, payload=True)
    if not policy.retryable_status(status):
        raise error_for_status(call, status, head)
    return Failure(f"HTTP {status}: {head[:200]!r}", headers.get("Retry-After"))


def next_delay(call: Call, policy: RetryPolicy, attempt: int, failure: Failure, log: Any) -> float:
    """Seconds to sleep before trying ``call`` again after failed try ``attempt`` (0-based, logged); raises the
    final error when the policy allows no more tries."""
    if not policy.can_retry(attempt):
        if failure.payload:
            raise corrupt(call, failure.message)
        raise exhausted(call, attempt + 1, failure.message)
    delay = policy.delay(attempt, failure.retry_after)
    log.warning(
        "TCIA %s: %s; retry %d/%d in %.1f s",
        call.request.endpoint.name, call.redact(failure.message), attempt + 1, policy.max_retries, delay,
    )  # fmt: skip
    return delay
