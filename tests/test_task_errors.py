"""Errors that no retry can fix end the task at once, without its Airflow retries; transient ones keep them."""

from __future__ import annotations

import datetime as dt
import json

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
from tests.dags import load_dag

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
@pytest.mark.parametrize(
    "connection",
    [
        pytest.param(lambda emulator: emulator.connection_json(api="legacy", api_key="not-the-key"), id="wrong-key"),
        pytest.param(
            lambda emulator: json.dumps({**json.loads(emulator.connection_json(api="nbia")), "extra": {"api": "nbai"}}),
            id="typo-in-the-connection",
        ),
    ],
)
def test_a_task_that_no_retry_can_fix_fails_on_its_first_try(airflow_db, tcia_emulator, monkeypatch, connection):
    """Through a real DAG run (an example DAG, its query tasks given retries=2): each fails after one try."""
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", connection(tcia_emulator))
    dag = load_dag("tcia_query_new_data")
    for task_id in ("new_patients", "new_studies"):
        task = dag.get_task(task_id)
        task.retries, task.retry_delay = 2, dt.timedelta(0)
    run = dag.test(run_conf={"output_root": f"file://{airflow_db}/fail-fast"})
    assert run.state == "failed"
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    for task_id in ("new_patients", "new_studies"):
        assert str(tis[task_id].state) == "failed"
        assert tis[task_id].try_number == 1  # not up_for_retry: its retries were not used


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
