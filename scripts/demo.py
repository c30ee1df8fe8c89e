"""``make demo``: the flagship pipeline against the bundled TCIA emulator, end to end, in about a minute.

1. starts the emulator (the legacy API, requiring an API key) on a free loopback port;
2. makes a fresh Airflow home in ``demo-output/airflow-home`` (SQLite, the example DAGs, no Airflow examples)
   and points the ``tcia_default`` connection at the emulator;
3. runs ``tcia_flagship_ingest`` with ``dag.test()``: its deferrable sensor waits for new studies in TCGA-BRCA
   (the trigger runs inline) — while it waits, a new study is published to the emulator — then the new series
   are listed, downloaded in mapped tasks to ``demo-output/data`` and announced on the downloaded-series asset;
4. runs ``tcia_flagship_process`` on the series that asset event lists: a DICOM header index (CSV) and a PNG
   contact sheet;
5. prints where the downloads, the index and the contact sheet landed. Exits non-zero if anything failed.

Options: ``--verbose`` shows Airflow's own logs; ``--output DIR`` writes somewhere else than ``demo-output``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTION = "TCGA-BRCA"
API_KEY = "demo-api-key-3f9b7c2e5a"
POLL_INTERVAL = 2.0
SERIES = 3
IMAGES = 16


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "demo-output", help="where to put everything")
    parser.add_argument("--verbose", action="store_true", help="show Airflow's logs too")
    return parser.parse_args()


def prepare_environment(output: Path, verbose: bool) -> tuple[Path, Path]:
    """A fresh Airflow home and data folder; the environment set before Airflow is imported."""
    home, data = output / "airflow-home", output / "data"
    for folder in (home, data):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO" if verbose else "ERROR",
            "TCIA_EXAMPLE_OUTPUT": f"file://{data}",
            "TCIA_FLAGSHIP_COLLECTION": COLLECTION,
            "TCIA_FLAGSHIP_POLL_INTERVAL": str(POLL_INTERVAL),
            "TCIA_FLAGSHIP_SENSOR_TIMEOUT": "300",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    if str(REPO / "example_dags") not in sys.path:
        sys.path.append(str(REPO / "example_dags"))
    return home, data


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def publish_when_waiting(emulator, done: dict) -> threading.Thread:
    """Publish a new study once the sensor has polled from its trigger (a second poll), in a thread."""

    def run() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            polls = [r for r in emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"]
            if len(polls) >= 2:
                say(f"the sensor is waiting ({len(polls)} polls, nothing new): publishing a study to {COLLECTION}")
                done.update(emulator.publish(COLLECTION, series_count=SERIES, image_count=IMAGES))
                say(f"published study {done['study_instance_uid']} of patient {done['patient_id']}")
                return
            time.sleep(0.2)
        say("the sensor never polled: not publishing")

    thread = threading.Thread(target=run, name="publisher", daemon=True)
    thread.start()
    return thread


def task_states(dag_run) -> str:
    return ", ".join(f"{ti.task_id}[{ti.map_index}]={ti.state}" for ti in dag_run.get_task_instances())


def return_values(dag_run) -> dict[tuple[str, int], object]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == "return_value"
        )
        return {(x.task_id, x.map_index): x.value for x in rows}


def local(url: str | None) -> str:
    return url[len("file://") :] if url and url.startswith("file://") else str(url)


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    home, data = prepare_environment(args.output.resolve(), args.verbose)

    from airflow.utils.db import initdb

    from airflow_provider_tcia.emulator.app import run_emulator

    say(f"Airflow home: {home}")
    initdb()
    with run_emulator(api_key=API_KEY) as emulator:
        say(f"TCIA emulator (legacy API, key required) at {emulator.url}")
        os.environ["AIRFLOW_CONN_TCIA_DEFAULT"] = emulator.connection_json(api="legacy", retry_backoff=0.2)

        import tcia_flagship_ingest
        import tcia_flagship_process

        published: dict = {}
        publisher = publish_when_waiting(emulator, published)
        say("running tcia_flagship_ingest: its deferrable sensor waits for new studies …")
        ingest = tcia_flagship_ingest.dag.test(run_conf={"collection": COLLECTION, "output_root": f"file://{data}"})
        publisher.join(5)
        if ingest.state != "success" or not published:
            say(f"tcia_flagship_ingest ended {ingest.state}: {task_states(ingest)}")
            return 1
        values = return_values(ingest)
        arrived = values[("announce", -1)]
        say(f"tcia_flagship_ingest succeeded: {arrived['downloads']} series downloaded and announced")

        say("running tcia_flagship_process on what the asset event lists …")
        locations = [s["location"] for s in arrived["series"]]
        process = tcia_flagship_process.dag.test(run_conf={"output_root": f"file://{data}", "series": locations})
        if process.state != "success":
            say(f"tcia_flagship_process ended {process.state}: {task_states(process)}")
            return 1
        report = return_values(process)[("report", -1)]

    print()
    print(f"New study {published['study_instance_uid']} (patient {published['patient_id']}, {COLLECTION}):")
    print("  downloads:")
    for item in arrived["series"]:
        print(f"    {local(item['location'])}  ({item['files']} DICOM files, verified)")
    print(f"  index:         {local(report['index'])}  ({report['series']} series)")
    print(f"  contact sheet: {local(report['contact_sheet'])}")
    print(f"  Airflow home:  {home}")
    print(f"Done in {time.monotonic() - started:.0f} s.")
    missing = [p for p in (report["index"], report["contact_sheet"]) if not Path(local(p)).is_file()]
    if missing:
        say(f"missing outputs: {missing}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
