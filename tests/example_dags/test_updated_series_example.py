"""The updated-series example: its watcher announces new series, then a revision; the DAG downloads them, the
revision again (request log), and skips what is current."""

from __future__ import annotations

import asyncio

import pytest

from tests.dags import load_example, run_example, xcoms
from tests.downloads.test_revisions import downloaded

pytestmark = [pytest.mark.integration, pytest.mark.example_dag("tcia_updated_series"), pytest.mark.asset_watchers]


def test_the_watcher_announces_and_the_dag_downloads_new_and_revised_series(
    airflow_db, tcia_emulator, use_emulator, monkeypatch, tmp_path
):
    use_emulator(tcia_emulator, "nbia")
    monkeypatch.setenv("TCIA_UPDATED_SERIES_POLL_INTERVAL", "0.2")
    module = load_example("tcia_updated_series")
    watcher = module.UPDATED_SERIES.watchers[0].trigger
    conf = {"output_root": f"file://{tmp_path}"}
    new = tcia_emulator.publish("TCGA-BRCA", series_count=2, image_count=2)["series_instance_uids"]

    loop = asyncio.new_event_loop()
    agen = watcher.run()

    def next_payload() -> dict:
        return loop.run_until_complete(asyncio.wait_for(agen.__anext__(), 30)).payload

    try:
        first = next_payload()
        assert [row["SeriesInstanceUID"] for row in first["series"]] == new
        run = run_example(module.dag, run_conf=conf | {"series": first["series"]})
        assert [s["skipped"] for s in xcoms(run)[("download", -1)]] == [False, False]

        tcia_emulator.revise(new[0], image_count=3)
        revision = next_payload()
        assert revision["revised"] == [new[0]]
        since = tcia_emulator.requests()[-1]["id"]
        run = run_example(module.dag, run_conf=conf | {"series": first["series"] + revision["series"]})
        summaries = {s["series_instance_uid"]: s for s in xcoms(run)[("download", -1)]}
        assert downloaded(tcia_emulator, since) == [new[0]]  # the revision again; the unchanged one skipped
        assert (summaries[new[0]]["skipped"], summaries[new[0]]["files"]) == (False, 3)
        assert summaries[new[1]]["skipped"] is True
    finally:
        loop.run_until_complete(agen.aclose())
        loop.close()
