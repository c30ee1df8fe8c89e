"""Test-wide setup: a private AIRFLOW_HOME (sqlite) and the example DAGs as the DAGs folder.

Set before Airflow is imported, so every test process — and several running side by side — gets its own
metadata database.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_home = tempfile.mkdtemp(prefix="tcia-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# No connection to real TCIA from tests: a test that forgets to point the hook at the emulator fails fast.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import json  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402


def _reuse_the_in_process_execution_api() -> None:
    """Before 3.3, ``dag.test()`` builds a new in-process execution API for every task it runs, and building
    one (Cadwyn's versioned routes) takes seconds. Airflow 3.3 builds it once (``functools.lru_cache`` on
    ``supervisor.in_process_api_server``); do the same on 3.0 to 3.2, so the suite spends its time on the
    provider rather than on rebuilding Airflow's API."""
    import functools

    from tests.airflow_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS

    if AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_3_PLUS:
        from airflow.sdk.execution_time import supervisor

        if not hasattr(supervisor.in_process_api_server, "cache_info"):
            supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated sqlite metadata database in this session's AIRFLOW_HOME (for ``dag.test()``)."""
    from airflow.utils.db import initdb

    initdb()
    _reuse_the_in_process_execution_api()
    return os.environ["AIRFLOW_HOME"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


S3_CONN_ID = "tcia_test_s3"


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API on loopback (moto's server mode) and an Airflow ``aws`` connection to it.

    Yields the endpoint URL; the connection id is :data:`S3_CONN_ID`, so object storage paths look like
    ``s3://tcia_test_s3@<bucket>/<key>``. Each test makes its own bucket (see ``s3_bucket``).
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }
    previous = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"] = json.dumps(conn)
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    try:
        yield endpoint
    finally:
        server.stop()
        os.environ.pop(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", None)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh bucket on the moto server; yields its ``s3://conn_id@bucket`` root URL."""
    import boto3

    name = "tcia-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40].strip("-")
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    yield f"s3://{S3_CONN_ID}@{name}"


@pytest.fixture
def use_emulator(monkeypatch):
    """``use(emulator, api, **extras)`` points ``tcia_default`` at an emulator (quick retries) and returns a
    TciaHook on it, its configuration already read."""
    from airflow_provider_tcia.hooks.tcia import TciaHook

    def use(emulator, api: str = "legacy", **extras) -> TciaHook:
        extras = {"retry_backoff": 0.01, **extras}
        monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", emulator.connection_json(api=api, **extras))
        hook = TciaHook()
        assert hook.config.generation.name == api  # read now: a later use() changes the variable
        return hook

    return use


@pytest.fixture
def run_operator(monkeypatch):
    """Run an operator's ``execute()`` outside a DAG run (the emulator is still reached over HTTP)."""
    from tests.airflow_compat import ExecutorSafeguard

    monkeypatch.setattr(ExecutorSafeguard, "test_mode", True)
    return lambda op, context=None: op.execute(context=context or {})


def pytest_collection_modifyitems(config, items):
    """Tests of asset watchers (event-driven scheduling, Airflow 3.0+) do not run on Airflow 2.11, where the
    watcher refuses to be built; ``test_watcher_is_refused_on_airflow_2`` tests that instead. The skip
    names its reason in the summary (``-rs``)."""
    from tests.airflow_compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        return
    skip = pytest.mark.skip(reason="asset watchers need Airflow 3.0+ (refusal on 2.11 tested separately)")
    for item in items:
        if "asset_watchers" in item.keywords:
            item.add_marker(skip)
