"""TciaHook: TCIA's REST APIs (the key-based query API and NBIA) behind one interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from functools import cached_property
from typing import Any, Literal, overload

import httpx
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_tcia.api.endpoints import Endpoint, check_format, check_query, get_endpoint
from airflow_provider_tcia.api.formats import columns_of, iter_rendered
from airflow_provider_tcia.api.generations import ApiRequest
from airflow_provider_tcia.api.jsonstream import iter_json_array
from airflow_provider_tcia.api.redact import register_secret
from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.compat import (
    BaseHook,
    amask_secret,
    get_async_connection,
    mask_secret,
)
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaIncompleteResponseError, excerpt
from airflow_provider_tcia.hooks import computed, connection_form
from airflow_provider_tcia.hooks.body import TRANSIENT_SYNC, ResponseBody, TciaStream, iter_response_chunks
from airflow_provider_tcia.hooks.calls import (
    Call,
    Failure,
    corrupt,
    judge,
    next_delay,
    prepare,
)
from airflow_provider_tcia.hooks.config import TciaConfig, extra_secrets, parse_extras
from airflow_provider_tcia.hooks.paged import TciaPagedMethods
from airflow_provider_tcia.hooks.queries import TciaQueryMethods

_PEEK = 512
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
_TRANSIENT_ASYNC = (httpx.TransportError,)


class TciaHook(TciaQueryMethods, TciaPagedMethods, BaseHook):
    """Talks to The Cancer Imaging Archive through a ``tcia`` connection.

    The connection's password is the API key (the legacy API; NBIA needs none). Its extras choose the server:
    ``environment`` (``production`` or ``test``; ``nlst`` for NBIA's NLST host), ``api`` (``legacy``: the
    key-based query API, ``/services/<api_version>/TCIA/query``, v2 by default; ``nbia``: TCIA's current
    API, v4 with v1 where v4 lacks an endpoint), and optionally ``timeout``, ``max_retries``,
    ``retry_backoff``, ``verify``, ``proxies`` and ``key_location`` (``header`` or ``query``: where the
    legacy API's key goes). A host (with
    scheme and port) overrides the server root, e.g. to point at the bundled emulator or a proxy.

    Every endpoint has a method named after it in snake_case (:meth:`get_series`, :meth:`get_patient_study`,
    …) whose parameters are named after the API's (``collection``, ``patient_id``, ``series_instance_uid``,
    ``date`` …); :meth:`query` calls any endpoint by name. NBIA's many-request queries have their own:
    :meth:`get_series_metadata` (any number of UIDs, in chunks) and :meth:`get_simple_search` (criteria, every
    page). The same call works on both APIs: names,
    parameters and date formats are translated and rows normalised to the seed's field names.

    :param tcia_conn_id: the ``tcia`` connection to use.
    :param timeout: read timeout in seconds, overriding the connection's.
    :param max_retries: retries on connection errors, timeouts, 429 and 5xx, overriding the connection's.
    """

    conn_name_attr = "tcia_conn_id"
    default_conn_name = "tcia_default"
    conn_type = "tcia"
    hook_name = "The Cancer Imaging Archive (TCIA)"

    def __init__(
        self,
        tcia_conn_id: str = default_conn_name,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tcia_conn_id = tcia_conn_id
        self._overrides = {"timeout": timeout, "max_retries": max_retries}
        self._config: TciaConfig | None = None

    # --- connection ---------------------------------------------------------------------------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The form's extra fields, for Airflow 2.11 to 3.1 (3.2+ reads them from the provider info)."""
        return connection_form.form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form's standard fields, for Airflow 2.11 to 3.1 (3.2+ reads them from the provider info)."""
        return connection_form.hook_ui_field_behaviour()

    @property
    def config(self) -> TciaConfig:
        """The validated connection (read once)."""
        if self._config is None:
            conn = self.get_connection(self.tcia_conn_id)
            extra, secrets = _read_connection(conn)
            for secret in secrets:
                mask_secret(secret)
            self._config = self._build_config(conn, extra)
        return self._config

    async def aconfig(self) -> TciaConfig:
        """:attr:`config`, read without blocking the event loop (for triggers)."""
        if self._config is None:
            conn = await get_async_connection(self.tcia_conn_id, hook=self)
            extra, secrets = _read_connection(conn)
            for secret in secrets:
                await amask_secret(secret)
            self._config = self._build_config(conn, extra)
        return self._config

    def _build_config(self, conn: Any, extra: dict) -> TciaConfig:
        return TciaConfig.from_connection_fields(
            host=conn.host,
            schema=conn.schema,
            port=conn.port,
            password=conn.password,
            extra=extra,
            overrides=self._overrides,
        )

    @cached_property
    def session(self) -> requests.Session:
        """One pooled session per hook (shared by concurrent downloads)."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        config = self.config
        session.verify = config.verify
        if config.proxies:
            session.proxies.update(config.proxies)
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    # --- queries ------------------------------------------------------------------------------------
    # The endpoint methods (get_series …) are TciaQueryMethods'; each is query() on its endpoint.
    @overload
    def query(self, endpoint: str, *, format: Literal["json"] = "json", **params: Any) -> list[dict[str, Any]]: ...
    @overload
    def query(self, endpoint: str, *, format: str, **params: Any) -> list[dict[str, Any]] | str: ...
    def query(self, endpoint: str, *, format: str = "json", **params: Any) -> list[dict[str, Any]] | str:
        """Call a query endpoint by name (seed or NBIA spelling).

        :param endpoint: e.g. ``getSeries``, ``PatientsByModality`` or ``getPatientByCollectionAndModality``.
        :param format: ``json`` (the default: rows, normalised to the seed's field names), or ``csv``,
            ``xml`` or ``html`` (the text the server returned).
        :param params: the endpoint's parameters by Python name (``collection="TCGA-GBM"``).
        """
        fmt = check_format(format)
        ep, checked = self._checked(endpoint, params)
        if fmt == "json":
            return self._with_body_retries(lambda: list(self._iter_rows(ep, checked)))
        return self._with_body_retries(
            lambda: b"".join(self._iter_body(ep, checked, fmt)).decode("utf-8", errors="replace")
        )

    def iter_rows(self, endpoint: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The rows of a query endpoint, parsed as they stream in: memory does not grow with their number."""
        ep, checked = self._checked(endpoint, params)
        return self._iter_rows(ep, checked)

    def iter_text(self, endpoint: str, *, format: str, **params: Any) -> Iterator[bytes]:
        """The body of a query endpoint in ``format`` (json, csv, xml or html), in chunks, as the server sent
        it (or rendered by us from its rows where that server cannot produce the format)."""
        fmt = check_format(format)
        ep, checked = self._checked(endpoint, params)
        return self._iter_body(ep, checked, fmt)

    def get_metadata(self, endpoint: str) -> dict[str, Any]:
        """An endpoint's metadata (QueryName, Description, Parameters, Result with Attributes).

        The legacy API serves it at ``<endpoint>/metadata``; NBIA has no such endpoint, so for it the
        document is built from the provider's endpoint table in the same shape.
        """
        ep = get_endpoint(endpoint)
        config = self.config
        path = config.generation.metadata_path(ep)
        if path is None:
            return ep.metadata()
        call = prepare(config, ApiRequest(ep, path, (), None))
        with self._open(call, expect="json") as chunks:
            body = b"".join(chunks)
        try:
            return json.loads(body)
        except ValueError:
            raise corrupt(call, f"the metadata is not JSON: {body[:200]!r}") from None

    def test_connection(self) -> tuple[bool, str]:
        """One cheap request (getCollectionValues), for the UI's Test button."""
        try:
            rows = self.query("getCollectionValues")
        except Exception as err:
            return False, str(err)
        config = self.config
        return True, (
            f"Connected to {config.base_url} ({config.generation.name} API {config.generation.version}): "
            f"{len(rows)} collections"
        )

    def _checked(self, endpoint: str, params: dict[str, Any]) -> tuple[Endpoint, dict[str, Any]]:
        return check_query(endpoint, params)

    def _iter_rows(self, ep: Endpoint, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        config = self.config
        if not config.generation.serves(ep) and ep.legacy_from:
            yield from computed.legacy_rows(self, ep, params)
            return
        request = config.generation.query_request(ep, params, "json")  # (refuses an endpoint the API lacks)
        call = prepare(config, request)
        if ep.answer == "text":
            yield from self._text_rows(call)
            return
        with self._open(call, expect="json") as chunks:
            count = 0
            for row in iter_json_array(chunks, what=f"the answer to {call.what}"):
                if isinstance(row, dict):
                    count += 1
                    yield config.generation.normalise_row(row)
            self.log.info("TCIA %s: %d rows", ep.name, count)

    def text_value(self, endpoint: str, **params: Any) -> str | None:
        """The one value of a text/plain endpoint (getMD5Hierarchy …), ``None`` for an empty answer. An MD5
        comes in lower-case hex (anything else is a corrupt answer)."""
        ep, checked = self._checked(endpoint, params)
        if ep.answer != "text":
            raise TciaBadRequestError(f"{ep.name} answers rows, not one value; use query()")
        rows = self._with_body_retries(lambda: list(self._iter_rows(ep, checked)))
        return str(rows[0][ep.attributes[0]]) if rows else None

    def _text_rows(self, call: Call) -> Iterator[dict[str, Any]]:
        """A text/plain answer as one row named by the endpoint's attribute; none for an empty answer."""
        with self._open(call, expect="text") as chunks:
            body = b"".join(chunks)
        value = body.decode("utf-8", errors="replace").strip()
        endpoint = call.request.endpoint
        if endpoint.result == "MD5":
            value = value.strip('"').lower()
            if value and not _MD5_HEX.fullmatch(value):
                raise corrupt(call, f"the answer is not an MD5: {excerpt(body)!r}")
        self.log.info("TCIA %s: %s", endpoint.name, "a value" if value else "no value")
        if value:
            yield {endpoint.attributes[0]: value}

    def _iter_body(self, ep: Endpoint, params: dict[str, Any], fmt: str) -> Iterator[bytes]:
        config = self.config
        local = ep.answer == "text" or not config.generation.serves(ep)  # (a text answer, or computed here)
        request = None if local else config.generation.query_request(ep, params, fmt)
        if request is None or request.render_locally:
            rows = list(self._iter_rows(ep, params))
            for piece in iter_rendered(rows, columns_of(rows, ep.attributes), fmt):
                yield piece.encode()
            return
        call = prepare(config, request)
        with self._open(call, expect="json" if fmt == "json" else "text") as chunks:
            yield from chunks

    def _with_body_retries(self, consume):
        """Run ``consume`` (which reads a whole body), starting over if the body was cut off."""
        return retry_call(
            self.config.retry, consume, retry_on=(TciaIncompleteResponseError,), what="reading it", log=self.log
        )

    # --- downloads ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def stream_image(self, series_instance_uid: str, *, md5: bool = True) -> Iterator[TciaStream]:
        """Open getImage for a series: a zip of its DICOM files, streamed.

        :param md5: ask for ``md5hashes.csv`` in the zip where the API offers it (NBIA: ``IncludeMD5=Yes`` on
            v4, getImageWithMD5Hash on v1); the legacy API has none.
        """
        with self._stream("getImage", {"series_instance_uid": series_instance_uid}, md5=md5, expect="zip") as s:
            yield s

    @contextlib.contextmanager
    def stream_single_image(self, series_instance_uid: str, sop_instance_uid: str) -> Iterator[TciaStream]:
        """Open getSingleImage: one DICOM file, streamed."""
        params = {"series_instance_uid": series_instance_uid, "sop_instance_uid": sop_instance_uid}
        with self._stream("getSingleImage", params, md5=False, expect="dicom") as s:
            yield s

    @contextlib.contextmanager
    def _stream(self, endpoint: str, params: dict[str, Any], *, md5: bool, expect: str) -> Iterator[TciaStream]:
        ep = get_endpoint(endpoint)
        checked = ep.check_params(params)
        config = self.config
        request = config.generation.download_request(ep, checked, md5=md5)
        call = prepare(config, request)
        with self._open(call, expect=expect, keep_response=True) as (response, chunks):
            yield TciaStream(
                url=call.shown_url,
                headers=dict(response.headers),
                md5_included=md5 and config.generation.offers_md5() and ep.name == "getImage",
                _chunks=chunks,
            )

    # --- sync transport -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def open_stream(self, call: Call, *, expect: Literal["json", "text"] = "text") -> Iterator[Iterator[bytes]]:
        """Send a prepared call (:func:`~airflow_provider_tcia.hooks.calls.prepare`) with this hook's retries and
        checks (status, and the first bytes as ``expect`` says) and yield its body's chunks as they arrive, for an
        answer too long to read whole (NBIA's manifests: :mod:`airflow_provider_tcia.hooks.manifests`). The
        response is closed on leaving; a body cut off part-way raises
        :class:`~airflow_provider_tcia.exceptions.TciaIncompleteResponseError` while it is read.

        :param call: the request, as ``prepare(hook.config, request)`` makes it.
        :param expect: ``text`` (any text) or ``json`` (the body must begin like JSON).
        """
        with self._open(call, expect=expect) as chunks:
            yield chunks

    @contextlib.contextmanager
    def _open(self, call: Call, *, expect: str, keep_response: bool = False):
        """Send ``call`` with bounded retries; yield the body's chunks (with the response if asked)."""
        policy = self.config.retry
        attempt = 0
        failure: Failure | None
        while True:
            try:
                response = self.session.request(
                    call.method,
                    call.url,
                    params=call.params,
                    data=call.form or None,
                    headers=call.headers,
                    timeout=self.config.timeout,
                    stream=True,
                )
            except TRANSIENT_SYNC as err:
                failure = Failure(f"{type(err).__name__}: {err}")
            else:
                self.log.info(
                    "TCIA %s: %s %s → %s", call.request.endpoint.name, call.method, call.shown_url, response.status_code
                )
                # A download is read with http.client's readinto (see ResponseBody); a query's chunks are parsed.
                reader = ResponseBody(call, response) if keep_response else None
                chunks = iter_response_chunks(call, response) if reader is None else iter(())
                try:
                    if response.status_code >= 400:
                        head = _head(response)
                    else:
                        head = reader.peek(_PEEK) if reader is not None else next(chunks, b"")
                    failure = judge(call, response.status_code, response.headers, head, expect=expect, policy=policy)
                except TciaIncompleteResponseError as err:
                    failure = Failure(str(err))
                except BaseException:
                    response.close()  # a final error (401, 404 …)
                    raise
                if failure is None:
                    body = reader if reader is not None else _prepend(head, chunks)
                    try:
                        yield (response, body) if keep_response else body
                    finally:
                        response.close()
                    return
                response.close()
            time.sleep(next_delay(call, policy, attempt, failure, self.log))
            attempt += 1

    # --- async side (triggers) ----------------------------------------------------------------------
    async def aquery(self, endpoint: str, **params: Any) -> list[dict[str, Any]]:
        """:meth:`query` (JSON rows) on the event loop, for triggers: the same URLs, parameters,
        normalisation and retry decisions, over httpx."""
        config = await self.aconfig()
        ep, checked = self._checked(endpoint, params)
        call = prepare(config, config.generation.query_request(ep, checked, "json"))
        body = await self._aget(call, expect="text" if ep.answer == "text" else "json")
        if ep.answer == "text":
            value = body.decode("utf-8", errors="replace").strip()
            return [{ep.attributes[0]: value}] if value else []
        return [
            config.generation.normalise_row(row)
            for row in iter_json_array([body], what=f"the answer to {call.what}")
            if isinstance(row, dict)
        ]

    async def _aget(self, call: Call, expect: str = "json") -> bytes:
        config = await self.aconfig()
        policy = config.retry
        connect, read = config.timeout
        timeout = httpx.Timeout(read, connect=connect)
        attempt = 0
        failure: Failure | None
        async with httpx.AsyncClient(timeout=timeout, verify=config.verify, proxy=_proxy(config)) as client:
            while True:
                try:
                    response = await client.request(
                        call.method,
                        call.url,
                        params=list(call.params),
                        data=dict(call.form) if call.form else None,
                        headers=call.headers,
                    )
                except _TRANSIENT_ASYNC as err:
                    failure = Failure(f"{type(err).__name__}: {err}")
                else:
                    body = response.content
                    failure = judge(
                        call, response.status_code, response.headers, body[:_PEEK], expect=expect, policy=policy
                    )
                    if failure is None:
                        return body
                await asyncio.sleep(next_delay(call, policy, attempt, failure, self.log))
                attempt += 1


def _read_connection(conn: Any) -> tuple[dict[str, Any], list[str]]:
    """A connection's extras (parsed from its JSON text, not ``extra_dejson``: see ``parse_extras``) and its
    secrets — the key and any proxy password — already kept out of the HTTP libraries' log lines; the caller
    registers them with Airflow's masker, sync or async."""
    extra = parse_extras(conn.extra)
    secrets = [s for s in (conn.password, *extra_secrets(extra)) if s]
    for secret in secrets:
        register_secret(secret)
    return extra, secrets


def _head(response: requests.Response) -> bytes:
    try:
        return response.raw.read(_PEEK, decode_content=True) or b""
    except Exception:
        return b""


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _proxy(config: TciaConfig) -> str | None:
    if not config.proxies:
        return None
    return config.proxies.get("https") or config.proxies.get("http")
