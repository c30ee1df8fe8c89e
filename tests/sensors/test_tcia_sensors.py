"""The sensors without a server (HTTP mocked): what they ask, poke/reschedule/deferrable modes, the rows
they return, errors before anything is sent, a collection the server does not have, and the key kept out of
every message."""

from __future__ import annotations

import datetime as dt
import json
import sys
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_tcia.compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
)
from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaNotFoundError,
    TciaUnknownCollectionError,
)
from airflow_provider_tcia.sensors.tcia import (
    TciaNewPatientsSensor,
    TciaNewStudiesSensor,
    TciaQuerySensor,
    resolve_since,
)
from airflow_provider_tcia.triggers.tcia import TciaQueryTrigger
from tests.airflow_compat import AirflowRescheduleException, TaskDeferred

KEY = "sekrit-key-0123456789"
ROOT = "http://tcia.test"
LEGACY = f"{ROOT}/services/v2/TCIA/query"
RUN_AFTER = dt.datetime(2024, 5, 10, 15, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def legacy_connection(monkeypatch):
    conn = {"conn_type": "tcia", "host": ROOT, "password": KEY, "extra": {"api": "legacy", "max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", json.dumps(conn))


@pytest.fixture(autouse=True)
def server_collections(requests_mock):
    """The server's collection list (getCollectionValues, asked once when a poke finds nothing): it has "C"."""
    answer = {"json": [{"Collection": "C"}, {"Collection": "TCGA-BRCA"}, {"Collection": "TCGA-GBM"}]}
    requests_mock.get(f"{LEGACY}/getCollectionValues", **answer)
    requests_mock.get(f"{ROOT}/nbia-api/services/v4/getCollectionValues", **answer)


def asked(requests_mock) -> list[str]:
    """The endpoints asked, in order."""
    return [urlsplit(r.url).path.rsplit("/", 1)[-1] for r in requests_mock.request_history]


@pytest.fixture
def no_sleep(monkeypatch):
    slept: list[float] = []
    # The module BaseSensorOperator's poke loop lives in differs between Airflow versions.
    monkeypatch.setattr(sys.modules[BaseSensorOperator.__module__].time, "sleep", slept.append)
    return slept


def sent(requests_mock) -> dict[str, str]:
    """The query parameters of the last poll, as sent (requests_mock's own ``qs`` lowercases them)."""
    polls = [r for r in requests_mock.request_history if not r.url.split("?")[0].endswith("/getCollectionValues")]
    return dict(parse_qsl(urlsplit(polls[-1].url).query))


def context(**extra):
    ti = mock.Mock(max_tries=0, dag_id="d", task_id="wait", run_id="r", map_index=-1, try_number=1)
    ti.get_first_reschedule_date.return_value = None
    return {"dag_run": mock.Mock(run_after=RUN_AFTER), "ti": ti, **extra}


def logged(capfd, caplog) -> str:
    """The task log so far: the console on Airflow 3, stdlib logging on 2.11."""
    return "".join(capfd.readouterr()) + caplog.text


def studies(*uids):
    return [{"StudyInstanceUID": uid, "PatientID": "P1", "Collection": "C"} for uid in uids]


def new_studies_sensor(**kwargs):
    defaults = {"task_id": "wait", "collection": "C", "since": "2024-05-01", "poke_interval": 5, "timeout": 60}
    return TciaNewStudiesSensor(**(defaults | kwargs))


# --- what is asked ---------------------------------------------------------------------------------
def test_new_studies_sensor_asks_with_the_api_date_format(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=studies("1"))
    rows = new_studies_sensor(patient_id="P1", since="2024-05-01T00:00:00+00:00").execute(context())
    assert rows == studies("1")
    # Studies added on or after May 1 are, in the API's words, added after April 30.
    assert sent(requests_mock) == {"Collection": "C", "Date": "2024-04-30", "PatientID": "P1", "format": "json"}
    assert KEY not in requests_mock.last_request.url  # the key travels in a header


def test_new_patients_sensor_asks_new_patients_in_collection(requests_mock):
    requests_mock.get(f"{LEGACY}/NewPatientsInCollection", json=[{"PatientID": "P9", "Collection": "C"}])
    sensor = TciaNewPatientsSensor(task_id="p", collection="C", since=dt.date(2024, 4, 30), poke_interval=1)
    assert sensor.execute(context()) == [{"PatientID": "P9", "Collection": "C"}]
    assert sent(requests_mock)["Date"] == "2024-04-29"


def test_query_sensor_waits_for_a_row_count(requests_mock, no_sleep):
    requests_mock.get(
        f"{LEGACY}/getSeries",
        [{"json": [{"SeriesInstanceUID": "1"}]}, {"json": [{"SeriesInstanceUID": "1"}, {"SeriesInstanceUID": "2"}]}],
    )
    sensor = TciaQuerySensor(
        task_id="q", endpoint="getSeries", query_params={"collection": "C", "modality": "MR"}, min_rows=2,
        poke_interval=3, timeout=60,
    )  # fmt: skip
    assert sensor.execute(context()) == [{"SeriesInstanceUID": "1"}, {"SeriesInstanceUID": "2"}]
    # One row was not enough: the first poke also checked that collection C is on the server.
    assert asked(requests_mock) == ["getSeries", "getCollectionValues", "getSeries"]
    assert no_sleep == [3]
    assert sent(requests_mock) == {"Collection": "C", "Modality": "MR", "format": "json"}


def test_rows_returned_are_capped(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=studies("1", "2", "3"))
    assert new_studies_sensor(max_rows_in_xcom=2).execute(context()) == studies("1", "2")


# --- since -----------------------------------------------------------------------------------------
DAILY = {
    "data_interval_start": dt.datetime(2024, 5, 7, tzinfo=dt.UTC),
    "data_interval_end": dt.datetime(2024, 5, 8, tzinfo=dt.UTC),
}
#: What Airflow 3 gives a manually triggered run: an empty interval at the moment it was triggered.
MANUAL = {"data_interval_start": RUN_AFTER, "data_interval_end": RUN_AFTER}


@pytest.mark.parametrize(
    ("since", "extra", "expected"),
    [
        ("2024-05-01 00:00:00+00:00", {}, "2024-05-01"),  # how {{ data_interval_start }} renders
        ("2024-05-01T23:30:00-02:00", {}, "2024-05-02"),  # taken in UTC
        (dt.date(2024, 5, 1), {}, "2024-05-01"),
        ("None", DAILY, "2024-05-07"),  # rendered to nothing: the data interval start
        ("", MANUAL, "2024-05-09"),  # ... or, in a manual run, the day before the run
        (None, {}, "2024-05-09"),  # no interval at all (logical_date=None)
    ],
)
def test_resolve_since(since, extra, expected):
    assert resolve_since(since, context(**extra)).isoformat() == expected


@pytest.mark.parametrize(("extra", "expected"), [(DAILY, "2024-05-06"), (MANUAL, "2024-05-08"), ({}, "2024-05-08")])
def test_default_since_follows_the_run(requests_mock, extra, expected):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=studies("1"))
    sensor = TciaNewStudiesSensor(task_id="s", collection="C", poke_interval=1)
    # As rendered: the interval start, which for a manual run is the moment it was triggered.
    sensor.since = str(extra.get("data_interval_start"))
    sensor.execute(context(**extra))
    assert sent(requests_mock)["Date"] == expected


def test_an_explicit_since_is_used_as_given_even_in_a_manual_run(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=studies("1"))
    new_studies_sensor(since=str(RUN_AFTER)).execute(context(**MANUAL))
    assert sent(requests_mock)["Date"] == "2024-05-09"


def test_since_is_templated_and_defaults_to_the_data_interval_start():
    sensor = TciaNewStudiesSensor(task_id="s", collection="C")
    assert sensor.since == "{{ data_interval_start }}"
    assert {"collection", "since", "patient_id", "tcia_conn_id"} <= set(sensor.template_fields)


# --- bad input fails before anything is sent ------------------------------------------------------
@pytest.mark.parametrize(
    ("sensor", "match"),
    [
        (lambda: new_studies_sensor(since="last tuesday"), "not a date"),
        (lambda: new_studies_sensor(collection=""), "collection"),
        (lambda: TciaQuerySensor(task_id="q", endpoint="getNothing"), "getNothing"),
        (
            lambda: TciaQuerySensor(task_id="q", endpoint="getImage", query_params={"series_instance_uid": "1"}),
            "download",
        ),
        (lambda: TciaQuerySensor(task_id="q", endpoint="getSeriesSize"), "series_instance_uid"),
        (lambda: TciaQuerySensor(task_id="q", endpoint="getSeries", query_params={"colour": "red"}), "colour"),
        (lambda: TciaQuerySensor(task_id="q", endpoint="getSeries", query_params={"format": "csv"}), "format"),
        (lambda: TciaQuerySensor(task_id="q", endpoint="getSeries", query_params="collection=C"), "dict"),
        (lambda: new_studies_sensor(min_rows=0), "min_rows"),
        (lambda: new_studies_sensor(max_rows_in_xcom=-1), "max_rows_in_xcom"),
    ],
)
def test_bad_input_is_refused_before_any_request(requests_mock, sensor, match):
    with pytest.raises(ValueError, match=match):
        sensor().execute(context())
    assert requests_mock.call_count == 0


# --- errors while polling ----------------------------------------------------------------------------
def test_a_server_error_is_not_yet_and_the_sensor_polls_again(requests_mock, no_sleep):
    requests_mock.get(
        f"{LEGACY}/NewStudiesInPatientCollection",
        [{"status_code": 503, "text": "down"}, {"json": []}, {"json": studies("1")}],
    )
    assert new_studies_sensor().execute(context()) == studies("1")
    assert no_sleep == [5, 5]
    # The failed poke asked nothing more; the first empty one checked the collection, once.
    assert asked(requests_mock) == [
        "NewStudiesInPatientCollection",
        "NewStudiesInPatientCollection",
        "getCollectionValues",
        "NewStudiesInPatientCollection",
    ]


@pytest.mark.parametrize(("status", "error"), [(401, TciaAuthError), (403, TciaAuthError), (404, TciaNotFoundError)])
def test_a_refused_key_or_unknown_endpoint_fails_at_once(requests_mock, no_sleep, status, error):
    """... and without the task's Airflow retries: no retry fixes a refused key."""
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", status_code=status, text=f"denied {KEY}")
    with pytest.raises(AirflowFailException, match=f"^{error.__name__}: ") as caught:
        new_studies_sensor().execute(context())
    assert isinstance(caught.value.__cause__, error)
    assert KEY not in str(caught.value)
    assert requests_mock.call_count == 1
    assert no_sleep == []


def test_poke_mode_times_out(requests_mock, no_sleep):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowSensorTimeout):
        new_studies_sensor(timeout=0).execute(context())


