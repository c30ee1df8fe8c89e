"""One poll, judged once: found / waiting / transient / fatal, with the key never in a message."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import httpx
import pytest

from airflow_provider_tcia.compat import AirflowNotFoundException
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaConfigurationError,
    TciaCorruptPayloadError,
    TciaIncompleteResponseError,
    TciaNotFoundError,
    TciaServerError,
)
from airflow_provider_tcia.polling import apoll_once, classify, jsonable, judge, poll_once

KEY = "sekrit-key-0123456789"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TciaAuthError("401"), "fatal"),
        (TciaBadRequestError("400"), "fatal"),
        (TciaNotFoundError("404"), "fatal"),
        (TciaConfigurationError("bad extra"), "fatal"),
        (AirflowNotFoundException("The conn_id `x` isn't defined"), "fatal"),
        (RuntimeError("a bug"), "fatal"),
        (TciaServerError("503 after retries"), "transient"),
        (TciaIncompleteResponseError("reset"), "transient"),
        (TciaCorruptPayloadError("html page"), "transient"),
        (httpx.ConnectError("refused"), "transient"),
        (ConnectionResetError("reset"), "transient"),
        (TimeoutError(), "transient"),
    ],
)
def test_classify(error, outcome):
    assert classify(error) == outcome


def test_judge_counts_rows_against_min_rows():
    rows = [{"a": 1}, {"a": 2}]
    assert judge(rows, 1).outcome == "found"
    assert judge(rows, 2).outcome == "found"
    assert judge(rows, 3).outcome == "waiting"
    assert judge([], 1).rows == []


def _hook(*, rows=None, error=None):
    hook = mock.Mock()
    hook.config.api_key = KEY
    hook.aconfig = mock.AsyncMock(return_value=hook.config)
    hook.query = mock.Mock(return_value=rows, side_effect=error)
    hook.aquery = mock.AsyncMock(return_value=rows, side_effect=error)
    return hook


@pytest.mark.asyncio
async def test_apoll_once_found_and_waiting():
    hook = _hook(rows=[{"StudyInstanceUID": "1.2"}])
    poll = await apoll_once(hook, "getSeries", {"collection": "C"}, min_rows=1)
    assert poll.outcome == "found"
    assert poll.rows == [{"StudyInstanceUID": "1.2"}]
    hook.aquery.assert_awaited_once_with("getSeries", collection="C")
    assert (await apoll_once(hook, "getSeries", {}, min_rows=2)).outcome == "waiting"


@pytest.mark.asyncio
async def test_apoll_once_error_message_never_holds_the_key():
    hook = _hook(error=TciaAuthError(f"HTTP 401 for api_key={KEY}"))
    poll = await apoll_once(hook, "getSeries", {})
    assert poll.outcome == "fatal"
    assert poll.error_type == "TciaAuthError"
    assert KEY not in poll.message
    assert "HTTP 401" in poll.message


def test_poll_once_sync_side_judges_the_same():
    assert poll_once(_hook(rows=[]), "getSeries", {}).outcome == "waiting"
    poll = poll_once(_hook(error=TciaServerError(f"503 {KEY}")), "getSeries", {})
    assert poll.outcome == "transient"
    assert KEY not in poll.message


def test_jsonable_turns_dates_into_iso_strings():
    value = {"date": dt.date(2024, 5, 1), "at": dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC), "l": (1, "x")}
    assert jsonable(value) == {"date": "2024-05-01", "at": "2024-05-01T12:00:00+00:00", "l": [1, "x"]}
