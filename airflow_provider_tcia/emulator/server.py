"""The HTTP layer: sockets in, :class:`~.messages.Response` out, faults applied around the responders.

``http.server`` with a thread per connection and HTTP/1.1 keep-alive. Bodies are written with large,
scatter-gather ``sendmsg`` calls: a zip's DICOM pixel data goes from the frame cache to the socket without
being copied, and downloads use chunked transfer encoding without ``Content-Length``, like NBIA.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_provider_tcia.emulator.admin import handle_admin
from airflow_provider_tcia.emulator.control import ADMIN_PREFIX, LocalControl
from airflow_provider_tcia.emulator.faults import BodyCut, CutWriter, Fault
from airflow_provider_tcia.emulator.messages import Request, Response, text
from airflow_provider_tcia.emulator.responses import Target, route
from airflow_provider_tcia.emulator.zipstream import iter_zip

#: Pieces at least this long are sent as they are (no copy into the buffer).
BIG_PIECE = 64 * 1024
#: Small pieces are gathered up to this size before a send.
SEND_BUFFER = 256 * 1024
#: A streamed body that ends within this many bytes is sent with Content-Length instead of chunked.
LENGTH_THRESHOLD = 1024 * 1024


class _Aborted(Exception):
    """The connection was reset on purpose (a ``reset`` fault)."""


def _send_vectored(sock: socket.socket, buffers: list[bytes | bytearray | memoryview]) -> None:
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    while views:
        sent = sock.sendmsg(views)
        while sent and views:
            if sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0


class _BodyWriter:
    """Buffers small pieces, sends big ones without copying; frames chunks when ``chunked``."""

    def __init__(self, sock: socket.socket, chunked: bool) -> None:
        self._sock = sock
        self._chunked = chunked
        self._buffer = bytearray()
        self.sent = 0

    def write(self, data: bytes | memoryview) -> None:
        if len(data) < BIG_PIECE:
            self._buffer += data
            if len(self._buffer) >= SEND_BUFFER:
                self.flush()
            return
        self._send([self._buffer, data])
        self._buffer = bytearray()

    def flush(self) -> None:
        if self._buffer:
            self._send([self._buffer])
            self._buffer = bytearray()

    def finish(self) -> None:
        self.flush()
        if self._chunked:
            _send_vectored(self._sock, [b"0\r\n\r\n"])

    def _send(self, pieces: list[bytes | bytearray | memoryview]) -> None:
        size = sum(len(p) for p in pieces)
        if self._chunked:
            pieces = [f"{size:x}\r\n".encode(), *pieces, b"\r\n"]
        _send_vectored(self._sock, pieces)
        self.sent += size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TCIA-Emulator/1.0"
    disable_nagle_algorithm = True
    timeout = 300
    server: EmulatorHTTPServer

    def handle(self) -> None:
        try:
            super().handle()
        except _Aborted:
            pass
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_GET

    # --- one request ------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        control = self.server.control
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = tuple(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            self._send(handle_admin(control, self.command, path, query, body), None)
            return
        entry = control.log.record(self.command, path, query, self.headers.items())
        form: tuple[tuple[str, str], ...] = ()
        if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = tuple(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            entry["form"] = control.log.redacted(form)  # (what a POST asked: getSimpleSearch's pages, chunks)
        # http.server's headers are an email.message.Message: read as a Mapping, not one for typeshed.
        request = Request(self.command, path, query, self.headers, form)  # type: ignore[arg-type]
        target = route(path)
        fault: Fault | None = None
        response: Response | None
        entry |= {"api": None, "endpoint": None, "fault": None}
        if target is None:
            response = text(404, f"Not Found: {path}")
        else:
            entry |= {"api": target.api, "endpoint": target.path_name}
            response = control.responder.unauthorised(request, target)
            if response is None:
                fault = control.fault_plan.take(target.names, target.api)
                if fault is not None:
                    entry["fault"] = fault.kind
                    if fault.delay:
                        time.sleep(fault.delay)
                    response = fault.replacement()
                if response is None:
                    response = self._respond(request, target)
        entry["status"] = response.status
        self._send(response, fault)

    def _respond(self, request: Request, target: Target) -> Response:
        try:
            return self.server.control.responder.respond(request, target)
        except Exception:  # a bug in the emulator: say so instead of dropping the connection
            trace = traceback.format_exc()
            sys.stderr.write(trace)
            return text(500, f"TCIA emulator error\n{trace}")

    # --- writing ----------------------------------------------------------------------------------------
    def _send(self, response: Response, fault: Fault | None) -> None:
        cut = fault if fault is not None and fault.cuts_body else None
        if response.zip_entries is not None:
            entries = fault.transform_entries(response.zip_entries) if fault else response.zip_entries
            self._send_stream(response, iter_zip(entries), cut)
            return
        body: bytes | bytearray
        if isinstance(response.body, bytes | bytearray):
            body = response.body
        else:
            head, rest = _prefetch(response.body, LENGTH_THRESHOLD)
            if rest is not None:
                self._send_stream(response, _chain(head, rest), cut)
                return
            body = b"".join(head)
        size = len(body)
        at = cut.cut_at(lambda: size) if cut else None
        if cut is not None and cut.kind == "truncate":
            body = body[:at]
        self._start(response, [("Content-Length", str(len(body)))])
        if self.command == "HEAD":
            return
        writer = _BodyWriter(self.connection, chunked=False)
        if cut is not None and cut.kind == "reset":
            writer.write(body[:at])
            writer.flush()
            self._abort()
        writer.write(body)
        writer.flush()

    def _send_stream(self, response: Response, pieces: Iterable[bytes], cut: Fault | None) -> None:
        if cut is not None and cut.kind == "truncate" and cut.content_length:
            self._send_cut_with_length(response, pieces, cut.cut_at(response.size_hint))
            return
        self._start(response, [("Transfer-Encoding", "chunked")])
        if self.command == "HEAD":
            return
        writer = _BodyWriter(self.connection, chunked=True)
        write = writer.write if cut is None else CutWriter(writer.write, cut.cut_at(response.size_hint))
        try:
            for piece in pieces:
                write(piece)
        except BodyCut:
            assert cut is not None
            if cut.kind == "reset":
                writer.flush()
                self._abort()
        writer.finish()

    def _send_cut_with_length(self, response: Response, pieces: Iterable[bytes], at: int) -> None:
        """The first ``at`` bytes of a streamed body under ``Content-Length: <at>``: a cut body the client cannot
        tell from a whole one by its framing. (Should the body end before ``at`` — a fault's ``after_bytes``
        beyond a body of unknown size — the connection is closed short of its Content-Length.)"""
        self._start(response, [("Content-Length", str(at))])
        if self.command == "HEAD":
            return
        writer = _BodyWriter(self.connection, chunked=False)
        write = CutWriter(writer.write, at)
        try:
            for piece in pieces:
                write(piece)
        except BodyCut:
            pass
        writer.flush()
        if writer.sent < at:
            self.close_connection = True

    def _start(self, response: Response, framing: list[tuple[str, str]]) -> None:
        self.send_response(response.status)
        for name, value in (*response.headers, *framing):
            self.send_header(name, value)
        self.end_headers()

    def _abort(self) -> None:
        """Reset the connection (RST, not FIN) and stop handling it."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
        except OSError:
            pass
        raise _Aborted


def _prefetch(pieces: Iterable[bytes], limit: int) -> tuple[list[bytes], Iterator[bytes] | None]:
    """The first pieces up to ``limit`` bytes, and the rest (``None`` when there is no more)."""
    it = iter(pieces)
    head: list[bytes] = []
    size = 0
    for piece in it:
        head.append(piece)
        size += len(piece)
        if size >= limit:
            return head, it
    return head, None


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one emulator's :class:`LocalControl`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], control: LocalControl, *, verbose: bool = False) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.control = control
        self.verbose = verbose
        super().__init__(address, _Handler)
