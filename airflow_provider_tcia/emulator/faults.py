"""Fault injection: what can go wrong between a TCIA client and the server, one fault at a time.

A :class:`Fault` targets an endpoint (its seed name such as ``getImage``, an NBIA name such as
``getImageWithMD5Hash``, or ``*``) and lasts for its next ``count`` requests. The HTTP layer asks the
:class:`FaultPlan` for the fault of each request and applies it around the responders, which never see it:

==============  ======================================================================================
kind            effect
==============  ======================================================================================
rate_limit      429 with ``Retry-After: <retry_after>`` (seconds, default 1)
server_error    ``status`` 500, 502, 503 (default) or 504 with a gateway-style body
latency         the real answer, ``seconds`` (default 1.0) late
reset           the real answer's status and headers, then a TCP reset after ``after_bytes`` of body
truncate        status 200 and a body cut at ``after_bytes`` (a zip cut short), correctly terminated; with
                ``content_length=True`` always framed by a ``Content-Length`` equal to the cut length (a
                small body always is; a streamed one, a zip, is otherwise chunked)
bad_md5         a download whose ``md5hashes.csv`` gives a wrong hash for the first file
html_error      status 200 with an HTML error page instead of the payload
empty_body      status 200 with an empty body
==============  ======================================================================================

``after_bytes`` defaults to half the body.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_tcia.emulator.messages import Response, text
from airflow_provider_tcia.emulator.zipstream import ZipEntry

KINDS = ("rate_limit", "server_error", "latency", "reset", "truncate", "bad_md5", "html_error", "empty_body")
SERVER_ERROR_STATUSES = (500, 502, 503, 504)

_GATEWAY_BODIES = {
    500: ("text/plain; charset=utf-8", "Server was not able to process your request"),
    502: ("text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
          "Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
    503: ("text/html", "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
          "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
          "</body>\r\n</html>\r\n"),
    504: ("text/html", "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 "
          "Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
}  # fmt: skip
HTML_ERROR_PAGE = (
    '<!doctype html><html lang="en"><head><title>HTTP Status 500 &ndash; Internal Server Error</title></head>'
    '<body><h1>HTTP Status 500 &ndash; Internal Server Error</h1><hr class="line" /><p><b>Type</b> Exception '
    'Report</p><p><b>Message</b> Request processing failed</p><hr class="line" /><h3>Apache Tomcat</h3>'
    "</body></html>"
)


class BodyCut(Exception):
    """Raised by a :class:`CutWriter` once the allowed bytes are written."""


@dataclass
class Fault:
    """One injected fault. Build with :meth:`from_dict` to get validation."""

    kind: str
    endpoint: str = "*"
    count: int = 1
    """How many more matching requests it affects."""
    api: str | None = None
    """Only requests to this generation (``legacy`` or ``nbia``); both when ``None``."""
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None
    after_bytes: int | None = None
    content_length: bool | None = None
    """``truncate`` only: send the cut body with a Content-Length that matches it, streamed bodies too."""
    id: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """A validated fault from a plain mapping (the JSON of ``POST /_emulator/faults``)."""
        known = {
            "kind",
            "endpoint",
            "count",
            "api",
            "status",
            "retry_after",
            "seconds",
            "after_bytes",
            "content_length",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault options {sorted(unknown)}; known: {sorted(known)}")
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(KINDS)}")
        fault = cls(
            kind=str(kind),
            endpoint=str(data.get("endpoint") or "*"),
            count=int(data.get("count", 1)),
            api=None if data.get("api") is None else str(data["api"]),
            status=None if data.get("status") is None else int(data["status"]),
            retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
            seconds=None if data.get("seconds") is None else float(data["seconds"]),
            after_bytes=None if data.get("after_bytes") is None else int(data["after_bytes"]),
            content_length=None if data.get("content_length") is None else data["content_length"],
        )
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        if fault.api not in (None, "legacy", "nbia"):
            raise ValueError(f"api={fault.api!r} is not legacy or nbia")
        if kind == "server_error":
            fault.status = fault.status or 503
            if fault.status not in SERVER_ERROR_STATUSES:
                raise ValueError(f"server_error status must be one of {SERVER_ERROR_STATUSES}")
        elif fault.status is not None:
            raise ValueError("status is only for server_error")
        if kind == "rate_limit" and fault.retry_after is None:
            fault.retry_after = 1
        if kind == "latency" and fault.seconds is None:
            fault.seconds = 1.0
        if fault.after_bytes is not None and fault.after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        if fault.content_length is not None:
            if not isinstance(fault.content_length, bool):
                raise ValueError(f"content_length must be true or false, not {fault.content_length!r}")
            if kind != "truncate":
                raise ValueError("content_length is only for truncate")
        return fault

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def matches(self, names: Collection[str], api: str) -> bool:
        return (self.endpoint == "*" or self.endpoint in names) and self.api in (None, api)

    # --- effects (applied by the HTTP layer) ------------------------------------------------------------
    def replacement(self) -> Response | None:
        """The response that replaces the real one, for the kinds that do."""
        if self.kind == "rate_limit":
            response = text(429, "Too Many Requests")
            response.headers.append(("Retry-After", _seconds(self.retry_after or 0)))
            return response
        if self.kind == "server_error":
            content_type, body = _GATEWAY_BODIES[self.status or 503]
            return text(self.status or 503, body, content_type)
        if self.kind == "html_error":
            return text(200, HTML_ERROR_PAGE, "text/html;charset=utf-8")
        if self.kind == "empty_body":
            return text(200, "", "application/json")
        return None

    @property
    def delay(self) -> float:
        return (self.seconds or 0.0) if self.kind == "latency" else 0.0

    @property
    def cuts_body(self) -> bool:
        return self.kind in ("reset", "truncate")

    def cut_at(self, size_hint: Callable[[], int] | None) -> int:
        """Where the body stops: ``after_bytes`` (at most the whole body, when its size is known), else half the
        body, else 1 KiB."""
        if self.after_bytes is not None:
            return self.after_bytes if size_hint is None else min(self.after_bytes, size_hint())
        if size_hint is not None:
            return max(size_hint() // 2, 1)
        return 1024

    def transform_entries(self, entries: Iterable[ZipEntry]) -> Iterator[ZipEntry]:
        """The zip's entries, with the first hash of ``md5hashes.csv`` made wrong for ``bad_md5``."""
        for entry in entries:
            if self.kind == "bad_md5" and entry.name == "md5hashes.csv":
                yield ZipEntry(entry.name, [_corrupt_first_hash(b"".join(entry.parts))])
            else:
                yield entry


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _corrupt_first_hash(csv: bytes) -> bytes:
    lines = csv.decode("utf-8").split("\n")
    if len(lines) > 1 and "," in lines[1]:
        name, good = lines[1].rsplit(",", 1)
        lines[1] = f"{name},{hashlib.md5(good.encode()).hexdigest()}"
    return "\n".join(lines).encode("utf-8")


class CutWriter:
    """Passes writes through until ``limit`` bytes are written, then raises :class:`BodyCut`."""

    def __init__(self, write: Callable[[bytes | memoryview], None], limit: int) -> None:
        self._write = write
        self._left = limit

    def __call__(self, data: bytes | memoryview) -> None:
        if len(data) < self._left:
            self._write(data)
            self._left -= len(data)
            return
        if self._left:
            self._write(memoryview(data)[: self._left])
        self._left = 0
        raise BodyCut


class FaultPlan:
    """The injected faults, consumed by the requests they match. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def take(self, names: Collection[str], api: str) -> Fault | None:
        """The first fault matching this request, its count decremented (removed at zero)."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(names, api):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def list(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
