"""The provider's exceptions: one small family, each message saying what was asked and what came back.

Messages never contain the API key: callers build them from redacted URLs
(:func:`airflow_provider_tcia.api.redact.redact_url`) and the first bytes of the body.
"""

from __future__ import annotations

from collections.abc import Mapping

#: How much of a response body an error message quotes.
BODY_EXCERPT = 300


class TciaError(Exception):
    """Base class of every error raised by this provider.

    Deliberately free of Airflow imports: the API core and the bundled emulator use it without Airflow.
    """


class TciaConfigurationError(TciaError, ValueError):
    """The ``tcia`` connection is unusable (unknown ``environment`` or ``api``, bad ``timeout`` …)."""


class TciaBadRequestError(TciaError, ValueError):
    """The request is wrong: rejected by us before sending (missing parameter, bad date, unknown endpoint
    or format) or by the server with HTTP 400/422. Never retried."""


class TciaUnknownCollectionError(TciaBadRequestError):
    """The request names a collection the server does not list (getCollectionValues): a sensor on it would
    wait for ever, because TCIA answers such a query like one with nothing to show — no rows, status 200.
    The message names the server's closest collections."""


class TciaAuthError(TciaError):
    """The server refused the credentials (HTTP 401/403). Never retried."""


class TciaNotFoundError(TciaError):
    """The server answered 404 (an unknown endpoint or series). Never retried."""


class TciaServerError(TciaError):
    """The server failed (5xx, 429, connection error or timeout) and retries were exhausted."""


class TciaIncompleteResponseError(TciaServerError):
    """The body ended early: the connection broke while it was read, or it stopped before its end (a JSON
    array cut off). The request may be retried as a whole by whoever can start the consumer over."""


class TciaCorruptPayloadError(TciaError):
    """The server answered 200 but the payload is not what was asked for: an HTML error page, a body
    that is not JSON, a truncated or corrupt zip, a file count or an MD5 that does not match."""


class TciaCorruptDicomError(TciaCorruptPayloadError):
    """A DICOM file whose structure is broken: a data element longer than what is left of the file, native
    pixel data shorter than Rows x Columns x … say, encapsulated pixel data or a sequence that never ends, an
    image without its pixel data — what a body cut short under a consistent Content-Length, or a file
    truncated on the server, leaves behind."""


class ZipVerificationError(TciaCorruptPayloadError):
    """The zip is truncated or corrupt, or its contents do not match what was expected."""


class TciaStoredDataError(TciaError):
    """What is at the destination does not match what was verified while it was written (a file missing or
    of another size once moved into place): nothing is called verified, and the data is removed again."""


class TciaDownloadError(TciaError):
    """Some series of a task could not be downloaded (each after its own retries).

    :param failures: what failed, by SeriesInstanceUID (or image), and why.
    """

    def __init__(self, message: str, *, failures: Mapping[str, BaseException] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


class DownloadStopped(TciaError):
    """The task was asked to stop; the series in flight were abandoned and cleaned up."""


class BodyFailure(TciaError):
    """A failure while reading or verifying a body: worth downloading the series (or image) again.

    The download engines' signal to start over (:func:`~airflow_provider_tcia.api.retry.retry_call`); it never
    leaves them: once retries are spent, the wrapped :attr:`error` is raised instead."""

    def __init__(self, error: TciaError) -> None:
        super().__init__(str(error))
        self.error = error


class TciaResultTooLargeError(TciaError, ValueError):
    """A result too large to push to XCom; write it to ``output_path`` instead."""


class TciaFeatureUnavailableError(TciaError, RuntimeError):
    """The installed Airflow lacks what a feature needs (an asset watcher on Airflow 2.11, say)."""


#: Errors that no retry can fix — the request, the key, the connection or the installed Airflow is wrong:
#: a task that meets one fails at once instead of using its Airflow retries.
PERMANENT_ERRORS: tuple[type[TciaError], ...] = (
    TciaAuthError,
    TciaBadRequestError,
    TciaConfigurationError,
    TciaNotFoundError,
    TciaResultTooLargeError,
    TciaFeatureUnavailableError,
)


def excerpt(body: bytes | str | None, limit: int = BODY_EXCERPT) -> str:
    """The start of a response body, printable, for an error message."""
    if not body:
        return "<empty body>"
    if isinstance(body, bytes):
        body = body[:limit].decode("utf-8", errors="replace")
    text = " ".join(body[:limit].split())
    return text + ("…" if len(body) > limit else "")
