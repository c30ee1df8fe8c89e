"""The flagship pipeline's DAGs with ``dag.test()`` against the bundled emulator, on both APIs.

The scheduled ingest DAG waits in its deferrable sensor (the trigger runs inline in ``dag.test()``) while a
study is published to the emulator, downloads the new series in mapped tasks (to S3 via moto, or to
``file://``) and records a downloaded-series asset event; the processing DAG then builds the header index and
the contact sheet from what that event lists. The event-driven variant gets its study rows from the watcher
trigger itself.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import threading
import time
import zipfile

import pytest

from airflow_provider_tcia.compat import ObjectStoragePath
from tests.dags import load_example, run_example, xcoms

pytestmark = pytest.mark.integration

COLLECTION = "TCGA-BRCA"
KEY = "flagship-emulator-key-7d1e"
INGEST = pytest.mark.example_dag("tcia_flagship_ingest")
PROCESS = pytest.mark.example_dag("tcia_flagship_process")


def asset_events(name: str) -> list[dict]:
    """The extras of every event of an asset, oldest first (Airflow 2.11's datasets are found by their
    URI, as the dataset normalised it)."""
    from tests.airflow_compat import asset_event_extras

    lib = sys.modules["tcia_flagship_lib"]
    uri = {"tcia_flagship_downloaded_series": lib.DOWNLOADED_SERIES.uri}.get(name)
    return [dict(extra or {}) for extra in asset_event_extras(name=name, uri=uri)]


@pytest.fixture
def flagship_env(monkeypatch):
    """Short poll intervals for the sensor and the watcher (read by the DAG files when imported)."""
    monkeypatch.setenv("TCIA_FLAGSHIP_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("TCIA_FLAGSHIP_SENSOR_TIMEOUT", "120")
    monkeypatch.setenv("TCIA_FLAGSHIP_COLLECTION", COLLECTION)


@pytest.fixture(params=["legacy-s3-zip", "nbia-file-extract"])
def setup(request, tcia_emulator, flagship_env, monkeypatch, tmp_path):
    """(output_root, layout): the legacy API writing zips to S3 (moto), NBIA extracting to file://."""
    api, store, layout = request.param.split("-")
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", tcia_emulator.connection_json(api=api, retry_backoff=0.05))
    root = request.getfixturevalue("s3_bucket") + "/out" if store == "s3" else f"file://{tmp_path}/out"
    return root, layout


def dicom_files(location: str) -> list[str]:
    """The DICOM files of a downloaded series (a zip or a folder), read from object storage."""
    path = ObjectStoragePath(location)
    if location.endswith(".zip"):
        with path.open("rb") as fh, zipfile.ZipFile(fh) as archive:
            return sorted(n for n in archive.namelist() if n.endswith(".dcm"))
    return sorted(p.name for p in path.rglob("*.dcm"))