def test_reschedule_mode_frees_the_slot_when_nothing_is_there(requests_mock, airflow_db):
    # airflow_db: Airflow 2.11 looks up the first try's start in the metadata database.
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowRescheduleException):
        new_studies_sensor(mode="reschedule").execute(context())
    assert asked(requests_mock) == ["NewStudiesInPatientCollection", "getCollectionValues"]


# --- deferrable ------------------------------------------------------------------------------------
def test_deferrable_returns_at_once_when_already_there(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=studies("1"))
    assert new_studies_sensor(deferrable=True).execute(context()) == studies("1")
    assert requests_mock.call_count == 1  # found: no reason to check the collection


def test_deferrable_defers_with_the_sensor_timeout(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    sensor = new_studies_sensor(deferrable=True, patient_id="P1", timeout=120, max_rows_in_xcom=7, min_rows=2)
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == dt.timedelta(seconds=120)
    trigger = deferred.value.trigger
    assert isinstance(trigger, TciaQueryTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["endpoint"] == "NewStudiesInPatientCollection"
    assert kwargs["query_params"] == {"collection": "C", "date": "2024-04-30", "patient_id": "P1"}
    assert (kwargs["poke_interval"], kwargs["min_rows"], kwargs["max_rows"]) == (5.0, 2, 7)
    # The poke before deferring checked the collection: the trigger need not.
    assert asked(requests_mock) == ["NewStudiesInPatientCollection", "getCollectionValues"]
    assert kwargs["check_collection"] is None
    timeout_at = dt.datetime.fromisoformat(kwargs["timeout_at"])
    assert before + dt.timedelta(seconds=119) < timeout_at < dt.datetime.now(dt.UTC) + dt.timedelta(seconds=121)
    assert KEY not in json.dumps(kwargs)


def test_deferrable_default_comes_from_the_config(monkeypatch):
    import importlib

    import airflow_provider_tcia.sensors.tcia as module

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    try:
        reloaded = importlib.reload(module)
        assert reloaded.TciaNewStudiesSensor(task_id="s", collection="C").deferrable is True
    finally:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        importlib.reload(module)


def test_deferrable_refuses_a_zero_poke_interval(requests_mock):
    with pytest.raises(ValueError, match="poke_interval"):
        new_studies_sensor(deferrable=True, poke_interval=0).execute(context())
    assert requests_mock.call_count == 0


def test_execute_complete_returns_the_rows():
    event = {"status": "success", "rows": studies("1", "2"), "row_count": 5}
    assert new_studies_sensor(max_rows_in_xcom=1).execute_complete(context(), event) == studies("1")


@pytest.mark.parametrize(
    ("error_type", "error"),
    [("TciaAuthError", TciaAuthError), ("TciaBadRequestError", TciaBadRequestError), ("Weird", Exception)],
)
def test_execute_complete_fails_at_once_with_the_error_the_trigger_reported(error_type, error):
    event = {"status": "error", "error_type": error_type, "message": "HTTP 401 from http://tcia.test/..."}
    with pytest.raises(AirflowFailException, match="HTTP 401") as caught:
        new_studies_sensor().execute_complete(context(), event)
    assert isinstance(caught.value.__cause__, error)


def test_execute_complete_timeout_fails_or_skips():
    event = {"status": "timeout", "message": "still nothing"}
    with pytest.raises(AirflowSensorTimeout, match="still nothing"):
        new_studies_sensor().execute_complete(context(), event)
    with pytest.raises(AirflowSkipException):
        new_studies_sensor(soft_fail=True).execute_complete(context(), event)


def test_transient_error_in_deferrable_first_poke_still_defers(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", status_code=503, text="down")
    with pytest.raises(TaskDeferred) as deferred:
        new_studies_sensor(deferrable=True).execute(context())
    # The poke learnt nothing, so the collection was not checked: the trigger will.
    assert deferred.value.trigger.serialize()[1]["check_collection"] == "C"


def test_since_is_sent_in_nbia_format_with_the_same_meaning(requests_mock, monkeypatch):
    conn = {"conn_type": "tcia", "host": ROOT, "extra": {"api": "nbia", "max_retries": 0}}
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", json.dumps(conn))
    requests_mock.get(f"{ROOT}/nbia-api/services/v4/NewStudiesInPatientCollection", json=studies("1"))
    assert new_studies_sensor(since="2024-05-01").execute(context()) == studies("1")
    # NBIA v4 selects on or after fromDate: since May 1 is fromDate=05-01-2024.
    assert sent(requests_mock) == {"Collection": "C", "fromDate": "05-01-2024", "format": "json"}


# --- a collection the server does not have ----------------------------------------------------------------
NOPE = "TCGA-NOPE"
NOT_ON_THE_SERVER = "^TciaUnknownCollectionError: collection 'TCGA-NOPE' is not on the server (closest: TCGA-"


class SensorWouldWait(Exception):
    """The sensor went to sleep before its next poke: it did not fail at its first."""


@pytest.fixture
def one_poke(monkeypatch):
    """Fail the test as soon as the sensor would sleep before another poke (instead of polling until its timeout)."""

    def sleep(seconds):
        raise SensorWouldWait(f"the sensor was going to sleep {seconds} s and poke again")

    monkeypatch.setattr(sys.modules[BaseSensorOperator.__module__].time, "sleep", sleep)


def test_an_unknown_collection_fails_at_the_first_poke(requests_mock, one_poke):
    """TCIA answers NewStudiesInPatientCollection on a collection it does not have with no rows: without the
    check the sensor would wait until its timeout."""
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER.replace("(", r"\(")) as caught:
        new_studies_sensor(collection=NOPE, timeout=3600).execute(context())
    assert isinstance(caught.value.__cause__, TciaUnknownCollectionError)
    assert "TCGA-BRCA" in str(caught.value) and "TCGA-GBM" in str(caught.value)
    assert asked(requests_mock) == ["NewStudiesInPatientCollection", "getCollectionValues"]
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "sensor",
    [
        lambda: TciaNewPatientsSensor(task_id="p", collection=NOPE, since="2024-05-01", poke_interval=1),
        lambda: TciaQuerySensor(
            task_id="q", endpoint="getSeries", query_params={"collection": NOPE, "modality": "MR"}, poke_interval=1
        ),
    ],
)
def test_every_sensor_on_a_collection_checks_it(requests_mock, one_poke, sensor):
    requests_mock.get(f"{LEGACY}/NewPatientsInCollection", json=[])
    requests_mock.get(f"{LEGACY}/getSeries", json=[])
    with pytest.raises(AirflowFailException, match="TciaUnknownCollectionError"):
        sensor().execute(context())


def test_a_known_collection_is_checked_once_per_try(requests_mock, no_sleep):
    requests_mock.get(
        f"{LEGACY}/NewStudiesInPatientCollection", [{"json": []}, {"json": []}, {"json": []}, {"json": studies("1")}]
    )
    assert new_studies_sensor().execute(context()) == studies("1")
    assert asked(requests_mock).count("getCollectionValues") == 1
    assert no_sleep == [5, 5, 5]


def test_a_query_without_a_collection_is_not_checked(requests_mock, no_sleep):
    uid = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
    requests_mock.get(f"{LEGACY}/getSeries", [{"json": []}, {"json": [{"SeriesInstanceUID": uid}]}])
    sensor = TciaQuerySensor(task_id="q", endpoint="getSeries", query_params={"series_instance_uid": uid})
    assert sensor.execute(context()) == [{"SeriesInstanceUID": uid}]
    assert "getCollectionValues" not in asked(requests_mock)


def test_a_collection_listed_in_another_case_is_a_warning(requests_mock, no_sleep, capfd, caplog):
    """NBIA compares collection names regardless of case, so the query may be right: warn, poll on."""
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", [{"json": []}, {"json": studies("1")}])
    assert new_studies_sensor(collection="tcga-brca").execute(context()) == studies("1")
    assert "it lists 'TCGA-BRCA', which differs only in case" in logged(capfd, caplog)


@pytest.mark.parametrize(
    "answer",
    [{"status_code": 503, "text": "down"}, {"json": []}, {"text": "<html>oops</html>"}],
    ids=["server-error", "no-collections-listed", "not-json"],
)
def test_a_check_without_an_answer_never_fails_the_sensor(requests_mock, no_sleep, capfd, caplog, answer):
    requests_mock.get(f"{LEGACY}/getCollectionValues", [answer, {"json": [{"Collection": "TCGA-BRCA"}]}])
    requests_mock.get(
        f"{LEGACY}/NewStudiesInPatientCollection", [{"json": []}, {"json": []}, {"json": []}, {"json": studies("1")}]
    )
    assert new_studies_sensor(collection="TCGA-BRCA").execute(context()) == studies("1")
    assert "could not check whether collection 'TCGA-BRCA' is on the server" in logged(capfd, caplog)
    # Asked again at the next poke that found nothing; answered then, so not a third time.
    assert asked(requests_mock).count("getCollectionValues") == 2


def test_reschedule_mode_checks_in_the_first_poke_of_a_try(requests_mock, airflow_db):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowFailException, match="TciaUnknownCollectionError"):
        new_studies_sensor(collection=NOPE, mode="reschedule").execute(context())


