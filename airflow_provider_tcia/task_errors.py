"""How a task ends on an error: at once when no retry can fix it, else through Airflow's retries.

A refused API key, a typo in the connection, a rejected parameter or a series the server does not know fail
the same way on every try, so a task that meets one raises :class:`AirflowFailException` (its Airflow retries
are not used: with ``retries=2`` and a 5-minute delay a typo would otherwise take 15 minutes to fail). Server
failures, broken connections and corrupt payloads that outlived the hook's own bounded retries propagate as
they are, and Airflow retries the task as configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow_provider_tcia.compat import AirflowFailException, AirflowNotFoundException
from airflow_provider_tcia.exceptions import PERMANENT_ERRORS


def is_permanent(error: BaseException) -> bool:
    """Whether asking again cannot help: see :data:`~airflow_provider_tcia.exceptions.PERMANENT_ERRORS`; a
    missing connection; a failed download whose every failure is permanent."""
    if isinstance(error, (*PERMANENT_ERRORS, AirflowNotFoundException)):
        return True
    failures = getattr(error, "failures", None)  # TciaDownloadError: one error per series or image
    if isinstance(failures, dict) and failures:
        return all(is_permanent(err) for err in failures.values())
    return False


def failure(error: BaseException) -> AirflowFailException:
    """The :class:`AirflowFailException` that ends a task at once on ``error``, naming it (its cause)."""
    failed = AirflowFailException(f"{type(error).__name__}: {error}")
    failed.__cause__ = error
    return failed


@contextlib.contextmanager
def fail_fast() -> Iterator[None]:
    """Turn a permanent error into :func:`failure`, keep the rest."""
    try:
        yield
    except AirflowFailException:
        raise
    except Exception as err:
        if is_permanent(err):
            raise failure(err) from err
        raise
