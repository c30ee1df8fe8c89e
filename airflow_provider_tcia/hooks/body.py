"""Reading a response body on the sync side: chunks for queries, ``readinto`` a reused buffer for downloads.

Every way a body can break mid-read becomes one :class:`TciaIncompleteResponseError` whose message names the
call and its URL (key redacted).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import requests

from airflow_provider_tcia.exceptions import TciaIncompleteResponseError
from airflow_provider_tcia.hooks.calls import Call

CHUNK = 1 << 20
TRANSIENT_SYNC = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


@dataclass
class TciaStream:
    """An open download: iterate it for the body's chunks, or :meth:`readinto` a buffer of your own (no copy
    and no allocation per chunk); the connection is closed when the ``with`` ends. Use one or the other."""

    url: str
    """The request URL, safe to log (no key)."""
    headers: dict[str, str]
    md5_included: bool
    """Whether the zip carries ``md5hashes.csv`` (NBIA only)."""
    _chunks: Iterable[bytes]
    """The body: a :class:`ResponseBody` (read into buffers) or any iterable of chunks."""

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` with the next bytes of the body (completely, unless the body ends first); the count,
        0 at the end. Raises :class:`TciaIncompleteResponseError` if the connection breaks."""
        if not isinstance(self._chunks, ResponseBody):  # (a plain iterable of chunks)
            self._chunks = ResponseBody.of_chunks(iter(self._chunks))
        return self._chunks.readinto(buffer)


@dataclass(frozen=True)
class _Socket:
    """A body read from :mod:`http.client`'s response itself, with the call and response it belongs to."""

    call: Call
    response: requests.Response
    fp: http.client.HTTPResponse


class ResponseBody:
    """A download's body, read from the socket by :mod:`http.client` straight into the caller's buffer.

    requests' ``iter_content`` on a chunked body yields one piece per HTTP chunk (a few KiB each from some
    servers), each a new ``bytes``; ``readinto`` decodes the chunked framing into one large, reused buffer
    instead. Bodies that are content-encoded (or a response object that is not :mod:`http.client`'s, as with
    test adapters) are read through ``iter_content`` and copied into the buffer.
    """

    def __init__(self, call: Call, response: requests.Response) -> None:
        fp = getattr(response.raw, "_fp", None)
        encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        if isinstance(fp, http.client.HTTPResponse) and encoding in ("", "identity"):
            self._start(_Socket(call, response, fp), iter(()))
        else:
            self._start(None, iter_response_chunks(call, response))

    def _start(self, socket: _Socket | None, chunks: Iterator[bytes]) -> None:
        self._socket = socket  # where the body is read from the socket (``chunks`` is then empty)
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.position = 0

    @classmethod
    def of_chunks(cls, chunks: Iterator[bytes]) -> ResponseBody:
        body = cls.__new__(cls)
        body._start(None, chunks)
        return body

    def peek(self, size: int) -> bytes:
        """The first bytes of the body (at most ``size`` when read from the socket); they are read again."""
        first = self._read(self._socket, size) if self._socket is not None else next(self._chunks, b"")
        self._pending = memoryview(first)
        return first

    def _read(self, socket: _Socket, size: int) -> bytes:
        try:
            data = socket.fp.read(size)
        except (http.client.HTTPException, OSError, ValueError) as err:
            raise broken_body(socket.call, err) from None
        if not data:
            self._at_end(socket)
        self.position += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if self._pending:
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        socket = self._socket
        if socket is None:
            chunk = next(self._chunks, b"")
            self._pending = memoryview(chunk)
            return self.readinto(buffer) if chunk else 0
        try:
            n = socket.fp.readinto(buffer)
        except (http.client.HTTPException, OSError, ValueError) as err:
            raise broken_body(socket.call, err) from None
        if not n:
            self._at_end(socket)
        self.position += n
        return n

    def __iter__(self) -> Iterator[bytes]:
        if self._pending:
            yield bytes(self._pending)
            self._pending = memoryview(b"")
        socket = self._socket
        if socket is None:
            yield from self._chunks
            return
        while chunk := self._read(socket, CHUNK):
            yield chunk

    def _at_end(self, socket: _Socket) -> None:
        fp = socket.fp
        if fp.length:  # (http.client reports a body cut short of its Content-Length as its end)
            raise TciaIncompleteResponseError(
                f"{socket.call.what}: the body ended after {self.position:,} bytes, {fp.length:,} short of its "
                f"Content-Length, from {socket.call.shown_url}"
            )
        if fp.isclosed():
            socket.response.raw.release_conn()  # read to its end: the connection can serve another request


def iter_response_chunks(call: Call, response: requests.Response) -> Iterator[bytes]:
    try:
        for chunk in response.iter_content(CHUNK):
            if chunk:
                yield chunk
    except (*TRANSIENT_SYNC, requests.exceptions.ContentDecodingError) as err:
        raise broken_body(call, err) from None


def broken_body(call: Call, err: BaseException) -> TciaIncompleteResponseError:
    """The error for a body whose connection broke while it was being read."""
    return TciaIncompleteResponseError(
        f"{call.what}: the connection broke while reading the body ({type(err).__name__}: "
        f"{call.redact(str(err))}) from {call.shown_url}"
    )
