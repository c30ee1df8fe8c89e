"""The ``tcia`` connection, read into a validated configuration.

Pure: no I/O, so the sync and the async side of the hook build it the same way from the connection's
fields, and every mistake in the connection is reported before any request is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_tcia.api.generations import GENERATIONS, ApiGeneration, get_generation
from airflow_provider_tcia.api.retry import RetryPolicy
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaConfigurationError

DEFAULT_API = "legacy"
DEFAULT_ENVIRONMENT = "production"
KEY_LOCATIONS = ("header", "query")
DEFAULT_KEY_LOCATION = "header"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_BACKOFF = 1.0


@dataclass(frozen=True)
class TciaConfig:
    """Everything the hook needs from a ``tcia`` connection."""

    base_url: str
    """The server root, without a trailing slash (``https://services.cancerimagingarchive.net``)."""
    generation: ApiGeneration
    environment: str = "production"
    api_key: str | None = field(default=None, repr=False)
    key_location: str = "header"
    timeout: tuple[float, float] = (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify: bool | str = True
    proxies: Mapping[str, str] | None = None

    @classmethod
    def from_connection_fields(
        cls,
        *,
        host: str | None,
        schema: str | None = None,
        port: int | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> TciaConfig:
        """Build from a connection's fields; ``overrides`` (the hook's own arguments) win over extras."""
        extras = _plain_extras(extra or {})
        extras.update({k: v for k, v in (overrides or {}).items() if v is not None})

        api = _choice(extras.get("api", DEFAULT_API), "api", tuple(GENERATIONS))
        generation = get_generation(api, extras.get("api_version") or None)
        environment = str(extras.get("environment") or DEFAULT_ENVIRONMENT).strip().lower()
        default_root = generation.server(environment)  # validates environment even when host overrides it

        # `api_key_in` (the name first proposed) is accepted, but Airflow's masker treats any extra whose name
        # contains "api_key" as a secret and would mask its value ("query") out of every log line.
        location = extras.get("key_location", extras.get("api_key_in", DEFAULT_KEY_LOCATION))
        key_location = _choice(location, "key_location", KEY_LOCATIONS)
        read_timeout = _number(extras.get("timeout"), "timeout", DEFAULT_READ_TIMEOUT, minimum=0.001)
        max_retries = int(_number(extras.get("max_retries"), "max_retries", DEFAULT_MAX_RETRIES, minimum=0))
        backoff = _number(extras.get("retry_backoff"), "retry_backoff", DEFAULT_RETRY_BACKOFF, minimum=0.001)
        verify = extras.get("verify", True)
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        proxies = _proxies(extras.get("proxies"))

        return cls(
            base_url=_root(host, schema, port, default_root),
            generation=generation,
            environment=environment,
            api_key=password or None,
            key_location=key_location,
            timeout=(min(DEFAULT_CONNECT_TIMEOUT, read_timeout), read_timeout),
            retry=RetryPolicy(max_retries=max_retries, backoff=backoff),
            verify=verify,
            proxies=dict(proxies) if proxies else None,
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def auth(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """(headers, query parameters) that carry the API key, if any.

        NBIA v4 rejects unknown query parameters with 400, so the key never goes in its query string.
        """
        if not self.api_key:
            return {}, []
        if self.key_location == "query" and self.generation.name == "legacy":
            return {}, [("api_key", self.api_key)]
        return {"api_key": self.api_key}, []


def parse_extras(text: str | None) -> dict[str, Any]:
    """A connection's extras, parsed from its ``extra`` JSON text.

    Not through ``Connection.extra_dejson``: on Airflow 3.3 that registers *every* extra value with the secrets
    masker, so a 4-letter value such as ``nbia`` logs "Skipping masking for a secret as it's too short" in every
    task, and words such as ``legacy`` or ``production`` would be masked out of every log line. None of the
    ``tcia`` connection's extras is a secret but a proxy's credentials, which :func:`extra_secrets` names for
    masking; the API key is the connection's password, masked as such.
    """
    if text is None or not str(text).strip():
        return {}
    try:
        extra = json.loads(text)
    except ValueError:
        raise TciaConfigurationError("the tcia connection's extra is not JSON") from None
    if not isinstance(extra, dict):
        raise TciaConfigurationError(f"the tcia connection's extra must be a JSON object, not {type(extra).__name__}")
    return extra


def extra_secrets(extra: Mapping[str, Any]) -> list[str]:
    """What in the extras must be masked: the passwords of proxy URLs (``http://user:password@proxy:3128``)."""
    try:
        proxies = _proxies(_plain_extras(extra).get("proxies")) or {}
    except TciaConfigurationError:  # reported when the configuration is built
        return []
    secrets = []
    for url in proxies.values():
        try:
            password = urlsplit(str(url)).password
        except ValueError:
            continue
        if password:
            secrets.append(password)
    return secrets


def _proxies(value: Any) -> Mapping[str, Any] | None:
    """The ``proxies`` extra as a mapping: given as one, or as its JSON (the connection form's text field)."""
    proxies = value
    if isinstance(value, str):
        try:
            proxies = json.loads(value)
        except ValueError:
            proxies = None
    if value is not None and not isinstance(proxies, Mapping):
        raise TciaConfigurationError(
            f'proxies must be a mapping, or its JSON, such as {{"https": "http://proxy:3128"}}, not {value!r}'
        )
    return proxies


def _plain_extras(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Extras by plain name; the UI's legacy ``extra__tcia__<name>`` spelling is accepted too."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        name = key.removeprefix("extra__tcia__")
        if value in ("", None):
            continue
        out[name] = value
    return out


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise TciaConfigurationError(f"the tcia connection's {name}={value!r} is not one of {', '.join(allowed)}")
    return text


def _number(value: Any, name: str, default: float, *, minimum: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TciaConfigurationError(f"the tcia connection's {name}={value!r} is not a number") from None
    if number < minimum:
        raise TciaConfigurationError(f"the tcia connection's {name}={value!r} must be at least {minimum}")
    return number


def _root(host: str | None, schema: str | None, port: int | None, default_root: str) -> str:
    """The server root from the connection's host (with or without scheme), schema (as scheme) and port.

    The Port field is honoured wherever it is given (Airflow 3.3.1 and 3.3.2's Test button needs a stored port, see
    the README's connection section): with a host, it is the host's port (a host URL naming another port is a contradiction
    reported here); without one, TCIA's own servers are used, so only their own port (443) is accepted.
    """
    if not host or not host.strip():
        default = urlsplit(default_root)
        own_port = default.port or _DEFAULT_PORTS[default.scheme]
        if port and port != own_port:
            raise TciaConfigurationError(
                f"the tcia connection's port={port} has no host: TCIA's own servers listen on {own_port}; "
                "give the host too (e.g. http://127.0.0.1 for the emulator) or leave the port empty"
            )
        return default_root
    host = host.strip().rstrip("/")
    if "://" in host:
        parts = urlsplit(host)
        if parts.scheme.lower() not in _DEFAULT_PORTS:
            raise TciaConfigurationError(f"the tcia connection's host={host!r} must be an http or https URL")
        named = parts.port
        if port and named is not None and named != port:
            raise TciaConfigurationError(
                f"the tcia connection's host={host!r} names port {named} but its port field says {port}: "
                "give the port in one place"
            )
        if port and named is None:
            host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))
    else:
        scheme = (schema or "https").strip().lower()
        if scheme not in _DEFAULT_PORTS:
            raise TciaConfigurationError(
                f"the tcia connection's schema={schema!r} is used as the URL scheme: give http or https"
            )
        host = f"{scheme}://{host}"
        if port:
            host = f"{host}:{port}"
    return host


_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_conn_id(value: object) -> str:
    """A rendered ``tcia_conn_id``, stripped; a clear error if it names no connection."""
    if not isinstance(value, str) or not value.strip():
        raise TciaBadRequestError(f"tcia_conn_id must name a connection, not {value!r}")
    return value.strip()
