"""The updated-series watcher against the emulator over real sockets (NBIA): it fires on a new series and on a
revision of one it announced, never on an unchanged one, keeps only the collections asked for, and across a
restart resumes from the asset state store (or, without one, announces again)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import pytest

from airflow_provider_tcia.triggers.announced import SeriesProgress
from airflow_provider_tcia.triggers.tcia import TciaUpdatedSeriesEventTrigger
from tests.emulator.conftest import GBM_SERIES
from tests.triggers.test_tcia_triggers import FakeStateStore

pytestmark = [pytest.mark.integration, pytest.mark.asset_watchers]

TODAY = dt.date.today()
TOMORROW = TODAY + dt.timedelta(days=1)
INTERVAL = 0.2


@pytest.fixture
def nbia(tcia_emulator, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api="nbia", max_retries=1, retry_backoff=0.05)
    )
    return tcia_emulator


def watcher(**kwargs) -> TciaUpdatedSeriesEventTrigger:
    defaults = {"collections": ["TCGA-BRCA"], "since": TODAY.isoformat(), "poll_interval": INTERVAL}
    return TciaUpdatedSeriesEventTrigger(**(defaults | kwargs))


def polls(emulator) -> int:
    return len([r for r in emulator.requests() if r["endpoint"] == "getUpdatedSeries"])


async def quiet_for(emulator, pending: asyncio.Future, more_polls: int = 3) -> None:
    """Wait until the watcher polled ``more_polls`` more times, and check it fired nothing meanwhile."""
    target = polls(emulator) + more_polls
    started = time.monotonic()
    while polls(emulator) < target and time.monotonic() - started < 30:
        await asyncio.sleep(0.05)
    assert polls(emulator) >= target
    assert not pending.done(), pending.result().payload if pending.done() else None


async def stop(agen, pending: asyncio.Future) -> None:
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await pending
    await agen.aclose()


async def event_of(pending: asyncio.Future) -> dict:
    return (await asyncio.wait_for(pending, 30)).payload


@pytest.mark.asyncio
async def test_a_new_series_and_a_revision_fire_an_unchanged_one_does_not(nbia):
    emulator = nbia
    agen = watcher().run()
    pending = asyncio.ensure_future(agen.__anext__())
    try:
        await quiet_for(emulator, pending)  # nothing released today yet
        other = emulator.publish("TCGA-GBM")["series_instance_uids"][0]  # another collection: not watched
        await quiet_for(emulator, pending)

        new = emulator.publish("TCGA-BRCA", series_count=2, image_count=2)["series_instance_uids"]
        payload = await event_of(pending)
        assert [row["SeriesInstanceUID"] for row in payload["series"]] == new
        assert payload["count"] == 2 and payload["revised"] == [] and payload["collections"] == ["TCGA-BRCA"]
        assert payload["since"] == TODAY.isoformat() and other not in str(payload)

        pending = asyncio.ensure_future(agen.__anext__())
        await quiet_for(emulator, pending)  # unchanged: listed by every poll, announced once

        emulator.revise(new[0], image_count=3)  # a revision the same day: more images
        payload = await event_of(pending)
        assert [row["SeriesInstanceUID"] for row in payload["series"]] == [new[0]] == payload["revised"]
        assert payload["series"][0]["ImageCount"] == 3

        pending = asyncio.ensure_future(agen.__anext__())
        await quiet_for(emulator, pending)
        emulator.revise(new[1], released=TOMORROW.isoformat())  # a later release: a newer DateReleased
        payload = await event_of(pending)
        assert payload["revised"] == [new[1]]

        pending = asyncio.ensure_future(agen.__anext__())
        await quiet_for(emulator, pending)
    finally:
        await stop(agen, pending)


@pytest.mark.asyncio
async def test_every_collection_and_a_revision_of_an_old_series(nbia):
    """With collections=None every collection counts; a series released years ago comes back when revised."""
    emulator = nbia
    old = GBM_SERIES
    agen = watcher(collections=None).run()
    pending = asyncio.ensure_future(agen.__anext__())
    try:
        await quiet_for(emulator, pending)
        emulator.revise(old)
        payload = await event_of(pending)
        assert [row["SeriesInstanceUID"] for row in payload["series"]] == [old]
        assert payload["collections"] is None and payload["revised"] == []  # never announced before: new to it
    finally:
        await stop(agen, pending)


async def first_events(trigger: TciaUpdatedSeriesEventTrigger, emulator, count: int = 1) -> list[dict]:
    """The first ``count`` events, then a few quiet polls (to give the watcher time to save its progress)."""
    agen = trigger.run()
    try:
        payloads = [(await asyncio.wait_for(agen.__anext__(), 30)).payload for _ in range(count)]
        pending = asyncio.ensure_future(agen.__anext__())
        await quiet_for(emulator, pending)
        await stop(agen, pending)
    finally:
        await agen.aclose()
    return payloads


@pytest.mark.asyncio
async def test_across_a_restart_with_a_state_store(nbia):
    emulator = nbia
    store = FakeStateStore()
    (uid,) = emulator.publish("TCGA-BRCA")["series_instance_uids"]
    first = watcher()
    first.asset_state_store = store
    [payload] = await first_events(first, emulator)
    assert [row["SeriesInstanceUID"] for row in payload["series"]] == [uid]
    saved = store.data[first.state_key]
    assert saved["series"][uid]["date_released"] == TODAY.isoformat()

    # A restarted triggerer: the same arguments, the same store. The announced series stays announced...
    second = watcher()
    second.asset_state_store = store
    agen = second.run()
    pending = asyncio.ensure_future(agen.__anext__())
    try:
        await quiet_for(emulator, pending)
        # ... and its revision is announced again.
        emulator.revise(uid, image_count=5)
        payload = await event_of(pending)
        assert payload["revised"] == [uid]
    finally:
        await stop(agen, pending)


@pytest.mark.asyncio
async def test_across_a_restart_without_a_state_store_it_announces_again(nbia):
    emulator = nbia
    (uid,) = emulator.publish("TCGA-BRCA")["series_instance_uids"]
    for _restart in range(2):
        [payload] = await first_events(watcher(), emulator)
        assert [row["SeriesInstanceUID"] for row in payload["series"]] == [uid]


@pytest.mark.asyncio
async def test_a_legacy_connection_is_refused_and_the_watcher_polls_on(tcia_emulator, monkeypatch):
    """getUpdatedSeries is NBIA's: on a legacy connection each poll is refused before anything is sent, logged,
    and asked again an interval later; the watcher never ends."""
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api="legacy", max_retries=0))
    agen = watcher().run()
    pending = asyncio.ensure_future(agen.__anext__())
    try:
        await asyncio.sleep(5 * INTERVAL)
        assert not pending.done() and tcia_emulator.requests() == []
    finally:
        await stop(agen, pending)


# --- no server needed ------------------------------------------------------------------------------------
def test_serialize_round_trip_and_arguments():
    trigger = watcher(collections="TCGA-BRCA", tcia_conn_id="t", max_rows_per_event=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_tcia.triggers.tcia.TciaUpdatedSeriesEventTrigger"
    assert kwargs == {
        "collections": ["TCGA-BRCA"],
        "since": TODAY.isoformat(),
        "tcia_conn_id": "t",
        "poll_interval": INTERVAL,
        "max_rows_per_event": 5,
    }
    assert TciaUpdatedSeriesEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    for bad in ({"collections": []}, {"collections": [""]}, {"since": "soon"}, {"max_rows_per_event": 0}):
        with pytest.raises(ValueError):
            watcher(**bad)
    assert watcher(collections=None).state_key != watcher().state_key


def test_series_progress_forgets_what_can_no_longer_come_back():
    row = {"SeriesInstanceUID": "1.2", "DateReleased": "05-01-2024", "MaxSubmissionTimestamp": "05-01-2024"}
    progress = SeriesProgress(dt.date(2024, 4, 30))
    assert progress.changed([row, row]) == ([row], [])
    progress.mark_announced([row], dt.date(2024, 5, 1))
    assert progress.changed([row]) == ([], [])
    newer = row | {"DateReleased": "05-03-2024"}
    assert progress.changed([newer]) == ([newer], ["1.2"])
    assert SeriesProgress.load(progress.dump(), dt.date(2000, 1, 1)) == progress
    assert progress.advance(dt.date(2024, 5, 4)) and "1.2" in progress.series  # after: 05-02; kept until 04-30
    assert progress.advance(dt.date(2024, 5, 10)) and progress.series == {}
    assert SeriesProgress.load({"after": "garbage"}, dt.date(2024, 1, 1)).after == dt.date(2024, 1, 1)
