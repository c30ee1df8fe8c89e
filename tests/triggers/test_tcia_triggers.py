"""The triggers without a server: serialisation, every outcome of the loop, sleeping on every path, and the
watcher's progress across restarts (the hook's async side mocked; see test_triggers_emulator.py for the
real thing)."""

from __future__ import annotations

import asyncio
import datetime as dt
from unittest import mock

import pytest

from airflow_provider_tcia.compat import AIRFLOW_V_3_0_PLUS, AssetWatcher, asset
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaFeatureUnavailableError,
    TciaServerError,
)
from airflow_provider_tcia.triggers.tcia import TciaNewStudiesEventTrigger, TciaQueryTrigger

KEY = "sekrit-key-0123456789"


class Exhausted(BaseException):
    """Raised by the fake hook when the test has no more answers: stops an endless watcher loop."""


class FakeHook:
    """Answers ``aquery`` from a script: a list of rows, or an exception to raise, per call; getCollectionValues
    (the collection check) from a script of its own, since the shared poller asks concurrently with it."""

    def __init__(self, *answers, collections=()):
        self.answers = list(answers)
        self.collections = list(collections)
        self.calls: list[tuple[str, dict]] = []
        self.config = mock.Mock(api_key=KEY)
        self.made = 0  # by the trigger's _make_hook (this one object stands for each hook it makes)
        self.closed = 0

    def close(self):
        self.closed += 1

    async def aconfig(self):
        return self.config

    async def aquery(self, endpoint, **params):
        self.calls.append((endpoint, params))
        script = self.collections if endpoint == "getCollectionValues" else self.answers
        if not script:
            raise Exhausted
        answer = script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.fixture
