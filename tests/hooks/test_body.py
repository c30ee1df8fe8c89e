"""Reading a download with TciaStream.readinto (http.client's readinto into the caller's buffer): the same bytes
as iterating, the connection reused once a body is read to its end, a body cut short of its Content-Length or
broken off refused, and the fallback for responses that are not http.client's (test adapters)."""

from __future__ import annotations

import io
import socket
import threading
import zipfile

import pytest

from airflow_provider_tcia.exceptions import TciaIncompleteResponseError
from tests.emulator.conftest import GBM_SERIES, GBM_SOP


def read_all(stream, size: int = 1 << 20) -> bytes:
    out = bytearray()
    buffer = bytearray(size)
    while n := stream.readinto(buffer):
        out += buffer[:n]
    return bytes(out)


@pytest.mark.parametrize("size", [1000, 1 << 20])
def test_readinto_gives_the_same_zip_as_iterating(use_emulator, tcia_emulator, size):
    hook = use_emulator(tcia_emulator, "nbia")
    with hook.stream_image(GBM_SERIES) as stream:
        by_readinto = read_all(stream, size)
    with hook.stream_image(GBM_SERIES) as stream:
        by_iteration = b"".join(stream)
    assert by_readinto == by_iteration
    assert zipfile.ZipFile(io.BytesIO(by_readinto)).testzip() is None


def test_a_body_read_to_its_end_leaves_the_connection_for_the_next_request(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia")
    sockets = set()
    for _ in range(3):
        for open_stream in (
            lambda: hook.stream_image(GBM_SERIES),
            lambda: hook.stream_single_image(GBM_SERIES, GBM_SOP),
        ):
            with open_stream() as stream:
                assert read_all(stream)
            pool = next(iter(hook.session.adapters["http://"].poolmanager.pools._container.values()))
            idle = [c for c in list(pool.pool.queue) if c is not None]
            assert len(idle) == 1 and idle[0].sock is not None  # back in the pool, still open
            sockets.add(id(idle[0].sock))
    assert len(sockets) == 1


def test_a_broken_off_body_is_an_incomplete_response(use_emulator, tcia_emulator):
    hook = use_emulator(tcia_emulator, "nbia", max_retries=0)
    tcia_emulator.inject_fault("getImage", "reset", after_bytes=5000)
    with pytest.raises(TciaIncompleteResponseError, match="the connection broke"), hook.stream_image(GBM_SERIES) as s:
        read_all(s)


@pytest.fixture
def short_server():
    """An HTTP server whose DICOM body stops 100 bytes short of its Content-Length, then closes."""
    body = b"\0" * 128 + b"DICM" + b"x" * 1000
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/dicom\r\nContent-Length: {len(body) + 100}\r\n\r\n"
            conn.sendall(head.encode() + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    thread.join(5)


def test_a_body_short_of_its_content_length_is_an_incomplete_response(monkeypatch, short_server):
    import json

    from airflow_provider_tcia.hooks.tcia import TciaHook

    conn = {"conn_type": "tcia", "host": short_server, "extra": {"api": "nbia", "max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", json.dumps(conn))
    hook = TciaHook()
    with (
        pytest.raises(TciaIncompleteResponseError, match="100 short of its Content-Length"),
        hook.stream_single_image(GBM_SERIES, GBM_SOP) as stream,
    ):
        read_all(stream, 256)


def test_readinto_over_a_test_adapter(monkeypatch, requests_mock):
    from tests.downloads.test_series import NBIA_IMAGE, UID, series_zip, use

    hook = use(monkeypatch)
    body = series_zip()
    requests_mock.get(NBIA_IMAGE, content=body)
    with hook.stream_image(UID) as stream:
        assert read_all(stream, 777) == body
