"""The triggers' ``run()`` against the bundled emulator over real sockets, on both APIs: found, not yet,
a transient error then found, a refused key, a timeout — the watcher announcing a study published
while it waits, and every hook and HTTP client a trigger opens closed when it ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from airflow_provider_tcia.triggers.tcia import TciaNewStudiesEventTrigger, TciaQueryTrigger
from tests.sessions import hooks, httpx_clients

pytestmark = pytest.mark.integration

COLLECTION = "TCGA-BRCA"
KEY = "emulator-sekrit-key-42"
YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()


@pytest.fixture(params=["legacy", "nbia"])
def api(request, tcia_emulator, monkeypatch):
    """Point tcia_default at the emulator through one API (quick retries: these tests wait on purpose)."""
    tcia_emulator.reset()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TCIA_DEFAULT",
        tcia_emulator.connection_json(api=request.param, max_retries=1, retry_backoff=0.05),
    )
    return request.param


def new_studies_trigger(**kwargs) -> TciaQueryTrigger:
    defaults = {
        "endpoint": "NewStudiesInPatientCollection",
        "query_params": {"collection": COLLECTION, "date": YESTERDAY},
        "poke_interval": 0.2,
    }
    return TciaQueryTrigger(**(defaults | kwargs))


async def next_event(agen, timeout: float = 30.0):
    return await asyncio.wait_for(agen.__anext__(), timeout)


@pytest.mark.asyncio
async def test_found_at_once(tcia_emulator, api):
    published = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    agen = new_studies_trigger().run()
    event = await next_event(agen)
    await agen.aclose()
    assert event.payload["status"] == "success"
    assert [row["StudyInstanceUID"] for row in event.payload["rows"]] == [published["study_instance_uid"]]
    assert event.payload["rows"][0]["PatientID"] == published["patient_id"]


@pytest.mark.asyncio
async def test_not_yet_then_found_when_a_study_is_published(tcia_emulator, api):
    agen = new_studies_trigger().run()
    started = time.monotonic()
    pending = asyncio.ensure_future(agen.__anext__())

    def polls() -> int:
        return len([r for r in tcia_emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"])

    while polls() < 3 and time.monotonic() - started < 30:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    assert polls() >= 3
    assert not pending.done()  # nothing new yet: still waiting, and polling
    assert polls() <= elapsed / 0.2 + 2  # one poll per poke_interval at most: never a hot loop
    published = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    event = await asyncio.wait_for(pending, 30)
    await agen.aclose()
    assert event.payload["status"] == "success"
    assert event.payload["rows"][0]["StudyInstanceUID"] == published["study_instance_uid"]


@pytest.mark.asyncio
async def test_transient_errors_then_found(tcia_emulator, api):
    tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    # More failures than the hook retries (1): the trigger itself has to poll again.
    tcia_emulator.inject_fault("NewStudiesInPatientCollection", kind="server_error", count=3, status=503)
    agen = new_studies_trigger().run()
    event = await next_event(agen)
    await agen.aclose()
    assert event.payload["status"] == "success"
    statuses = [r["status"] for r in tcia_emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"]
    assert statuses[:3] == [503, 503, 503]
    assert statuses[-1] == 200


@pytest.mark.asyncio
async def test_refused_key_ends_the_wait(tcia_emulator, monkeypatch):
    with tcia_emulator.with_api_key(KEY):
        monkeypatch.setenv(
            "AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api="legacy", api_key="wrong-key-123456")
        )
        agen = new_studies_trigger().run()
        event = await next_event(agen)
        await agen.aclose()
    assert event.payload["status"] == "error"
    assert event.payload["error_type"] == "TciaAuthError"
    assert "401" in event.payload["message"]
    assert "wrong-key-123456" not in event.payload["message"]


@pytest.mark.asyncio
async def test_timeout(tcia_emulator, api):
    timeout_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    agen = new_studies_trigger(timeout_at=timeout_at).run()
    event = await next_event(agen)
    await agen.aclose()
    assert event.payload["status"] == "timeout"
    assert "fewer than 1 row" in event.payload["message"]


@pytest.mark.asyncio
async def test_every_hook_and_client_is_closed_when_the_trigger_ends(tcia_emulator, api, monkeypatch):
    """The shared poller's hook is closed when its last subscriber leaves; each request's httpx client when
    the request is done (the async side keeps no client between polls)."""
    made, clients = hooks(monkeypatch), httpx_clients(monkeypatch)
    timeout_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    agen = new_studies_trigger(timeout_at=timeout_at).run()
    event = await next_event(agen)
    await agen.aclose()
    assert event.payload["status"] == "timeout"
    polls = [r for r in tcia_emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"]
    assert len(polls) >= 2 and len(clients.opened) >= len(polls)  # one per request (one cut short by the end too)
    assert clients.still_open == []
    assert len(made.opened) == 1 and made.still_open == []


@pytest.mark.asset_watchers
@pytest.mark.asyncio
async def test_watcher_announces_what_is_published_while_it_waits(tcia_emulator, api):
    trigger = TciaNewStudiesEventTrigger(collection=COLLECTION, poll_interval=0.2)
    agen = trigger.run()
    pending = asyncio.ensure_future(agen.__anext__())
    await asyncio.sleep(0.6)
    assert not pending.done()
    first = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    event = await asyncio.wait_for(pending, 30)
    assert [s["StudyInstanceUID"] for s in event.payload["studies"]] == [first["study_instance_uid"]]
    second = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    event = await next_event(agen)
    await agen.aclose()
    # Only the new study: the first one was announced already.
    assert [s["StudyInstanceUID"] for s in event.payload["studies"]] == [second["study_instance_uid"]]
