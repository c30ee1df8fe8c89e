"""TciaUpdatedSeriesSensor against the emulator over real sockets (NBIA): it finds a new series and a revision
of an old one, not an unchanged one nor one of another collection, in poke mode and deferred."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.sensors.tcia import TciaUpdatedSeriesSensor
from airflow_provider_tcia.triggers.tcia import TciaQueryTrigger
from tests.airflow_compat import TaskDeferred
from tests.emulator.conftest import BRCA_SERIES
from tests.sensors.test_sensors_emulator import NOT_ON_THE_SERVER, between_pokes, context  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration

TODAY = dt.date.today()


@pytest.fixture
def nbia(tcia_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api="nbia", max_retries=0))
    return tcia_emulator


def sensor(**kwargs) -> TciaUpdatedSeriesSensor:
    defaults = {"task_id": "wait", "collections": ["TCGA-BRCA"], "since": TODAY.isoformat(), "poke_interval": 1}
    return TciaUpdatedSeriesSensor(**({"timeout": 3600} | defaults | kwargs))


def uids(rows: list[dict]) -> list[str]:
    return [row["SeriesInstanceUID"] for row in rows]


def test_a_revision_is_found_an_unchanged_series_and_other_collections_are_not(nbia, between_pokes):  # noqa: F811
    emulator = nbia
    other = emulator.publish("TCGA-GBM")["series_instance_uids"]
    between_pokes.append(lambda: None)  # nothing new in TCGA-BRCA: poke again
    between_pokes.append(lambda: emulator.revise(BRCA_SERIES))  # a series released years ago, revised today
    rows = sensor().execute(context())
    assert uids(rows) == [BRCA_SERIES] and not set(other) & set(uids(rows))
    assert rows[0]["DateReleased"] == TODAY.strftime("%m-%d-%Y")
    asked = [r for r in emulator.requests() if r["endpoint"] == "getUpdatedSeries"]
    yesterday = (TODAY - dt.timedelta(days=1)).strftime("%m-%d-%Y")
    assert len(asked) == 3 and all(["fromDate", yesterday] in r["query"] for r in asked)


def test_a_new_series_in_any_collection(nbia, between_pokes):  # noqa: F811
    new = nbia.publish("TCGA-GBM", series_count=2)["series_instance_uids"]
    assert uids(sensor(collections=None).execute(context())) == new
    # A single name is a list of one, compared regardless of case as NBIA does.
    assert uids(sensor(collections="tcga-gbm").execute(context())) == new


def test_deferred_the_trigger_keeps_only_the_collections_asked_for(nbia):
    emulator = nbia
    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True, poke_interval=0.2).execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, TciaQueryTrigger)
    assert (trigger.endpoint, trigger.collections) == ("getUpdatedSeries", ["TCGA-BRCA"])
    classpath, kwargs = trigger.serialize()
    assert TciaQueryTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def wait() -> dict:
        agen = trigger.run()
        pending = asyncio.ensure_future(agen.__anext__())
        await asyncio.sleep(0.6)
        emulator.publish("TCGA-GBM")  # another collection: still waiting
        await asyncio.sleep(0.6)
        assert not pending.done()
        published = emulator.publish("TCGA-BRCA")["series_instance_uids"]
        event = await asyncio.wait_for(pending, 30)
        await agen.aclose()
        assert uids(event.payload["rows"]) == published
        return event.payload

    payload = asyncio.run(wait())
    assert uids(sensor().execute_complete(context(), payload)) == uids(payload["rows"])


def test_a_legacy_connection_fails_at_once(tcia_emulator, monkeypatch, between_pokes):  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api="legacy", max_retries=0))
    with pytest.raises(AirflowFailException, match="api=nbia"):
        sensor().execute(context())
    assert tcia_emulator.requests() == []


def test_a_collection_the_server_does_not_have_fails_at_the_first_poke(nbia, between_pokes):  # noqa: F811
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER):
        sensor(collections=["TCGA-BRCA", "TCGA-NOPE"]).execute(context())
    asked = [r["endpoint"] for r in nbia.requests()]
    assert asked == ["getUpdatedSeries", "getCollectionValues", "getCollectionValues"]


def test_known_collections_are_checked_once_per_try(nbia, between_pokes):  # noqa: F811
    between_pokes.append(lambda: None)
    between_pokes.append(lambda: nbia.publish("TCGA-GBM"))
    sensor(collections=["TCGA-BRCA", "tcga-gbm"]).execute(context())
    asked = [r["endpoint"] for r in nbia.requests() if r["endpoint"] != "getUpdatedSeries"]
    assert asked == ["getCollectionValues", "getCollectionValues"]  # the first poke's, none after


@pytest.mark.parametrize("collections", [[], [""], 7])
def test_bad_collections_fail_before_anything_is_sent(nbia, collections):
    with pytest.raises(ValueError, match="collection"):
        sensor(collections=collections).execute(context())
    assert nbia.requests() == []
