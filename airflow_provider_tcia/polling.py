"""One poll of a TCIA query endpoint, judged once for every waiter (sensors, triggers, the asset watcher).

A poll ends in one of four outcomes:

* ``found`` — the query returned at least ``min_rows`` rows;
* ``waiting`` — it returned fewer: not there yet, ask again later;
* ``transient`` — the server failed (5xx, 429, a broken connection, a payload that was not what was asked
  for) even after the hook's own retries: worth asking again after a pause;
* ``fatal`` — asking again cannot help: the key was refused, the request is wrong, the endpoint does not
  exist, the connection is unusable or missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from airflow_provider_tcia.api.redact import redact_text
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaConfigurationError,
    TciaCorruptPayloadError,
    TciaError,
    TciaNotFoundError,
    TciaServerError,
    TciaUnknownCollectionError,
)
from airflow_provider_tcia.task_errors import is_permanent

Outcome = Literal["found", "waiting", "transient", "fatal"]

#: Errors worth another poll after ``poke_interval`` (the hook has already retried them with backoff).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TciaServerError,
    TciaCorruptPayloadError,
    httpx.HTTPError,
    OSError,
    TimeoutError,
)

#: The exception classes an error event may name, so the sensor re-raises the same type.
ERROR_TYPES: dict[str, type[TciaError]] = {
    cls.__name__: cls
    for cls in (
        TciaAuthError,
        TciaBadRequestError,
        TciaUnknownCollectionError,
        TciaNotFoundError,
        TciaConfigurationError,
        TciaServerError,
        TciaCorruptPayloadError,
        TciaError,
    )
}


@dataclass(frozen=True)
class Poll:
    """What one poll found."""

    outcome: Outcome
    rows: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    """For ``transient`` and ``fatal``: what was asked and what went wrong, the API key redacted."""
    error_type: str | None = None
    """For ``transient`` and ``fatal``: the exception's class name."""


def classify(error: BaseException) -> Outcome:
    """``fatal`` or ``transient`` for an exception raised by a query."""
    if is_permanent(error):  # the key, the request, the endpoint or the connection is wrong
        return "fatal"
    if isinstance(error, TRANSIENT_ERRORS):
        return "transient"
    # Anything else is a bug or a misconfiguration we cannot recognise: polling again would only repeat it.
    return "fatal"


def judge(rows: list[dict[str, Any]], min_rows: int) -> Poll:
    """``found`` when there are at least ``min_rows`` rows, else ``waiting``."""
    return Poll("found" if len(rows) >= min_rows else "waiting", rows)


def failed(error: BaseException, *, secret: str | None = None) -> Poll:
    """The :class:`Poll` for a query that raised ``error``; the message never contains ``secret``."""
    message = redact_text(f"{type(error).__name__}: {error}", secret)
    return Poll(classify(error), message=message, error_type=type(error).__name__)


async def apoll_once(hook: Any, endpoint: str, params: dict[str, Any], *, min_rows: int = 1) -> Poll:
    """Ask ``endpoint`` once through ``hook.aquery`` and judge the answer; never raises for query errors.

    :param hook: a :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`.
    :param endpoint: a query endpoint's name (``NewStudiesInPatientCollection``).
    :param params: its parameters by Python name; dates as ISO strings.
    :param min_rows: how many rows count as found.
    """
    secret = None
    try:
        config = await hook.aconfig()
        secret = config.api_key
        rows = await hook.aquery(endpoint, **params)
    except Exception as err:
        return failed(err, secret=secret)
    return judge(rows, min_rows)


def poll_once(hook: Any, endpoint: str, params: dict[str, Any], *, min_rows: int = 1) -> Poll:
    """:func:`apoll_once` for the worker (poke and reschedule modes), through ``hook.query``."""
    secret = None
    try:
        secret = hook.config.api_key
        rows = hook.query(endpoint, **params)
    except Exception as err:
        return failed(err, secret=secret)
    return judge(rows, min_rows)


def jsonable(value: Any) -> Any:
    """``value`` with dates and datetimes as ISO strings, so it can travel in trigger kwargs and events."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
