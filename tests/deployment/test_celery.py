"""The flagship pipeline on a distributed Airflow: CeleryExecutor, a Redis broker, PostgreSQL, two workers.

A real Airflow — api-server, scheduler, dag-processor, triggerer — runs the CeleryExecutor with its metadata
database on a real PostgreSQL server and its broker on a real Redis; **two Celery workers** run the tasks, each
with its own working directory, temp directory, HOME and Airflow home, so that anything passed between tasks
through local disk would break. Outputs go to S3 (moto's server on loopback).

A study is published to an emulator that requires an API key: the scheduled ingest DAG's deferrable sensor
finds it in the triggerer, the per-series downloads are mapped and must land on *both* workers (told apart by
the task instances' hostnames, each worker reporting its own through ``[core] hostname_callable``), their
asset event starts the processing DAG, and its index on S3 lists every published series. Last, the API key is
in no log: no task log on either worker, no trigger log, no component's output.

Every server and process is started here and stopped whatever happens.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, S3_CONN_ID
from tests.deployment.processes import Deployment, airflow_env, free_port, wait_for
from tests.deployment.services import postgresql, redis

pytestmark = [pytest.mark.deployment, pytest.mark.celery, pytest.mark.timeout(1200)]

KEY = "celery-" + secrets.token_hex(12)
COLLECTION = "TCGA-BRCA"
WORKERS = ("worker-1", "worker-2")
FLAGSHIP = ("tcia_flagship_ingest", "tcia_flagship_process")


@pytest.fixture
def celery_deployment(tmp_path, tcia_emulator_factory, s3_bucket) -> Iterator[Deployment]:
    try:
        import airflow.providers.celery  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError as err:
        pytest.fail(f"{err.name} is not installed: install the project's dev extra (make install)")
    emulator = tcia_emulator_factory(api_key=KEY)
    home = tmp_path / "airflow-home"
    home.mkdir()
    port = free_port()
    with postgresql(tmp_path / "postgres") as database, redis(tmp_path / "redis") as broker:
        env = airflow_env(
            home,
            port,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=database.url,
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CELERY__BROKER_URL=broker.url,
            AIRFLOW__CELERY__RESULT_BACKEND="db+" + database.url,
            AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
            AIRFLOW__CORE__PARALLELISM="8",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW_CONN_TCIA_DEFAULT=emulator.connection_json(api="legacy", api_key=KEY, retry_backoff=0.2),
            **{f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": os.environ[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"]},
            TCIA_EXAMPLE_OUTPUT=f"{s3_bucket}/flagship",
            TCIA_FLAGSHIP_COLLECTION=COLLECTION,
            TCIA_FLAGSHIP_POLL_INTERVAL="3",
            TCIA_FLAGSHIP_SENSOR_TIMEOUT="1200",
        )
        deployment = Deployment(home, tmp_path, port, env)
        deployment.emulator = emulator  # type: ignore[attr-defined]
        deployment.bucket = s3_bucket  # type: ignore[attr-defined]
        deployment.cli("db", "migrate")
        try:
            for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
                deployment.start(name)
            for number, worker in enumerate(WORKERS):
                deployment.start(
                    "celery worker", *_worker_args(worker), label=worker, **_worker_place(deployment, worker, number)
                )
            yield deployment
        finally:
            deployment.stop()
            for server, name in ((database, "postgres"), (broker, "redis")):
                print(f"--- {name} (last lines) ---\n{server.tail()}")


def _worker_args(worker: str) -> list[str]:
    return ["--concurrency", "1", "--celery-hostname", f"{worker}@%h", "--without-mingle", "--without-gossip"]


def _worker_place(deployment: Deployment, worker: str, number: int) -> dict:
    """A worker's own HOME, temp directory, working directory and Airflow home (its task logs land there)."""
    root = deployment.data / worker
    home, tmp, cwd, airflow_home = (root / part for part in ("home", "tmp", "cwd", "airflow-home"))
    for folder in (home, tmp, cwd, airflow_home):
        folder.mkdir(parents=True)
    env = dict(deployment.env)
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.deployment.worker_identity.hostname",
            "TCIA_TEST_WORKER_NAME": worker,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        }
    )
    return {"env": env, "cwd": cwd}


def _s3_objects(bucket_url: str, prefix: str) -> dict[str, bytes]:
    import boto3

    endpoint = json.loads(os.environ[f"AIRFLOW_CONN_{S3_CONN_ID.upper()}"])["extra"]["endpoint_url"]
    bucket = bucket_url.split("@", 1)[1]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            wanted = item["Key"].endswith(".csv")
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() if wanted else b""
    return found


