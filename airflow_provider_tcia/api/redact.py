"""Keeping the API key out of everything we print."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY_KEYS = frozenset({"api_key", "apikey", "token", "access_token"})
REDACTED = "***"


def redact_url(url: str, *, drop: bool = False) -> str:
    """``url`` with the value of every secret query parameter (``api_key`` …) replaced by ``***``, or with
    those parameters left out altogether (``drop=True``, for what is stored rather than logged)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (key, REDACTED if key.lower() in SECRET_QUERY_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not (drop and key.lower() in SECRET_QUERY_KEYS)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*/")))


def redact_text(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites log records that contain a registered secret, replacing it with ``***``.

    Installed on the HTTP libraries' loggers, which log whole request URLs (urllib3 at DEBUG, httpx at INFO):
    with ``key_location=query`` those URLs carry the key.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            redacted = redact_text(message, *self.secrets)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


#: Loggers of the HTTP clients we use that print request URLs.
HTTP_LIBRARY_LOGGERS = ("urllib3.connectionpool", "httpx", "httpcore")
_FILTER = RedactSecretsFilter()


def register_secret(secret: str | None) -> None:
    """Keep ``secret`` out of the HTTP libraries' log lines (in addition to Airflow's own masking)."""
    if not secret:
        return
    if not _FILTER.secrets:
        for name in HTTP_LIBRARY_LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
    _FILTER.secrets.add(secret)
