"""``tcia_manifest_download`` with ``dag.test()`` against the emulator, on both APIs: the selection written as a
``.tcia`` and every series it lists downloaded and verified; a manifest in TCIA's own format (CRLF, a ``Series
ID`` line) downloads exactly its series; a file that is not a manifest fails the download before anything is
asked."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from airflow_provider_tcia.downloads.layout import verified_series
from airflow_provider_tcia.downloads.tcia_manifest import iter_manifest, manifest_file
from tests.airflow_compat import AIRFLOW_VERSION
from tests.dags import files_under, load_example, run_example, states, xcoms
from tests.downloads.test_revisions import downloaded

pytestmark = [pytest.mark.integration, pytest.mark.example_dag("tcia_manifest_download")]

COLLECTION, PATIENT = "TCIA-MANIFEST-TEST", "MF-0001"


def listed(url: str) -> list[str]:
    """The SeriesInstanceUIDs a manifest lists, as the download operator reads them."""
    return [ref.series_instance_uid for ref in iter_manifest(*manifest_file(url))]


def asked_for_the_patient(request: dict) -> bool:
    """Whether an emulator request asked about the selection's patient (getSeries of the selection)."""
    return ("PatientID", PATIENT) in map(tuple, request["query"])


def verified_on_disk(series_root: Path) -> dict[str, bool]:
    """Each series' verification record below ``series_root``: its UID and whether it says verified."""
    records = [json.loads(p.read_text()) for p in series_root.glob("*.manifest.json")]
    return {r["series_instance_uid"]: r["verified"] for r in records}


def tcia_portal_manifest(uids: list[str]) -> bytes:
    """A manifest as TCIA's portal hands it out: CRLF line ends, older keys, a stray ``Series ID`` line."""
    lines = [
        "downloadServerUrl=https://public.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet",
        "includeAnnotation=true",
        "noOfrRetry=4",
        "databasketId=manifest-1700000000000.tcia",
        "manifestVersion=3.0",
        "ListOfSeriesToDownload=",
        "Series ID",
        *uids,
    ]
    return "\r\n".join(lines).encode() + b"\r\n"


@pytest.mark.parametrize("api", ["legacy", "nbia"])
def test_the_selection_is_written_as_a_tcia_manifest_and_downloaded(
    airflow_db, tcia_emulator, use_emulator, tmp_path, api
):
    hook = use_emulator(tcia_emulator, api)
    tcia_emulator.publish(COLLECTION, series_count=3, image_count=2, patient_id=PATIENT)
    expected = sorted(r["SeriesInstanceUID"] for r in hook.get_series(collection=COLLECTION, patient_id=PATIENT))
    module = load_example("tcia_manifest_download")
    conf = {"collection": COLLECTION, "patient_id": PATIENT, "output_root": f"file://{tmp_path}"}

    dag_run = run_example(module.dag, run_conf=conf)

    assert set(states(dag_run).values()) == {"success"}
    values = xcoms(dag_run)
    written = values[("write_selection", -1)]
    assert written["format"] == "tcia" and written["source"] == ("getManifestText" if api == "nbia" else "local")
    assert values[("manifest_to_download", -1)] == written["path"]
    manifest_path = Path(manifest_file(written["path"])[0].path)
    assert manifest_path.name == "selection.tcia" and manifest_path.is_relative_to(tmp_path / "tcia_manifest_download")
    assert sorted(listed(written["path"])) == expected and written["series"] == len(expected)

    series_root = tmp_path / "tcia_manifest_download" / "series"
    assert verified_on_disk(series_root) == dict.fromkeys(expected, True)
    assert sorted(Path(str(p.path)).name for p in verified_series(f"file://{series_root}")) == [
        f"{uid}.zip" for uid in expected
    ]
    assert sorted(downloaded(tcia_emulator, 0)) == expected
    check = values[("check_downloads", -1)]
    assert (check["series"], check["downloaded"], check["skipped"]) == (len(expected), len(expected), 0)
    assert check["manifest"] == written["path"]