def test_flagship_pipeline_on_celery_workers(celery_deployment):
    d = celery_deployment
    emulator = d.emulator  # type: ignore[attr-defined]

    wait_for("the api-server", lambda: d.get("/api/v2/monitor/health"), 240, d)
    wait_for(
        "the flagship DAGs to be parsed",
        lambda: (
            {dag["dag_id"] for dag in d.get("/api/v2/dags?dag_id_pattern=tcia_flagship&limit=50")["dags"]}
            >= set(FLAGSHIP)
        ),
        240,
        d,
    )
    for dag_id in FLAGSHIP:
        d.cli("dags", "unpause", dag_id)

    def sensor_deferred() -> bool:
        runs = d.runs("tcia_flagship_ingest")
        tis = d.task_instances("tcia_flagship_ingest", runs[0]["dag_run_id"]) if runs else []
        return any(t["task_id"] == "wait_for_new_studies" and t["state"] == "deferred" for t in tis)

    wait_for("the ingest DAG's sensor (run on a worker) to defer", sensor_deferred, 300, d)
    wait_for(
        "the sensor's trigger to poll in the triggerer",
        lambda: _trigger_logs(d).count("0 of 1 row(s) so far; polling again") >= 2,  # (as test_standalone.py)
        240,
        d,
        interval=1,
    )
    published = emulator.publish(COLLECTION, series_count=6, image_count=3)

    def succeeded_all() -> bool:
        failed = [r for name in FLAGSHIP for r in d.runs(name) if r["state"] == "failed"]
        assert not failed, f"failed runs: {failed}\n{d.tails()}"
        return all(any(r["state"] == "success" for r in d.runs(name)) for name in FLAGSHIP)

    wait_for("the ingest and processing DAGs to succeed", succeeded_all, 600, d, interval=5)

    # The mapped downloads ran on both workers.
    [ingest] = [r for r in d.runs("tcia_flagship_ingest") if r["state"] == "success"]
    downloads = [
        t for t in d.task_instances("tcia_flagship_ingest", ingest["dag_run_id"]) if t["task_id"] == "download"
    ]
    assert len(downloads) == 6 and all(t["state"] == "success" for t in downloads), downloads
    assert {t["hostname"] for t in downloads} == set(WORKERS), [(t["map_index"], t["hostname"]) for t in downloads]
    everything = [t for name in FLAGSHIP for r in d.runs(name) for t in d.task_instances(name, r["dag_run_id"])]
    assert {t["hostname"] for t in everything if t["state"] == "success"} <= set(WORKERS)

    # On S3: a verified zip per published series, and the processing DAG's index lists them all.
    objects = _s3_objects(d.bucket, "flagship/tcia_flagship/")  # type: ignore[attr-defined]
    zips = [
        key
        for key in objects
        if key.startswith(f"flagship/tcia_flagship/downloads/{published['patient_id']}/") and key.endswith(".zip")
    ]
    assert len(zips) == 6, sorted(objects)
    indexes = [
        key for key in objects if key.startswith("flagship/tcia_flagship/processed/") and key.endswith("/index.csv")
    ]
    assert indexes, sorted(objects)
    indexed = {
        row["SeriesInstanceUID"] for key in indexes for row in csv.DictReader(io.StringIO(objects[key].decode()))
    }
    assert set(published["series_instance_uids"]) <= indexed

    # Each worker wrote only under its own places (nothing shared through local disk), and the key was used
    # (the emulator refuses requests without it) but is in no log, anywhere under the test's directory.
    for worker in WORKERS:
        logs = list((d.data / worker / "airflow-home" / "logs").rglob("*.log"))
        assert logs, f"{worker} wrote no task log"
    assert any(r["status"] == 200 and r["endpoint"] == "getImage" for r in emulator.requests())
    leaks = [p for p in Path(d.data).rglob("*") if p.is_file() and _contains(p, KEY)]
    assert not leaks, f"the API key appears in {leaks}"


def _trigger_logs(d: Deployment) -> str:
    logs = (d.home / "logs").glob("dag_id=tcia_flagship_ingest/run_id=*/task_id=wait_for_new_studies/*trigger*.log")
    return "".join(p.read_text(errors="replace") for p in logs)


def _contains(path: Path, text: str) -> bool:
    try:  # PostgreSQL's files too: nothing rendered or stored in the database may hold the key either
        return text.encode() in path.read_bytes()
    except OSError:
        return False