def sleeps(monkeypatch):
    """Record every sleep of the triggers' loops (and do not really wait). The query trigger waits for its
    shared poller (triggers/shared_poll.py), which sleeps after every answer, the last one included (it is
    cancelled while sleeping once the trigger has fired): one sleep per poll."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds, *args, **kwargs):
        slept.append(round(seconds, 1))  # the poller keeps a cadence: interval minus the time its poll took
        await real_sleep(0)

    monkeypatch.setattr("airflow_provider_tcia.triggers.tcia.asyncio.sleep", fake_sleep)
    return slept


def use_hook(monkeypatch, hook):
    def make(conn_id):
        hook.made += 1
        return hook

    monkeypatch.setattr("airflow_provider_tcia.triggers.tcia._make_hook", make)
    return hook


def studies(*uids):
    return [{"StudyInstanceUID": uid, "PatientID": f"P-{uid}", "Collection": "C"} for uid in uids]


async def first_event(trigger):
    agen = trigger.run()
    try:
        return await agen.__anext__()
    finally:
        await agen.aclose()


# --- TciaQueryTrigger --------------------------------------------------------------------------------
def query_trigger(**kwargs):
    defaults = {
        "endpoint": "NewStudiesInPatientCollection",
        "query_params": {"collection": "C", "date": dt.date(2024, 5, 1)},
        "poke_interval": 7,
    }
    return TciaQueryTrigger(**(defaults | kwargs))


def test_query_trigger_serialize_round_trip():
    trigger = query_trigger(min_rows=2, max_rows=3, timeout_at="2030-01-01T00:00:00+00:00", tcia_conn_id="t")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_tcia.triggers.tcia.TciaQueryTrigger"
    assert kwargs == {
        "endpoint": "NewStudiesInPatientCollection",
        "query_params": {"collection": "C", "date": "2024-05-01"},
        "tcia_conn_id": "t",
        "poke_interval": 7.0,
        "min_rows": 2,
        "max_rows": 3,
        "timeout_at": "2030-01-01T00:00:00+00:00",
        "check_collection": None,
    }
    assert TciaQueryTrigger(**kwargs).serialize() == (classpath, kwargs)
    checking = query_trigger(check_collection="C").serialize()[1]
    assert checking["check_collection"] == "C"
    assert TciaQueryTrigger(**checking).serialize()[1] == checking


@pytest.mark.parametrize("interval", [0, -1, "5", None])
def test_query_trigger_refuses_a_poke_interval_that_would_hot_loop(interval):
    with pytest.raises(ValueError, match="poke_interval"):
        query_trigger(poke_interval=interval)


@pytest.mark.asyncio
async def test_query_trigger_found_at_once(monkeypatch, sleeps):
    hook = use_hook(monkeypatch, FakeHook(studies("1", "2", "3")))
    event = await first_event(query_trigger(max_rows=2))
    assert event.payload == {"status": "success", "rows": studies("1", "2"), "row_count": 3}
    assert hook.calls == [("NewStudiesInPatientCollection", {"collection": "C", "date": "2024-05-01"})]
    assert sleeps == [7.0]  # the poller's, after its one answer


@pytest.mark.asyncio
async def test_query_trigger_waits_until_enough_rows_sleeping_each_time(monkeypatch, sleeps):
    use_hook(monkeypatch, FakeHook([], studies("1"), studies("1", "2")))
    event = await first_event(query_trigger(min_rows=2))
    assert event.payload["status"] == "success"
    assert event.payload["row_count"] == 2
    assert sleeps == [7.0, 7.0, 7.0]


@pytest.mark.asyncio
async def test_query_trigger_retries_transient_errors_after_sleeping(monkeypatch, sleeps):
    hook = use_hook(monkeypatch, FakeHook(TciaServerError("HTTP 503"), OSError("reset"), studies("1")))
    event = await first_event(query_trigger())
    assert event.payload["status"] == "success"
    assert len(hook.calls) == 3
    assert sleeps == [7.0, 7.0, 7.0]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (TciaAuthError(f"HTTP 401 api_key={KEY}"), "TciaAuthError"),
        (TciaBadRequestError("HTTP 400"), "TciaBadRequestError"),
    ],
)
async def test_query_trigger_ends_on_fatal_errors(monkeypatch, sleeps, error, error_type):
    use_hook(monkeypatch, FakeHook(error))
    event = await first_event(query_trigger())
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == error_type
    assert KEY not in event.payload["message"]
    assert sleeps == [7.0]  # the poller's, after its one answer; the trigger itself ended at once


@pytest.mark.asyncio
async def test_query_trigger_times_out_at_its_deadline(monkeypatch, sleeps):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    hook = use_hook(monkeypatch, FakeHook())
    event = await first_event(query_trigger(timeout_at=past))
    assert event.payload["status"] == "timeout"
    assert hook.calls == []


@pytest.mark.asyncio
async def test_query_trigger_waits_no_longer_than_the_deadline(monkeypatch):
    """With a 60 s interval and a deadline 0.5 s away, the wait for the next answer ends at the deadline."""
    import time

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)).isoformat()
    use_hook(monkeypatch, FakeHook([], studies("1")))
    started = time.monotonic()
    event = await first_event(query_trigger(timeout_at=soon, poke_interval=60))
    assert event.payload["status"] == "timeout"
    assert time.monotonic() - started < 10


# --- the collection check handed over by the sensor -----------------------------------------------------
LISTED = [{"Collection": "C"}, {"Collection": "TCGA-BRCA"}, {"Collection": "TCGA-GBM"}]


@pytest.mark.asyncio
async def test_query_trigger_ends_at_its_first_poll_on_an_unknown_collection(monkeypatch, sleeps):
    hook = use_hook(monkeypatch, FakeHook([], [], collections=[LISTED]))
    params = {"collection": "TCGA-NOPE", "date": "2024-05-01"}
    event = await first_event(query_trigger(query_params=params, check_collection="TCGA-NOPE"))
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "TciaUnknownCollectionError"
    assert event.payload["message"].startswith("collection 'TCGA-NOPE' is not on the server (closest: TCGA-")
    assert [endpoint for endpoint, _ in hook.calls][:2] == ["NewStudiesInPatientCollection", "getCollectionValues"]
    assert [endpoint for endpoint, _ in hook.calls].count("getCollectionValues") == 1
    assert hook.made == hook.closed == 2  # the shared poller's and the check's, closed by the error event


@pytest.mark.asyncio
async def test_query_trigger_checks_a_known_collection_once(monkeypatch, sleeps):
    hook = use_hook(monkeypatch, FakeHook([], [], studies("1"), collections=[LISTED]))
    event = await first_event(query_trigger(check_collection="C"))
    assert event.payload["status"] == "success"
    assert [endpoint for endpoint, _ in hook.calls].count("getCollectionValues") == 1
    assert sleeps == [7.0, 7.0, 7.0]
    assert hook.made == hook.closed == 2


@pytest.mark.asyncio
async def test_query_trigger_polls_on_when_the_check_gets_no_answer(monkeypatch, sleeps):
    check = [TciaServerError(f"HTTP 503 api_key={KEY}"), LISTED]
    hook = use_hook(monkeypatch, FakeHook([], [], studies("1"), collections=check))
    event = await first_event(query_trigger(check_collection="C"))
    assert event.payload["status"] == "success"
    # No answer to the first check: asked again at the next empty poll, then known.
    assert [endpoint for endpoint, _ in hook.calls].count("getCollectionValues") == 2
    assert [endpoint for endpoint, _ in hook.calls].count("NewStudiesInPatientCollection") == 3
    assert sleeps == [7.0, 7.0, 7.0]
    assert hook.made == hook.closed == 3  # the check that got no answer closed its hook too


@pytest.mark.asyncio
async def test_query_trigger_without_check_collection_never_asks_for_collections(monkeypatch, sleeps):
    hook = use_hook(monkeypatch, FakeHook([], [], studies("1")))
    await first_event(query_trigger())
    assert "getCollectionValues" not in [endpoint for endpoint, _ in hook.calls]


# --- TciaNewStudiesEventTrigger ----------------------------------------------------------------------
class FakeStateStore:
    """The asset state store's async accessors, over a dict shared by 'restarts'."""

    def __init__(self, data=None):
        self.data = data if data is not None else {}

    async def aget(self, key, default=None):
        return self.data.get(key, default)

    async def aset(self, key, value):
        self.data[key] = value


