"""Triggers asking the same question share one poll per interval (triggers/shared_poll.py): real event loop,
real time (short intervals), a fake hook counting requests; the 1,000-trigger figures are in make bench."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

from airflow_provider_tcia.exceptions import TciaServerError
from airflow_provider_tcia.triggers import shared_poll
from airflow_provider_tcia.triggers.shared_poll import Subscription
from airflow_provider_tcia.triggers.tcia import TciaQueryTrigger
from tests.triggers.test_tcia_triggers import first_event

INTERVAL = 0.2


class CountingHook:
    def __init__(self, rows=None, error=None):
        self.rows, self.error = rows if rows is not None else [], error
        self.requests: list[tuple[str, dict]] = []
        self.closed = 0

    async def aconfig(self):
        return mock.Mock(api_key="k")

    async def aquery(self, endpoint, **params):
        self.requests.append((endpoint, params))
        if self.error is not None:
            raise self.error
        return list(self.rows)

    def close(self):
        self.closed += 1


def subscription(hook, params=None, interval=INTERVAL):
    return Subscription(
        "tcia_default", "getSeries", params or {"collection": "C"}, interval=interval, make_hook=lambda _: hook
    )


@pytest.mark.asyncio
async def test_many_subscribers_share_one_request_per_interval():
    hook = CountingHook(rows=[{"SeriesInstanceUID": "1.2"}])

    async def look(times):
        async with subscription(hook) as question:
            return [await question.next(1) for _ in range(times)]

    results = await asyncio.gather(*(look(3) for _ in range(200)))
    assert all(p.outcome == "found" for polls in results for p in polls)
    assert len(hook.requests) == 3  # three looks each, one request per look for all 200
    assert hook.closed == 1  # the last to leave stopped the poller and closed its hook
    assert shared_poll.pollers() == {}


@pytest.mark.asyncio
async def test_a_late_subscriber_takes_a_fresh_answer_at_once_and_distinct_questions_poll_apart():
    hook = CountingHook(rows=[])
    async with subscription(hook) as first:
        await first.next(1)
        async with subscription(hook) as late, subscription(hook, {"collection": "D"}) as other:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert (await late.next(1)).outcome == "waiting"
            assert loop.time() - started < INTERVAL / 2  # no wait: the latest answer is younger than one interval
            await other.next(1)
    assert [params["collection"] for _, params in hook.requests] == ["C", "D"]


@pytest.mark.asyncio
async def test_each_subscriber_judges_rows_with_its_own_min_rows_and_errors_reach_all():
    hook = CountingHook(rows=[{"SeriesInstanceUID": "1.2"}])
    async with subscription(hook) as one, subscription(hook) as three:
        assert (await one.next(1)).outcome == "found"
        assert (await three.next(3)).outcome == "waiting"
    failing = CountingHook(error=TciaServerError("HTTP 503"))
    async with subscription(failing) as a, subscription(failing) as b:
        assert [(await a.next(1)).outcome, (await b.next(1)).outcome] == ["transient", "transient"]
    assert len(failing.requests) == 1


@pytest.mark.asyncio
async def test_a_watcher_whose_question_changes_moves_to_that_questions_poller():
    hook = CountingHook(rows=[])
    async with subscription(hook) as question:
        await question.next(1)
        question.ask({"collection": "C", "date": "2024-05-02"})
        await question.next(1)
        assert list(shared_poll.pollers()) == [
            shared_poll._key("tcia_default", "getSeries", {"collection": "C", "date": "2024-05-02"}, INTERVAL)
        ]
    assert hook.closed == 2 and shared_poll.pollers() == {}


@pytest.mark.asyncio
async def test_a_poller_that_dies_raises_in_every_subscriber_instead_of_leaving_them_waiting():
    class Broken(BaseException):
        pass

    def make_hook(_):
        raise Broken("no hook")

    async with Subscription("c", "getSeries", {}, interval=INTERVAL, make_hook=make_hook) as question:
        with pytest.raises(Broken):
            await asyncio.wait_for(question.next(1), timeout=5)


@pytest.mark.asyncio
async def test_query_triggers_on_the_same_question_share_the_poll(monkeypatch):
    hook = CountingHook(rows=[])
    monkeypatch.setattr("airflow_provider_tcia.triggers.tcia._make_hook", lambda _: hook)
    triggers = [
        TciaQueryTrigger(endpoint="getSeries", query_params={"collection": "C"}, poke_interval=INTERVAL)
        for _ in range(50)
    ]

    tasks = [asyncio.create_task(first_event(t)) for t in triggers]
    await asyncio.sleep(INTERVAL * 2.5)  # three polls: at 0, 1 and 2 intervals
    hook.rows = [{"SeriesInstanceUID": "1.2"}]
    events = await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    assert {e.payload["status"] for e in events} == {"success"}
    assert 3 <= len(hook.requests) <= 5  # one per interval for all 50, not 50 per interval