def test_a_manifest_from_tcia_downloads_exactly_its_series(airflow_db, tcia_emulator, use_emulator, tmp_path):
    hook = use_emulator(tcia_emulator, "nbia")
    tcia_emulator.publish(COLLECTION, series_count=4, image_count=2, patient_id=PATIENT)
    module = load_example("tcia_manifest_download")
    conf = {"collection": COLLECTION, "patient_id": PATIENT, "output_root": f"file://{tmp_path / 'out'}"}
    first = run_example(module.dag, run_conf=conf)  # the selection: all four, written and downloaded
    everything = sorted(listed(xcoms(first)[("write_selection", -1)]["path"]))
    rows = hook.get_series(collection=COLLECTION, patient_id=PATIENT)
    assert everything == sorted(r["SeriesInstanceUID"] for r in rows) and len(everything) == 4
    assert [r for r in tcia_emulator.requests() if asked_for_the_patient(r)]  # the selection's getSeries

    # A colleague's manifest of two of them and one series of another collection, in TCIA's own format.
    other = tcia_emulator.publish("TCIA-MANIFEST-OTHER", series_count=1, image_count=2)["series_instance_uids"]
    chosen = [everything[1], everything[3], *other]
    given = tmp_path / "manifest-1700000000000.tcia"
    given.write_bytes(tcia_portal_manifest(chosen))
    since = tcia_emulator.requests()[-1]["id"]

    second = run_example(module.dag, run_conf={**conf, "manifest": f"file://{given}"})

    tis = states(second)
    assert tis[("series", -1)] == tis[("write_selection", -1)] == "skipped"
    assert tis[("download", -1)] == tis[("check_downloads", -1)] == "success"
    assert xcoms(second)[("manifest_to_download", -1)] == f"file://{given}"
    summaries = xcoms(second)[("download", -1)]
    assert sorted(s["series_instance_uid"] for s in summaries) == sorted(chosen)
    # Exactly the series it lists: the new one downloaded, the two already there skipped as verified.
    assert downloaded(tcia_emulator, since) == other
    assert {s["series_instance_uid"]: s["skipped"] for s in summaries} == {
        everything[1]: True,
        everything[3]: True,
        other[0]: False,
    }
    # No selection was queried or written (getSeries is asked only for the series present: their revisions).
    assert not [r for r in tcia_emulator.requests(since) if r["endpoint"] == "getManifestText"]
    assert not [r for r in tcia_emulator.requests(since) if asked_for_the_patient(r)]
    assert verified_on_disk(tmp_path / "out" / "tcia_manifest_download" / "series") == dict.fromkeys(
        [*everything, *other], True
    )
    check = xcoms(second)[("check_downloads", -1)]
    assert (check["series"], check["downloaded"], check["skipped"]) == (3, 1, 2)


@pytest.mark.parametrize("api", ["legacy", "nbia"])
def test_a_file_that_is_no_manifest_fails_the_run_and_downloads_nothing(
    airflow_db, tcia_emulator, use_emulator, tmp_path, capfd, caplog, api
):
    use_emulator(tcia_emulator, api)
    not_a_manifest = tmp_path / "given" / "manifest.tcia"
    not_a_manifest.parent.mkdir()
    with zipfile.ZipFile(not_a_manifest, "w") as archive:  # a series' zip saved under the manifest's name
        archive.writestr("1-01.dcm", b"\x00" * 256)
    out = tmp_path / "out"

    dag_run = run_example(
        load_example("tcia_manifest_download").dag,
        expect="failed",
        run_conf={"manifest": f"file://{not_a_manifest}", "output_root": f"file://{out}"},
    )
    logged = "".join(capfd.readouterr()) + caplog.text  # the console on Airflow 3, stdlib logging on 2.11

    tis = states(dag_run)
    assert tis[("download", -1)] == "failed" and tis[("check_downloads", -1)] == "upstream_failed"
    assert tis[("write_selection", -1)] == "skipped"
    # The task log says why. (Airflow 3.0's dag.test() does not always print a failed task's log to the console.)
    if AIRFLOW_VERSION[:2] != (3, 0):
        assert "TciaBadRequestError: manifest (" in logged and "is not a text file (it holds NUL bytes" in logged
    assert not out.exists() or files_under(out) == []
    assert downloaded(tcia_emulator, 0) == []