def publish_when_polled(emulator, **options) -> dict:
    """Publish a study (in a thread) once the sensor has polled at least twice: first on the worker, then
    from its trigger — so the DAG really waited for it."""
    published: dict = {}

    def run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            polls = [r for r in emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"]
            if len(polls) >= 2:
                published.update(emulator.publish(COLLECTION, **options))
                return
            time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    published["_thread"] = thread
    return published


@INGEST
@PROCESS
@pytest.mark.tcia_emulator(api_key=KEY)
def test_ingest_waits_downloads_and_announces_then_process_indexes(airflow_db, tcia_emulator, setup):
    root, layout = setup
    ingest = load_example("tcia_flagship_ingest").dag
    published = publish_when_polled(tcia_emulator, series_count=2, image_count=3)

    run = run_example(ingest, run_conf={"output_root": root, "collection": COLLECTION, "layout": layout})
    published.pop("_thread").join(5)

    assert published, "the study was never published: the sensor did not poll"
    values = xcoms(run)
    # The sensor returned the new study (and only it: the dataset's own studies are years old).
    studies = values[("wait_for_new_studies", -1)]
    assert [s["StudyInstanceUID"] for s in studies] == [published["study_instance_uid"]]
    # One mapped download per series, each verified, under <root>/tcia_flagship/downloads/<patient>/<study>/.
    downloads = [v for (task, _), v in values.items() if task == "download"]
    assert sorted(d["series_instance_uid"] for d in downloads) == sorted(published["series_instance_uids"])
    assert all(d["verified"] and d["files"] == 3 and not d["skipped"] for d in downloads)
    study_folder = f"{root}/tcia_flagship/downloads/{published['patient_id']}/{published['study_instance_uid']}/"
    for d in downloads:
        assert d["path"] == study_folder + d["series_instance_uid"] + (".zip" if layout == "zip" else "")
        assert len(dicom_files(d["path"])) == 3
    # The asset event says what arrived.
    extra = asset_events("tcia_flagship_downloaded_series")[-1]
    assert extra["collection"] == COLLECTION
    assert sorted(s["location"] for s in extra["series"]) == sorted(d["path"] for d in downloads)
    # The sensor deferred: its trigger polled the emulator after the worker's first poke.
    polls = [r for r in tcia_emulator.requests() if r["endpoint"] == "NewStudiesInPatientCollection"]
    assert len(polls) >= 3

    # The downstream DAG, fed the locations of that asset event.
    process = load_example("tcia_flagship_process").dag
    locations = [s["location"] for s in extra["series"]]
    processed = run_example(process, run_conf={"output_root": root, "series": locations})
    report = xcoms(processed)[("report", -1)]
    assert report["series"] == 2

    index = list(csv.DictReader(io.StringIO(ObjectStoragePath(report["index"]).read_text())))
    assert sorted(r["SeriesInstanceUID"] for r in index) == sorted(published["series_instance_uids"])
    for row in index:
        assert row["Collection"] == COLLECTION
        assert row["PatientID"] == published["patient_id"]
        assert row["StudyInstanceUID"] == published["study_instance_uid"]
        assert row["instances"] == "3"
        assert row["Modality"] == "CT" and row["SeriesDate"] and row["StudyDescription"]
        assert row["Rows"] == row["Columns"] == "256"
        assert float(row["row_spacing_mm"]) > 0 and float(row["column_spacing_mm"]) > 0
    # The same index as Parquet beside it (pyarrow is installed with the dev extras).
    import pyarrow.parquet as pq

    with ObjectStoragePath(report["index_parquet"]).open("rb") as fh:
        table = pq.read_table(fh)
    assert sorted(table.column("SeriesInstanceUID").to_pylist()) == sorted(published["series_instance_uids"])
    assert table.column("instances").to_pylist() == [3, 3]
    from PIL import Image

    lib = sys.modules["tcia_flagship_lib"]
    with ObjectStoragePath(report["contact_sheet"]).open("rb") as fh:
        sheet = Image.open(fh)
        sheet.load()
    assert sheet.format == "PNG"
    gap = lib.TILE_GAP  # two tiles side by side, each above its label
    assert sheet.size == (2 * (lib.THUMBNAIL + gap) + gap, lib.THUMBNAIL + lib.LABEL_HEIGHT + 2 * gap)
    assert sheet.getextrema()[1] > 0  # not blank


@INGEST
@pytest.mark.tcia_emulator(api_key=KEY)
def test_ingest_again_skips_what_is_already_there(airflow_db, tcia_emulator, setup):
    root, layout = setup
    published = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    ingest = load_example("tcia_flagship_ingest").dag
    conf = {"output_root": root, "collection": COLLECTION, "layout": layout}
    run_example(ingest, run_conf=conf)
    second = run_example(ingest, run_conf=conf)
    [again] = [v for (task, _), v in xcoms(second).items() if task == "download"]
    assert again["series_instance_uid"] == published["series_instance_uids"][0]
    assert again["skipped"] is True  # idempotent: a repeated announcement costs no download


@pytest.mark.example_dag("tcia_flagship_event_ingest")
@pytest.mark.asset_watchers
def test_event_ingest_downloads_what_the_watcher_announced(airflow_db, tcia_emulator, setup):
    root, layout = setup
    module = load_example("tcia_flagship_event_ingest")
    watcher = module.NEW_STUDIES.watchers[0].trigger
    published = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)

    async def first_event():
        agen = watcher.run()
        try:
            return await asyncio.wait_for(agen.__anext__(), 30)
        finally:
            await agen.aclose()

    payload = asyncio.run(first_event()).payload
    assert [s["StudyInstanceUID"] for s in payload["studies"]] == [published["study_instance_uid"]]

    run = run_example(module.dag, run_conf={"output_root": root, "studies": payload["studies"], "layout": layout})
    values = xcoms(run)
    assert values[("new_studies", -1)] == payload["studies"]
    [download] = [v for (task, _), v in values.items() if task == "download"]
    assert download["series_instance_uid"] == published["series_instance_uids"][0]
    assert download["verified"]
    assert values[("announce", -1)]["series"][0]["location"] == download["path"]


@INGEST
@PROCESS
def test_process_without_asset_event_processes_everything_downloaded(airflow_db, tcia_emulator, setup):
    root, layout = setup
    published = tcia_emulator.publish(COLLECTION, series_count=1, image_count=2)
    ingest = load_example("tcia_flagship_ingest").dag
    conf = {"output_root": root, "collection": COLLECTION, "layout": layout}
    run_example(ingest, run_conf=conf)
    process = load_example("tcia_flagship_process").dag
    run = run_example(process, run_conf={"output_root": root})
    report = xcoms(run)[("report", -1)]
    index = list(csv.DictReader(io.StringIO(ObjectStoragePath(report["index"]).read_text())))
    assert [r["SeriesInstanceUID"] for r in index] == published["series_instance_uids"]
