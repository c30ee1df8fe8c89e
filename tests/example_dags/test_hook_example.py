"""The hook's example DAG with dag.test(), its connection read from every place Airflow keeps connections."""

from __future__ import annotations

import json

import pytest

from tests.dags import load_example, run_example, states, xcoms

pytestmark = [pytest.mark.integration, pytest.mark.example_dag("tcia_hook_example")]

KEY = "example-dag-key-42b1"


def run(conn_id: str, expect: str = "success", **test_kwargs):
    """The example DAG run on the connection ``conn_id``: its task states and return values, by task."""
    dag = load_example("tcia_hook_example").dag
    conf = {"tcia_conn_id": conn_id, "collection": "TCGA-GBM"}
    dag_run = run_example(dag, expect=expect, run_conf=conf, **test_kwargs)
    values = {task: value for (task, _), value in xcoms(dag_run).items()}
    return {task: state for (task, _), state in states(dag_run).items()}, values


def check(task_states, values, emulator) -> None:
    assert set(task_states.values()) == {"success"}, task_states
    assert values["check_connection"].startswith(f"Connected to {emulator.url}")
    summary = values["summarise_collection"]
    assert summary["collection"] == "TCGA-GBM" and "MR" in summary["modalities"]
    assert summary["series"] > 0 and summary["images"] > 0 and summary["patients"] > 0
    assert "SeriesInstanceUID" in values["describe_get_series"]
    assert KEY not in json.dumps(values)


@pytest.fixture
def emulator_with_key(tcia_emulator):
    with tcia_emulator.with_api_key(KEY):
        yield tcia_emulator


def test_connection_from_an_environment_uri(airflow_db, emulator_with_key, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_URI_CONN", emulator_with_key.connection_uri(api="legacy"))
    check(*run("tcia_uri_conn"), emulator_with_key)


def test_connection_from_environment_json_on_nbia(airflow_db, emulator_with_key, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_JSON_CONN", emulator_with_key.connection_json(api="nbia"))
    check(*run("tcia_json_conn"), emulator_with_key)


def test_connection_from_the_metadata_database(airflow_db, emulator_with_key):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "tcia_db_conn").delete()
        session.add(
            Connection(
                conn_id="tcia_db_conn",
                conn_type="tcia",
                host=emulator_with_key.url,
                password=KEY,
                extra=json.dumps({"api": "legacy", "api_version": "v3"}),
            )
        )
    check(*run("tcia_db_conn"), emulator_with_key)


def test_connection_from_a_secrets_backend_file(airflow_db, emulator_with_key, tmp_path):
    conn_file = tmp_path / "connections.json"
    conn_file.write_text(json.dumps({"tcia_file_conn": json.loads(emulator_with_key.connection_json(api="legacy"))}))
    check(*run("tcia_file_conn", conn_file_path=str(conn_file)), emulator_with_key)


def test_wrong_key_fails_the_run_with_an_auth_error(airflow_db, emulator_with_key, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_BAD_KEY", emulator_with_key.connection_json(api="legacy", api_key="nope"))
    task_states, _ = run("tcia_bad_key", expect="failed")
    assert task_states["check_connection"] == "failed"
    assert task_states["summarise_collection"] == "upstream_failed"
