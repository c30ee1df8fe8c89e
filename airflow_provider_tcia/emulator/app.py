"""The emulator as a Python object: start it, stop it, drive it, point an Airflow connection at it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

from airflow_provider_tcia.emulator.control import Control, LocalControl
from airflow_provider_tcia.emulator.server import EmulatorHTTPServer


class Emulator(Control):
    """A TCIA emulator: a real HTTP server on a background thread.

    Use it as a context manager (or :meth:`start`/:meth:`stop`); its control methods (:meth:`publish`,
    :meth:`inject_fault` …) act on the running server directly.

    :param host: the address to listen on.
    :param port: the port; 0 picks a free one.
    :param api_key: when set, the seed API answers 401 to requests without this key.
    :param dataset: ``default``, ``test`` or ``scaled``.
    :param verbose: log every request to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        dataset: str = "default",
        verbose: bool = False,
    ) -> None:
        self.control = LocalControl(dataset, api_key)
        self._address = (host, port)
        self._verbose = verbose
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._thread is not None:
            return self
        server = self._bound()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="tcia-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if thread is not None and server is not None:
            server.shutdown()  # (waits for a serving loop: only when one runs)
            thread.join(timeout=5)
        if server is not None:
            server.server_close()

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (the command line)."""
        server = self._bound()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()

    def bind(self) -> Emulator:
        """Open the listening socket without serving yet (so the port is known before serving)."""
        self._bound()
        return self

    def _bound(self) -> EmulatorHTTPServer:
        if self._server is None:
            self._server = EmulatorHTTPServer(self._address, self.control, verbose=self._verbose)
        return self._server

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where it is ------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return int(self._server.server_address[1])

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:51234`` (append the API's paths to it)."""
        return f"http://{self._netloc}"

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"Emulator({where}, dataset={self.control.dataset_name!r})"

    # --- Airflow connections ----------------------------------------------------------------------------
    @property
    def api_key(self) -> str | None:
        """The key the seed API requires now (``None``: none)."""
        return self.control.responder.api_key

    def _key(self, api_key: str | None) -> str | None:
        return self.api_key if api_key is None else (api_key or None)

    def connection_uri(self, api: str = "legacy", api_key: str | None = None, **extras: Any) -> str:
        """An Airflow connection URI pointing at this emulator, e.g.
        ``tcia://:KEY@127.0.0.1:PORT/http?api=nbia`` (the path is the connection's ``schema``, which the
        hook uses as the URL scheme).

        :param api: ``legacy`` (the seed API) or ``nbia``.
        :param api_key: the key to put in the password field; the emulator's own key by default, ``""`` for none.
        :param extras: more extras (``api_version``, ``environment``, ``api_key_in`` …).
        """
        key = self._key(api_key)
        auth = f":{quote(key, safe='')}@" if key else ""
        query = urlencode({"api": api, **{k: _extra_text(v) for k, v in extras.items()}})
        return f"tcia://{auth}{self._netloc}/http?{query}"

    def connection_json(self, api: str = "legacy", api_key: str | None = None, **extras: Any) -> str:
        """The same connection in Airflow's JSON form (for ``AIRFLOW_CONN_<ID>``)."""
        conn: dict[str, Any] = {"conn_type": "tcia", "host": self.url}
        key = self._key(api_key)
        if key:
            conn["password"] = key
        conn["extra"] = {"api": api, **extras}
        return json.dumps(conn)

    # --- control (delegated) ----------------------------------------------------------------------------
    def publish(self, collection: str, **options: Any) -> dict[str, Any]:
        return self.control.publish(collection, **options)

    def revise(self, series_instance_uid: str, **options: Any) -> dict[str, Any]:
        return self.control.revise(series_instance_uid, **options)

    def add_synthetic_series(self, size_bytes: int, **options: Any) -> dict[str, Any]:
        return self.control.add_synthetic_series(size_bytes, **options)

    def reset(self) -> None:
        self.control.reset()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self.control.requests(since)

    def clear_requests(self) -> None:
        self.control.clear_requests()

    def inject_fault(self, endpoint: str = "*", kind: str = "server_error", count: int = 1, **options: Any) -> dict:
        return self.control.inject_fault(endpoint, kind, count, **options)

    def faults(self) -> list[dict[str, Any]]:
        return self.control.faults()

    def clear_faults(self) -> None:
        self.control.clear_faults()

    def info(self) -> dict[str, Any]:
        return self.control.info()

    def set_api_key(self, api_key: str | None) -> None:
        self.control.set_api_key(api_key)

    @contextmanager
    def with_api_key(self, api_key: str | None) -> Iterator[Emulator]:
        """Require ``api_key`` on the seed API for the ``with`` block (``None``: accept every request)."""
        previous = self.api_key
        self.set_api_key(api_key)
        try:
            yield self
        finally:
            self.set_api_key(previous)


def _extra_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@contextmanager
def run_emulator(
    host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None, dataset: str = "default"
) -> Iterator[Emulator]:
    """Start an emulator for the ``with`` block::

    with run_emulator(api_key="secret") as tcia:
        requests.get(f"{tcia.url}/services/v2/TCIA/query/getCollectionValues", headers={"api_key": "secret"})
    """
    emulator = Emulator(host, port, api_key=api_key, dataset=dataset)
    with emulator:
        yield emulator
