"""A real Airflow runs the flagship pipeline: scheduler, dag-processor, triggerer and api-server as separate
processes (LocalExecutor on SQLite, as ``airflow standalone`` runs them) with the example DAGs.

The flagship DAGs are unpaused with the CLI; the scheduled ingest DAG's sensor defers to the triggerer and
the event-driven DAG's AssetWatcher starts polling there; a study is then published to an emulator that
requires an API key. The test waits (bounded) until the processing DAG has succeeded on what *both* ingest
paths delivered — proving that the deferrable sensor and the AssetWatcher work in the triggerer process —
and checks the index it wrote. Then it restarts the triggerer: the watcher resumes from the progress saved in
the asset state store (the study is not announced again) and announces the next study published. Last, the
API key appears in no log: no task log, no trigger log, no component's output.

Every process is started in its own session and stopped (SIGTERM, then SIGKILL) whatever happens.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator

import pytest

from tests.airflow_compat import AIRFLOW_V_3_3_PLUS
from tests.conftest import ROOT
from tests.deployment.processes import Deployment, airflow_env, free_port, wait_for

pytestmark = [pytest.mark.deployment, pytest.mark.timeout(900)]

KEY = "deploy-" + secrets.token_hex(12)
COLLECTION = "TCGA-BRCA"
FLAGSHIP = ("tcia_flagship_ingest", "tcia_flagship_event_ingest", "tcia_flagship_process")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@pytest.fixture
def deployment(tmp_path, tcia_emulator_factory) -> Iterator[Deployment]:
    emulator = tcia_emulator_factory(api_key=KEY)
    home, data = tmp_path / "airflow-home", tmp_path / "data"
    home.mkdir()
    data.mkdir()
    port = free_port()
    env = airflow_env(
        home,
        port,
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "example_dags"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",  # the watcher's trigger is registered when its unpaused DAG is parsed
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW_CONN_TCIA_DEFAULT=emulator.connection_json(api="legacy", api_key=KEY, retry_backoff=0.2),
        TCIA_EXAMPLE_OUTPUT=f"file://{data}",
        TCIA_FLAGSHIP_COLLECTION=COLLECTION,
        TCIA_FLAGSHIP_POLL_INTERVAL="3",
        TCIA_FLAGSHIP_SENSOR_TIMEOUT="900",
    )
    deployment = Deployment(home, data, port, env)
    deployment.emulator = emulator  # type: ignore[attr-defined]
    deployment.cli("db", "migrate")
    try:
        for name in COMPONENTS:
            deployment.start(name)
        yield deployment
    finally:
        deployment.stop()


def succeeded(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r["state"] == "success"]


def test_flagship_pipeline_in_a_real_deployment(deployment):
    d = deployment
    emulator = d.emulator  # type: ignore[attr-defined]

    # Up: the api-server answers and the dag-processor has serialised the flagship DAGs, without errors.
    wait_for("the api-server", lambda: d.get("/api/v2/monitor/health"), 180, d)
    wait_for(
        "the flagship DAGs to be parsed",
        lambda: (
            {dag["dag_id"] for dag in d.get("/api/v2/dags?dag_id_pattern=tcia_flagship&limit=50")["dags"]}
            >= set(FLAGSHIP)
        ),
        180,
        d,
    )
    errors = d.get("/api/v2/importErrors?limit=100")["import_errors"]
    assert not [e for e in errors if "tcia_flagship" in e["filename"]], errors

    d.cli("dags", "unpause", "--treat-dag-id-as-regex", "-y", "^tcia_flagship_")

    # The scheduled run's sensor waits in the triggerer, and the asset watcher polls there too.
    def sensor_deferred() -> bool:
        runs = d.runs("tcia_flagship_ingest")
        tis = d.task_instances("tcia_flagship_ingest", runs[0]["dag_run_id"]) if runs else []
        return any(t["task_id"] == "wait_for_new_studies" and t["state"] == "deferred" for t in tis)

    wait_for("the ingest DAG's sensor to defer", sensor_deferred, 240, d)
    wait_for(
        "the asset watcher to poll in the triggerer",
        lambda: "no new study added since" in d.output("triggerer").read_text(errors="replace"),
        240,
        d,
    )

    # The sensor's state says deferred as soon as its task hands over; the triggerer starts the trigger a moment
    # later. Publish only once the trigger has polled and found nothing, so that its log shows it waiting.
    def sensor_trigger_log() -> str:
        logs = (d.home / "logs").glob(
            "dag_id=tcia_flagship_ingest/run_id=*/task_id=wait_for_new_studies/attempt=1.log.trigger.*.log"
        )
        return "".join(p.read_text(errors="replace") for p in logs)

    # Twice: one poll interval after the deferral, by when the scheduler has handled the executor's report of the
    # deferring process. (Airflow 3.0.6 fails a resumed sensor whose deferral report it handles only after the
    # trigger fired and the task was queued again, if it cannot find the DAG's serialisation just then:
    # "finished with state success, but the task instance's state attribute is queued".)
    wait_for(
        "the sensor's trigger to poll twice in the triggerer",
        lambda: sensor_trigger_log().count("0 of 1 row(s) so far; polling again") >= 2,
        240,
        d,
        interval=1,
    )
    published = emulator.publish(COLLECTION, series_count=2, image_count=4)

    # Both paths pick the study up — the sensor's scheduled run and the watcher's asset-triggered run — and the
    # processing DAG succeeds on what they announced.
    def all_succeeded() -> bool:
        failed = [r for name in FLAGSHIP for r in d.runs(name) if r["state"] == "failed"]
        assert not failed, f"failed runs: {failed}\n{d.tails()}"
        return all(succeeded(d.runs(name)) for name in FLAGSHIP)

    wait_for("the three flagship DAGs to succeed", all_succeeded, 420, d, interval=5)
    [ingest] = succeeded(d.runs("tcia_flagship_ingest"))
    assert ingest["run_type"] == "scheduled"
    event_runs = succeeded(d.runs("tcia_flagship_event_ingest"))
    assert [r["run_type"] for r in event_runs] == ["asset_triggered"]

    # The sensor really waited in the triggerer (its trigger's log, kept with the task's logs, shows it
    # polling and finding the study), and the watcher really fired from there.
    [trigger_log] = (d.home / "logs").glob(
        "dag_id=tcia_flagship_ingest/run_id=*/task_id=wait_for_new_studies/attempt=1.log.trigger.*.log"
    )
    trigger_text = trigger_log.read_text(errors="replace")
    assert "0 of 1 row(s) so far; polling again" in trigger_text
    assert "NewStudiesInPatientCollection: 1 row(s) after" in trigger_text
    assert "1 new study (of 1 added since" in d.output("triggerer").read_text(errors="replace")

    # A triggerer restart. Where Airflow gives the watcher an asset state store (3.3+), it resumes from the
    # progress it saved there and does not announce the study again; before 3.3 it kept its progress in memory
    # and announces the day's study again after the restart (as documented) — harmless, downloads are
    # idempotent. Either way it still announces what is published afterwards.
    d.stop_one("triggerer")
    d.start("triggerer")
    restarted = d.output("triggerer-2")
    wait_for(
        "the restarted watcher to poll twice",
        lambda: restarted.read_text(errors="replace").count("no new study added since") >= 2,
        240,
        d,
    )
    if AIRFLOW_V_3_3_PLUS:
        assert "new study (of" not in restarted.read_text(errors="replace")  # nothing announced twice
        event_runs_expected = 2
    else:
        assert "1 new study (of 1 added since" in restarted.read_text(errors="replace")  # announced again
        wait_for(
            "the re-announced study's run to succeed",
            lambda: len(succeeded(d.runs("tcia_flagship_event_ingest"))) == 2,
            300,
            d,
            interval=5,
        )
        event_runs_expected = 3
    assert len(d.runs("tcia_flagship_event_ingest")) == event_runs_expected - 1
    second = emulator.publish(COLLECTION, series_count=1, image_count=2)

    # The processing DAG ends up having processed what both ingest paths announced. (Two announcements that
    # land together may be consumed by one processing run; one that lands while that run is being created
    # waits for the asset's next event, which the second study provides.)
    def processed_both() -> bool:
        all_succeeded()  # fails at once on a failed run
        sources: set[str] = set()
        for run in succeeded(d.runs("tcia_flagship_process")):
            sources |= {e["source_dag_id"] for e in d.upstream_events("tcia_flagship_process", run["dag_run_id"])}
        second_done = len(succeeded(d.runs("tcia_flagship_event_ingest"))) == event_runs_expected
        busy = [r for r in d.runs("tcia_flagship_process") if r["state"] in ("queued", "running")]
        both = {"tcia_flagship_ingest", "tcia_flagship_event_ingest"} <= sources
        return second_done and both and not busy

    wait_for("tcia_flagship_process to have processed both paths", processed_both, 420, d, interval=5)
    assert "1 new study (of 2 added since" in restarted.read_text(errors="replace")

    # What the processing DAG wrote: an index listing every published series, and contact sheets.
    indexes = sorted(d.data.glob("tcia_flagship/processed/*/index.csv"))
    indexed = {row["SeriesInstanceUID"] for path in indexes for row in csv.DictReader(path.open())}
    assert {*published["series_instance_uids"], *second["series_instance_uids"]} <= indexed
    assert len(sorted(d.data.glob("tcia_flagship/processed/*/contact_sheet.png"))) == len(indexes)
    downloads = sorted(d.data.glob(f"tcia_flagship/downloads/{published['patient_id']}/*/*.zip"))
    assert len(downloads) == 2  # the second ingest path found them there already: downloads are idempotent

    # The key was used (the emulator refuses requests without it) but is in no log at all.
    assert any(r["status"] == 200 and r["endpoint"] == "getImage" for r in emulator.requests())
    logs = [p for p in (d.home / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "task_id=" in str(p)]
    assert any("task_id=wait_for_new_studies" in str(p) for p in task_logs)
    assert any("task_id=download" in str(p) for p in task_logs)
    outputs = sorted(d.home.glob("*.out"))
    leaked = [str(p) for p in [*logs, *outputs] if KEY in p.read_text(errors="replace")]
    assert not leaked, f"the API key appears in: {leaked}"
