"""Revised series are downloaded again, unchanged ones still skipped: against the emulator over real sockets.

The emulator publishes a revision of a series (``revise``: same SeriesInstanceUID, other files, a new
DateReleased and MaxSubmissionTimestamp); its request log shows which series were downloaded again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest
import requests

from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from airflow_provider_tcia.revisions import Revision, revision_change, server_timestamp
from airflow_provider_tcia.storage import PARTIAL_MARK

pytestmark = pytest.mark.integration

TODAY = dt.date.today()
TOMORROW = TODAY + dt.timedelta(days=1)
COLLECTION = "TCIA-REV-TEST"


def publish(emulator, series: int = 2) -> list[str]:
    """Series released well before today, so that a revision released today is newer."""
    return emulator.publish(COLLECTION, series_count=series, image_count=2, released="2024-01-10")[
        "series_instance_uids"
    ]


def rows(hook, uids: list[str]) -> list[dict]:
    return [row for uid in uids for row in hook.get_series(series_instance_uid=uid)]


def downloaded(emulator, since: int) -> list[str]:
    """The series whose images were asked for after request ``since``."""
    return [
        value
        for r in emulator.requests(since)
        if r["endpoint"] in ("getImage", "getImageWithMD5Hash")
        for key, value in r["query"]
        if key == "SeriesInstanceUID"
    ]


def last_id(emulator) -> int:
    log = emulator.requests()
    return log[-1]["id"] if log else 0


def download(run_operator, tmp_path: Path, series, layout: str, **kwargs) -> list[dict]:
    op = TciaDownloadSeriesOperator(
        task_id="download", destination=f"file://{tmp_path}/out", series_instance_uids=series, layout=layout, **kwargs
    )
    return run_operator(op)


def dicom_bytes(tmp_path: Path, uid: str, layout: str) -> dict[str, bytes]:
    if layout == "zip":
        with zipfile.ZipFile(tmp_path / "out" / f"{uid}.zip") as archive:
            return {n: archive.read(n) for n in archive.namelist() if n.endswith(".dcm")}
    return {p.name: p.read_bytes() for p in (tmp_path / "out" / uid).iterdir() if p.name.endswith(".dcm")}


def served(emulator, api: str, uid: str) -> dict[str, bytes]:
    path = "/nbia-api/services/v4/getImage" if api == "nbia" else "/services/v2/TCIA/query/getImage"
    body = requests.get(emulator.url + path, params={"SeriesInstanceUID": uid}, timeout=30).content
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n.endswith(".dcm")}


def manifest(tmp_path: Path, uid: str) -> dict:
    return json.loads((tmp_path / "out" / f"{uid}.manifest.json").read_text())


@pytest.mark.parametrize("layout", ["zip", "extract"])
@pytest.mark.parametrize("api", ["nbia", "legacy"])
def test_a_revised_series_is_downloaded_again_an_unchanged_one_skipped(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, layout
):
    hook = use_emulator(tcia_emulator, api)
    revised, unchanged = publish(tcia_emulator)
    first = download(run_operator, tmp_path, rows(hook, [revised, unchanged]), layout)
    assert [s["skipped"] for s in first] == [False, False]
    if api == "nbia":
        assert manifest(tmp_path, revised)["server_revision"] == {
            "date_released": "2024-01-10",
            "submitted": "2024-01-10",
            "image_count": 2,
        }
        # NBIA's rows carry the dates: a revision with the same files, other content, is told apart by them.
        change = tcia_emulator.revise(revised)
    else:
        # The seed's rows have no dates: only a revision that adds (or removes) images can be told apart.
        change = tcia_emulator.revise(revised, image_count=3)
    old = dicom_bytes(tmp_path, revised, layout)
    kept = dicom_bytes(tmp_path, unchanged, layout)

    since = last_id(tcia_emulator)
    again = download(run_operator, tmp_path, rows(hook, [revised, unchanged]), layout)
    assert downloaded(tcia_emulator, since) == [revised]  # the request log: the revision only
    assert [s["skipped"] for s in again] == [False, True]
    new = dicom_bytes(tmp_path, revised, layout)
    assert new == served(tcia_emulator, api, revised) and new != old
    assert len(new) == change["image_count"]
    assert dicom_bytes(tmp_path, unchanged, layout) == kept
    recorded = manifest(tmp_path, revised)["server_revision"]
    assert recorded["image_count"] == change["image_count"]
    if api == "nbia":
        assert recorded["date_released"] == recorded["submitted"] == TODAY.isoformat()
    # Nothing of the old copy or of the temporary names is left beside it.
    assert not [p for p in (tmp_path / "out").rglob("*") if PARTIAL_MARK in p.name]

    since = last_id(tcia_emulator)
    third = download(run_operator, tmp_path, rows(hook, [revised, unchanged]), layout)
    assert downloaded(tcia_emulator, since) == [] and [s["skipped"] for s in third] == [True, True]


def test_bare_uids_ask_getseries_once_per_series_already_present(tcia_emulator, use_emulator, run_operator, tmp_path):
    """A bare UID carries no revision: for a series already present, NBIA's getSeries is asked once; the copy,
    downloaded without dates, counts as of the day it was downloaded."""
    use_emulator(tcia_emulator, "nbia")
    revised, unchanged, same_day = publish(tcia_emulator, series=3)
    since = last_id(tcia_emulator)
    download(run_operator, tmp_path, [revised, unchanged, same_day], "zip")
    first = [r["endpoint"] for r in tcia_emulator.requests(since)]
    assert "getSeries" not in first  # a fresh download asks nothing more than before
    assert manifest(tmp_path, revised)["server_revision"]["date_released"] is None

    tcia_emulator.revise(revised, released=TOMORROW.isoformat())  # released after the copy was made
    tcia_emulator.revise(same_day)  # released today, the day of the copy: not told apart by its date
    since = last_id(tcia_emulator)
    again = download(run_operator, tmp_path, [revised, unchanged, same_day], "zip")
    assert downloaded(tcia_emulator, since) == [revised]
    assert [s["skipped"] for s in again] == [False, True, True]
    asked = [v for r in tcia_emulator.requests(since) if r["endpoint"] == "getSeries" for k, v in r["query"]]
    assert sorted(v for v in asked if v != "json") == sorted([revised, unchanged, same_day])


def test_rows_older_than_the_copy_do_not_bring_it_back(tcia_emulator, use_emulator, run_operator, tmp_path):
    """getSeries rows listed before a revision, used again after the revision was downloaded: the copy is newer
    than what they say, so it stays."""
    hook = use_emulator(tcia_emulator, "nbia")
    (uid,) = publish(tcia_emulator, series=1)
    stale = rows(hook, [uid])
    tcia_emulator.revise(uid)
    download(run_operator, tmp_path, rows(hook, [uid]), "zip")
    since = last_id(tcia_emulator)
    [again] = download(run_operator, tmp_path, stale, "zip")
    assert again["skipped"] and downloaded(tcia_emulator, since) == []


def test_check_revisions_false_always_skips_a_present_series(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    (uid,) = publish(tcia_emulator, series=1)
    download(run_operator, tmp_path, [uid], "zip")
    tcia_emulator.revise(uid, image_count=3)
    since = last_id(tcia_emulator)
    [again] = download(run_operator, tmp_path, [uid], "zip", check_revisions=False)
    assert again["skipped"] and [r["endpoint"] for r in tcia_emulator.requests(since)] == []  # nothing asked


def test_revision_change():
    then = Revision("2024-01-10", "2024-01-10", 2)
    assert revision_change(Revision("2024-01-10", "2024-01-10", 2), then) is None
    assert revision_change(Revision("2024-01-09", "2024-01-09", 2), then) is None  # older says nothing
    assert "DateReleased is now 2024-02-01" in revision_change(Revision("2024-02-01", "2024-01-10", 2), then)
    assert "submission" in revision_change(Revision("2024-01-10", "2024-01-11T08:00:00", 2), then)
    assert "ImageCount is now 3" in revision_change(Revision("2024-01-10", "2024-01-10", 3), then)
    assert revision_change(Revision(None, None, None), then) is None
    assert revision_change(Revision("2024-02-01"), None) is None


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("03-08-2019", "2019-03-08"),  # NBIA v4
        ("2019-03-08 00:00:00.0", "2019-03-08"),  # NBIA v1
        ("2019-03-08 10:33:42.0", "2019-03-08T10:33:42"),
        ("2019-03-08", "2019-03-08"),
        ("20190308", "2019-03-08"),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_server_timestamps(text, iso):
    assert server_timestamp(text) == iso


def test_a_row_in_any_spelling():
    assert Revision.of_row(
        {"DateReleased": "03-08-2019", "MaxSubmissionTimestamp": "02-25-2019", "ImageCount": 57}
    ) == (Revision("2019-03-08", "2019-02-25", 57))
    assert Revision.of_row({"Date Released": "2019-03-08 00:00:00.0", "TimeStamp": "2019-02-25 00:00:00.0"}) == (
        Revision("2019-03-08", "2019-02-25", None)
    )