def test_reschedule_mode_does_not_check_again_in_later_pokes(requests_mock, airflow_db):
    # Airflow 3 counts the try's reschedules in the context (2.11 does not: there every poke checks).
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowRescheduleException):
        new_studies_sensor(collection=NOPE, mode="reschedule").execute(context(task_reschedule_count=3))
    assert asked(requests_mock) == ["NewStudiesInPatientCollection"]


def test_deferrable_fails_before_deferring_on_an_unknown_collection(requests_mock):
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(AirflowFailException, match=NOT_ON_THE_SERVER.replace("(", r"\(")):
        new_studies_sensor(collection=NOPE, deferrable=True).execute(context())


def test_deferrable_hands_an_unanswered_check_to_the_trigger(requests_mock):
    requests_mock.get(f"{LEGACY}/getCollectionValues", status_code=503, text="down")
    requests_mock.get(f"{LEGACY}/NewStudiesInPatientCollection", json=[])
    with pytest.raises(TaskDeferred) as deferred:
        new_studies_sensor(collection=NOPE, deferrable=True).execute(context())
    assert deferred.value.trigger.serialize()[1]["check_collection"] == NOPE


def test_execute_complete_fails_with_the_unknown_collection_the_trigger_found():
    message = "collection 'TCGA-NOPE' is not on the server (closest: TCGA-BRCA)"
    event = {"status": "error", "error_type": "TciaUnknownCollectionError", "message": message}
    with pytest.raises(AirflowFailException, match=r"^TciaUnknownCollectionError: collection 'TCGA-NOPE'") as caught:
        new_studies_sensor(collection=NOPE).execute_complete(context(), event)
    assert isinstance(caught.value.__cause__, TciaUnknownCollectionError)
