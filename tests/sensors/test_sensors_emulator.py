"""The sensors against the bundled emulator over real sockets, on both APIs: a collection the server does not
have fails the sensor at its first poke (poke mode, before deferring, and in the trigger), a known collection
with nothing new waits, a collection check the server cannot answer never fails the sensor, and every HTTP
session a sensor or its trigger opens is closed however the wait ends."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from unittest import mock

import pytest

from airflow_provider_tcia.compat import AirflowFailException, AirflowSensorTimeout, BaseSensorOperator
from airflow_provider_tcia.exceptions import TciaUnknownCollectionError
from airflow_provider_tcia.sensors.tcia import TciaNewStudiesSensor, TciaQuerySensor
from airflow_provider_tcia.triggers.tcia import TciaQueryTrigger
from tests.airflow_compat import AirflowRescheduleException, TaskDeferred
from tests.sessions import hooks, httpx_clients, requests_sessions

pytestmark = pytest.mark.integration

NOPE = "TCGA-NOPE"
TODAY = dt.date.today().isoformat()
NOT_ON_THE_SERVER = r"^TciaUnknownCollectionError: collection 'TCGA-NOPE' is not on the server \(closest: TCGA-"


@pytest.fixture(params=["legacy", "nbia"])
def api(request, tcia_emulator, monkeypatch):
    """Point tcia_default at the emulator through one API (no retries of its own: faults reach the sensor)."""
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api=request.param, max_retries=0))
    return request.param


class SensorWouldWait(Exception):
    """The sensor went to sleep before a poke the test did not plan for (it would have polled until timeout)."""


@pytest.fixture
def between_pokes(monkeypatch):
    """What happens while a poke-mode sensor sleeps: a list of callables, one per sleep. A sleep with nothing
    left to do fails the test at once (rather than letting the sensor poll until its six-hour timeout)."""
    actions: list = []

    def sleep(seconds):
        if not actions:
            raise SensorWouldWait(f"the sensor was going to sleep {seconds} s and poke again")
        actions.pop(0)()

    monkeypatch.setattr(sys.modules[BaseSensorOperator.__module__].time, "sleep", sleep)
    return actions


def context():
    ti = mock.Mock(max_tries=0, dag_id="d", task_id="wait", run_id="r", map_index=-1, try_number=1)
    ti.get_first_reschedule_date.return_value = None
    return {"dag_run": mock.Mock(run_after=dt.datetime.now(dt.UTC)), "ti": ti}


def sensor(**kwargs) -> TciaNewStudiesSensor:
    defaults = {"task_id": "wait", "collection": NOPE, "since": TODAY, "poke_interval": 1, "timeout": 6 * 3600}
    return TciaNewStudiesSensor(**(defaults | kwargs))


def asked(emulator) -> list[str]:
    return [r["endpoint"] for r in emulator.requests()]


def test_an_unknown_collection_fails_at_the_first_poke(tcia_emulator, api, between_pokes):
    """Before, TciaNewStudiesSensor(collection="TCGA-NOPE") waited until its timeout: six hours here."""
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER) as caught:
        sensor().execute(context())
    assert isinstance(caught.value.__cause__, TciaUnknownCollectionError)
    assert "TCGA-BRCA" in str(caught.value)
    assert asked(tcia_emulator) == ["NewStudiesInPatientCollection", "getCollectionValues"]


def test_a_query_sensor_on_an_unknown_collection_fails_too(tcia_emulator, api, between_pokes):
    wait = TciaQuerySensor(task_id="q", endpoint="getSeries", query_params={"collection": NOPE}, poke_interval=1)
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER):
        wait.execute(context())


def test_deferrable_fails_before_deferring(tcia_emulator, api):
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER):
        sensor(deferrable=True).execute(context())
    assert asked(tcia_emulator) == ["NewStudiesInPatientCollection", "getCollectionValues"]


def test_the_trigger_fails_an_unknown_collection_whose_check_it_was_handed(tcia_emulator, api, monkeypatch):
    """The poke before deferring could not check (getCollectionValues failed): the trigger checks at its first
    poll that finds nothing, and the sensor fails with the trigger's message. Every hook made on the way (the
    sensor's, the trigger's shared poller's, its check's) and every HTTP client is closed."""
    made, clients = hooks(monkeypatch), httpx_clients(monkeypatch)
    tcia_emulator.inject_fault("getCollectionValues", "server_error", count=1, status=503)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(deferrable=True, poke_interval=0.2).execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, TciaQueryTrigger) and trigger.check_collection == NOPE

    async def first_event():
        agen = trigger.run()
        try:
            return await asyncio.wait_for(agen.__anext__(), 30)
        finally:
            await agen.aclose()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "error" and event.payload["error_type"] == "TciaUnknownCollectionError"
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER):
        sensor(deferrable=True).execute_complete(context(), event.payload)
    statuses = [(r["endpoint"], r["status"]) for r in tcia_emulator.requests()]
    assert statuses[:3] == [
        ("NewStudiesInPatientCollection", 200),  # the sensor's poke: nothing
        ("getCollectionValues", 503),  # its check: no answer
        ("NewStudiesInPatientCollection", 200),  # the trigger's first poll: nothing
    ]
    # Its check: not there. (Its shared poller keeps its cadence meanwhile: on a busy machine it may poll once
    # more before the trigger has ended.)
    assert [s for s in statuses[3:] if s[0] == "getCollectionValues"] == [("getCollectionValues", 200)]
    assert len(made.opened) == 3 and made.still_open == []
    assert len(clients.opened) == len(statuses) - 2 and clients.still_open == []  # one client per request


def test_a_known_collection_with_nothing_new_waits(tcia_emulator, api, between_pokes):
    between_pokes.append(lambda: tcia_emulator.publish("TCGA-BRCA", series_count=1, image_count=2))
    rows = sensor(collection="TCGA-BRCA").execute(context())
    assert len(rows) == 1 and rows[0]["Collection"] == "TCGA-BRCA"
    assert asked(tcia_emulator) == [
        "NewStudiesInPatientCollection",
        "getCollectionValues",  # checked once: TCGA-BRCA is there
        "NewStudiesInPatientCollection",
    ]


def test_a_known_collection_defers_and_the_trigger_does_not_check_again(tcia_emulator, api):
    with pytest.raises(TaskDeferred) as deferred:
        sensor(collection="TCGA-BRCA", deferrable=True).execute(context())
    assert deferred.value.trigger.check_collection is None


def test_a_known_collection_times_out_not_fails(tcia_emulator, api):
    with pytest.raises(AirflowSensorTimeout):
        sensor(collection="TCGA-BRCA", timeout=0).execute(context())


def test_a_check_the_server_cannot_answer_never_fails_the_sensor(tcia_emulator, api, between_pokes, capfd, caplog):
    tcia_emulator.inject_fault("getCollectionValues", "server_error", count=1, status=503)
    between_pokes.append(lambda: tcia_emulator.publish("TCGA-BRCA", series_count=1, image_count=2))
    rows = sensor(collection="TCGA-BRCA").execute(context())
    assert len(rows) == 1
    logged = "".join(capfd.readouterr()) + caplog.text  # the console on Airflow 3, stdlib logging on 2.11
    assert "could not check whether collection 'TCGA-BRCA' is on the server" in logged
    assert [(r["endpoint"], r["status"]) for r in tcia_emulator.requests()] == [
        ("NewStudiesInPatientCollection", 200),
        ("getCollectionValues", 503),
        ("NewStudiesInPatientCollection", 200),
    ]


# --- sessions: one per run of execute(), closed however it ends -------------------------------------------
def test_the_pokes_of_a_try_share_one_session_closed_at_the_end(tcia_emulator, api, between_pokes, monkeypatch):
    sessions = requests_sessions(monkeypatch)
    between_pokes.append(lambda: tcia_emulator.publish("TCGA-BRCA", series_count=1, image_count=2))
    assert len(sensor(collection="TCGA-BRCA").execute(context())) == 1
    assert len(asked(tcia_emulator)) == 3  # two pokes and the collection check, through one session
    assert len(sessions.opened) == 1 and sessions.still_open == []


ENDINGS = {
    "failed": ({"collection": NOPE}, AirflowFailException),
    "timed out": ({"timeout": 0}, AirflowSensorTimeout),
    "deferred": ({"deferrable": True}, TaskDeferred),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_session_is_closed_however_the_try_ends(tcia_emulator, api, between_pokes, monkeypatch, ending):
    kwargs, error = ENDINGS[ending]
    sessions = requests_sessions(monkeypatch)
    with pytest.raises(error):
        sensor(**{"collection": "TCGA-BRCA", **kwargs}).execute(context())
    assert asked(tcia_emulator)  # it did ask
    assert len(sessions.opened) == 1 and sessions.still_open == []


def test_a_refused_key_closes_the_session_too(tcia_emulator, monkeypatch):
    with tcia_emulator.with_api_key("emulator-sensor-key-0001"):  # the legacy API checks keys
        monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api_key="wrong-key-123456"))
        sessions = requests_sessions(monkeypatch)
        with pytest.raises(AirflowFailException, match="TciaAuthError"):
            sensor(collection="TCGA-BRCA").execute(context())
    assert [r["status"] for r in tcia_emulator.requests()] == [401]
    assert len(sessions.opened) == 1 and sessions.still_open == []


def test_reschedule_mode_opens_and_closes_a_session_per_poke(tcia_emulator, api, monkeypatch, airflow_db):
    """Every poke of a rescheduled sensor is a new process: each has its own session, closed as it ends."""
    sessions = requests_sessions(monkeypatch)
    for _ in range(2):
        with pytest.raises(AirflowRescheduleException):
            sensor(collection="TCGA-BRCA", mode="reschedule").execute(context())
        assert sessions.still_open == []
    assert len(sessions.opened) == 2