def watcher(**kwargs):
    return TciaNewStudiesEventTrigger(**({"collection": "C", "since": "2024-05-01", "poll_interval": 30} | kwargs))


async def collect(trigger, limit=20):
    """Every event the watcher fires until the fake hook runs out of answers."""
    events = []
    agen = trigger.run()
    try:
        while len(events) < limit:
            events.append(await agen.__anext__())
    except Exhausted:
        pass
    finally:
        await agen.aclose()
    return events


@pytest.mark.asset_watchers
def test_watcher_serialize_round_trip():
    trigger = watcher(patient_id="P1", tcia_conn_id="t", max_rows_per_event=5, since="2024-05-01T10:00:00+00:00")
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_tcia.triggers.tcia.TciaNewStudiesEventTrigger"
    assert kwargs == {
        "collection": "C",
        "since": "2024-05-01",
        "patient_id": "P1",
        "tcia_conn_id": "t",
        "poll_interval": 30.0,
        "max_rows_per_event": 5,
    }
    assert TciaNewStudiesEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    # The watcher's identity (its hash) is stable: the same arguments make the same trigger.
    assert TciaNewStudiesEventTrigger.hash(classpath, kwargs) == TciaNewStudiesEventTrigger.hash(*trigger.serialize())


@pytest.mark.asset_watchers
@pytest.mark.parametrize(
    "kwargs",
    [{"collection": ""}, {"since": "yesterday"}, {"patient_id": " "}, {"max_rows_per_event": 0}, {"poll_interval": 0}],
)
def test_watcher_checks_its_arguments_when_the_dag_is_parsed(kwargs):
    with pytest.raises(ValueError):
        watcher(**kwargs)


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_announces_each_study_once(monkeypatch, sleeps):
    hook = use_hook(
        monkeypatch, FakeHook(studies("1", "2"), studies("1", "2"), TciaServerError("503"), studies("1", "2", "3"))
    )
    events = await collect(watcher(patient_id="P1"))
    assert [e.payload["studies"] for e in events] == [studies("1", "2"), studies("3")]
    assert events[0].payload == {
        "collection": "C",
        "patient_id": "P1",
        "since": "2024-05-01",
        "studies": studies("1", "2"),
        "count": 2,
    }
    # since is inclusive; the API's date means "added after": the day before.
    assert hook.calls[0] == (
        "NewStudiesInPatientCollection",
        {"collection": "C", "date": "2024-04-30", "patient_id": "P1"},
    )
    assert sleeps == [30.0] * 4  # one after every poll, whatever its outcome


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_splits_many_studies_into_several_events(monkeypatch, sleeps):
    use_hook(monkeypatch, FakeHook(studies("1", "2", "3", "4", "5")))
    events = await collect(watcher(max_rows_per_event=2))
    assert [e.payload["count"] for e in events] == [2, 2, 1]
    assert [r["StudyInstanceUID"] for e in events for r in e.payload["studies"]] == ["1", "2", "3", "4", "5"]


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_keeps_polling_after_a_refused_key(monkeypatch, sleeps, caplog):
    hook = use_hook(monkeypatch, FakeHook(TciaAuthError(f"HTTP 401 {KEY}"), TciaAuthError("HTTP 401"), studies("1")))
    events = await collect(watcher())
    assert [e.payload["studies"] for e in events] == [studies("1")]
    assert len(hook.calls) == 4
    assert sleeps == [30.0] * 3
    assert KEY not in caplog.text


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_resumes_from_saved_progress_after_a_restart(monkeypatch, sleeps):
    store = FakeStateStore()
    use_hook(monkeypatch, FakeHook(studies("1"), studies("1")))
    first = watcher()
    first.asset_state_store = store
    assert [e.payload["count"] for e in await collect(first)] == [1]
    saved = store.data[first.state_key]
    assert set(saved["seen"]) == {"1"}

    # A new triggerer process: a fresh trigger instance with the same arguments and the same store.
    hook = use_hook(monkeypatch, FakeHook(studies("1", "2")))
    second = watcher()
    second.asset_state_store = store
    events = await collect(second)
    assert [e.payload["studies"] for e in events] == [studies("2")]
    assert hook.calls[0][1]["date"] == saved["after"]


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_without_a_state_store_announces_again_after_a_restart(monkeypatch, sleeps):
    use_hook(monkeypatch, FakeHook(studies("1")))
    assert len(await collect(watcher())) == 1
    use_hook(monkeypatch, FakeHook(studies("1")))
    assert len(await collect(watcher())) == 1  # a duplicate, never a loss


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_without_since_starts_the_day_it_first_ran_and_remembers_it(monkeypatch, sleeps):
    store = FakeStateStore()
    hook = use_hook(monkeypatch, FakeHook([]))
    trigger = watcher(since=None)
    trigger.asset_state_store = store
    await collect(trigger)
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    assert hook.calls[0][1]["date"] == yesterday  # added after yesterday: today on
    assert store.data[trigger.state_key]["after"] == yesterday

    # After a restart days later, the saved day is kept (the default would have moved on).
    store.data[trigger.state_key]["after"] = "2024-01-01"
    hook = use_hook(monkeypatch, FakeHook([]))
    restarted = watcher(since=None)
    restarted.asset_state_store = store
    await collect(restarted)
    assert hook.calls[0][1]["date"] == "2024-01-01"


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_with_a_shared_trigger_falls_back_to_memory(monkeypatch, sleeps):
    class AmbiguousStore:
        async def aget(self, key, default=None):
            raise ValueError("Task has 2 concrete inlets and outlets")

        async def aset(self, key, value):
            raise ValueError("Task has 2 concrete inlets and outlets")

    use_hook(monkeypatch, FakeHook(studies("1"), studies("1")))
    trigger = watcher()
    trigger.asset_state_store = AmbiguousStore()
    assert len(await collect(trigger)) == 1


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 only: from 3.0 the watcher is built (tests above)")
def test_watcher_is_refused_on_airflow_2():
    """Airflow 2.11 has no asset watchers: building the trigger or an AssetWatcher fails at once, saying what
    to use instead, so a DAG file that relies on them fails to load with that message."""
    with pytest.raises(TciaFeatureUnavailableError, match=r"needs Airflow 3\.0 or later.*TciaNewStudiesSensor"):
        TciaNewStudiesEventTrigger(collection="C")
    with pytest.raises(TciaFeatureUnavailableError, match=r"AssetWatcher: .*needs Airflow 3\.0 or later"):
        AssetWatcher(name="w", trigger=None)
    with pytest.raises(TciaFeatureUnavailableError, match="with watchers"):
        asset(name="a", uri="tcia://a", watchers=[object()])
