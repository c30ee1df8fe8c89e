"""What the HTTP layer hands to the responders and gets back: plain data, no sockets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from airflow_provider_tcia.emulator.zipstream import ZipEntry


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    """Case-insensitive (an ``email.message.Message`` from ``http.server``)."""
    form: tuple[tuple[str, str], ...] = ()
    """A POSTed ``application/x-www-form-urlencoded`` body."""

    def first(self, name: str, source: str = "query") -> str | None:
        for key, value in self.query if source == "query" else self.form:
            if key == name:
                return value
        return None


@dataclass
class Response:
    """A response before it is written.

    ``body`` is bytes (sent with ``Content-Length``) or an iterable of bytes (sent with ``Content-Length``
    when it turns out small, chunked otherwise). ``zip_entries`` instead of a body means "a zip of these",
    always chunked: the HTTP layer encodes it, so a fault can alter the entries without the responder
    knowing.
    """

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    zip_entries: Iterable[ZipEntry] | None = None
    size_hint: Callable[[], int] | None = None
    """The body's full length, computed on demand (where a cut-short fault cuts by default)."""


def text(status: int, message: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, [("Content-Type", content_type)], message.encode("utf-8"))


def as_json(status: int, value: object) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(value).encode("utf-8"))
