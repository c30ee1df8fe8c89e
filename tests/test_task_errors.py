"""Errors that no retry can fix end the task at once, without its Airflow retries; transient ones keep them.

The same through a real DAG run: ``tests/example_dags/test_query_examples.py``."""

from __future__ import annotations

import pytest

from airflow_provider_tcia.compat import AirflowFailException, AirflowNotFoundException
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaConfigurationError,
    TciaCorruptPayloadError,
    TciaDownloadError,
    TciaNotFoundError,
    TciaServerError,
)
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from airflow_provider_tcia.task_errors import fail_fast, is_permanent

KEY = "fail-fast-key-5a9c"


@pytest.mark.parametrize(
    "error",
    [
        TciaAuthError("HTTP 401"),
        TciaBadRequestError("bad"),
        TciaConfigurationError("api='x'"),
        TciaNotFoundError("404"),
        AirflowNotFoundException("The conn_id `tcia_nope` isn't defined"),
        TciaDownloadError("2 of 2 failed", failures={"1.2": TciaAuthError("401"), "1.3": TciaNotFoundError("404")}),
    ],
)
def test_permanent_errors_fail_without_retries(error):
    assert is_permanent(error)
    with pytest.raises(AirflowFailException, match=f"^{type(error).__name__}: ") as caught, fail_fast():
        raise error
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error",
    [
        TciaServerError("HTTP 503 after 5 retries"),
        TciaCorruptPayloadError("truncated zip"),
        OSError("disk full"),
        TciaDownloadError("2 of 2 failed", failures={"1.2": TciaAuthError("401"), "1.3": TciaServerError("503")}),
    ],
)
def test_transient_errors_keep_their_retries(error):
    assert not is_permanent(error)
    with pytest.raises(type(error)), fail_fast():
        raise error


@pytest.mark.integration
@pytest.mark.tcia_emulator(api_key=KEY)
def test_a_series_the_server_does_not_know_fails_at_once(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "legacy", api_key=KEY)
    op = TciaDownloadSeriesOperator(
        task_id="d", series_instance_uids="1.2.840.99999.1", destination=f"file://{tmp_path}"
    )
    with pytest.raises(
        AirflowFailException, match=r"^TciaNotFoundError: series 1\.2\.840\.99999\.1 not found on the server"
    ):
        run_operator(op)
    assert list(tmp_path.iterdir()) == []
