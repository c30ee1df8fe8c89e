"""The download operators' XCom and their HTTP sessions, against the bundled emulator over real sockets.

One XCom policy with the query operators (``operators/xcom.py``): the same ``max_xcom_bytes`` default and
check; summaries that might exceed it refused before any request (the emulator's log shows nothing sent),
never after a download; a bound never below what is pushed; ``summary_path`` holding the full result with
XCom carrying its path and the counts; ``do_xcom_push=False`` pushing and refusing nothing. And every HTTP
session a download task opens is closed, whether it succeeded or failed.
"""

from __future__ import annotations

import json
import re

import pytest

from airflow_provider_tcia.compat import AirflowFailException, ObjectStoragePath
from airflow_provider_tcia.exceptions import TciaResultTooLargeError, TciaServerError
from airflow_provider_tcia.operators.download import _image_bound
from airflow_provider_tcia.operators.query import TciaGetSeriesOperator
from airflow_provider_tcia.operators.xcom import DEFAULT_MAX_XCOM_BYTES, json_bytes
from tests.dags import files_under
from tests.operators.test_download_operators import image_operator, operator, publish
from tests.sessions import requests_sessions

pytestmark = pytest.mark.integration


@pytest.fixture
def use_emulator(use_emulator):
    """The shared fixture with 3 tries in all, so that 'more faults than retries' stays small."""
    return lambda emulator, api, **extras: use_emulator(emulator, api, **{"max_retries": 2, **extras})


# --- the cap, checked before anything is sent ---------------------------------------------------------
def test_the_cap_is_the_query_operators_checked_the_same_way():
    series = operator(series_instance_uids="1.2.3", destination="file:///data")
    assert series.max_xcom_bytes == TciaGetSeriesOperator(task_id="q").max_xcom_bytes == DEFAULT_MAX_XCOM_BYTES
    for make in (
        lambda: operator(series_instance_uids="1.2.3", destination="file:///data", max_xcom_bytes=0),
        lambda: image_operator("1.2.3", "1.2.4", "file:///data", max_xcom_bytes=True),
        lambda: TciaGetSeriesOperator(task_id="q", max_xcom_bytes=-1),
    ):
        with pytest.raises(ValueError, match="max_xcom_bytes must be a positive number of bytes"):
            make()


@pytest.mark.parametrize(
    ("summary_path", "message"),
    [
        ("file:///tmp/meta/", "summary_path='file:///tmp/meta/' names a folder"),
        (" ", "summary_path rendered to an empty string"),
        ("meta.json", "summary_path='meta.json': 'meta.json' is relative"),
    ],
)
def test_a_bad_summary_path_fails_before_anything_is_sent(
    tcia_emulator, use_emulator, run_operator, tmp_path, summary_path, message
):
    use_emulator(tcia_emulator, "nbia")
    op = operator(series_instance_uids="1.2.3", destination=f"file://{tmp_path}/out", summary_path=summary_path)
    with pytest.raises(AirflowFailException, match=re.escape(message)):
        run_operator(op)
    assert tcia_emulator.requests() == []


@pytest.mark.parametrize("nested", [False, True])
def test_summaries_that_might_not_fit_are_refused_before_any_request(
    tcia_emulator, use_emulator, run_operator, tmp_path, monkeypatch, nested
):
    use_emulator(tcia_emulator, "nbia")
    uids = publish(tcia_emulator)["series_instance_uids"]
    tcia_emulator.clear_requests()
    sessions = requests_sessions(monkeypatch)
    destination = f"file://{tmp_path}/out"
    with pytest.raises(AirflowFailException, match=r"the summaries of 2 series could take up to \d+ bytes") as err:
        run_operator(operator(series_instance_uids=uids, destination=destination, nested=nested, max_xcom_bytes=300))
    assert isinstance(err.value.__cause__, TciaResultTooLargeError)  # no Airflow retries: it would fail again
    text = str(err.value)
    assert "too much for XCom (max_xcom_bytes=300); nothing was sent or downloaded" in text
    assert f"summary_path= (e.g. '{destination}/summaries.json')" in text
    assert "do_xcom_push=False: every series' manifest" in text
    assert tcia_emulator.requests() == [] and sessions.opened == []
    assert not (tmp_path / "out").exists()


def test_the_bound_is_never_below_what_is_pushed(tcia_emulator, use_emulator, run_operator, tmp_path):
    """Nested layout, bare UIDs: the folders are looked up during the download, so the bound assumes DICOM's
    longest PatientID and StudyInstanceUID. A cap of exactly the bound lets the download through, and what is
    pushed is within it."""
    use_emulator(tcia_emulator, "legacy")
    uids = publish(tcia_emulator)["series_instance_uids"]
    kwargs = {"series_instance_uids": uids, "destination": f"file://{tmp_path}", "nested": True}
    with pytest.raises(AirflowFailException, match=r"could take up to \d+ bytes") as err:
        run_operator(operator(**kwargs, max_xcom_bytes=1))
    bound = int(re.search(r"could take up to (\d+) bytes", str(err.value)).group(1))
    results = run_operator(operator(**kwargs, max_xcom_bytes=bound))
    assert len(results) == 2 and all(r["verified"] for r in results)
    assert json_bytes(results) <= bound


@pytest.mark.parametrize("api", ["legacy", "nbia"])
def test_summary_path_holds_the_full_result_and_xcom_its_path(tcia_emulator, use_emulator, run_operator, tmp_path, api):
    use_emulator(tcia_emulator, api)
    uids = publish(tcia_emulator)["series_instance_uids"]
    summary_path = f"file://{tmp_path}/meta/summaries.json"
    kwargs = {"series_instance_uids": uids, "destination": f"file://{tmp_path}/out", "summary_path": summary_path}
    pushed = run_operator(operator(**kwargs, max_xcom_bytes=300))  # too small for the list, not for its path
    written = json.loads((tmp_path / "meta" / "summaries.json").read_text())
    assert [s["series_instance_uid"] for s in written] == uids and all(s["verified"] for s in written)
    assert pushed == {
        "summary_path": summary_path,
        "count": 2,
        "downloaded": 2,
        "skipped": 0,
        "verified": 2,
        "bytes": sum(s["bytes"] for s in written),
    }
    assert files_under(tmp_path / "meta") == ["summaries.json"]  # written atomically: no temporary left
    again = run_operator(operator(**kwargs))
    assert again["skipped"] == 2 and again["downloaded"] == 0
    assert all(s["skipped"] for s in json.loads((tmp_path / "meta" / "summaries.json").read_text()))


def test_images_follow_the_same_cap_and_summary_path(tcia_emulator, use_emulator, run_operator, tmp_path):
    hook = use_emulator(tcia_emulator, "nbia")
    uid = publish(tcia_emulator, series=1, images=3)["series_instance_uids"][0]
    sops = [s["SOPInstanceUID"] for s in hook.get_sop_instance_uids(uid)]
    tcia_emulator.clear_requests()
    destination = f"file://{tmp_path}/out"
    with pytest.raises(AirflowFailException, match=r"the summaries of 3 images could take up to .*each image is at"):
        run_operator(image_operator(uid, sops, destination, max_xcom_bytes=500))
    assert tcia_emulator.requests() == []

    results = run_operator(image_operator(uid, sops, destination))
    bound = _image_bound(ObjectStoragePath(destination), uid, sops[0])
    assert list(bound) == list(results[0]) and bound["path"] == results[0]["path"]  # the bound has its shape

    summary_path = f"file://{tmp_path}/images.json"
    pushed = run_operator(image_operator(uid, sops, destination, max_xcom_bytes=500, summary_path=summary_path))
    assert pushed["summary_path"] == summary_path and pushed["count"] == pushed["skipped"] == 3
    assert [s["sop_instance_uid"] for s in json.loads((tmp_path / "images.json").read_text())] == sops


def test_do_xcom_push_false_pushes_nothing_and_refuses_nothing(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    uids = publish(tcia_emulator)["series_instance_uids"]
    op = operator(series_instance_uids=uids, destination=f"file://{tmp_path}", max_xcom_bytes=1, do_xcom_push=False)
    assert run_operator(op) is None
    for uid in uids:  # each series' manifest holds its result
        assert json.loads((tmp_path / f"{uid}.manifest.json").read_text())["verified"] is True


# --- sessions: one per task, closed however it ends ---------------------------------------------------
def test_a_download_opens_one_session_and_closes_it(tcia_emulator, use_emulator, run_operator, tmp_path, monkeypatch):
    hook = use_emulator(tcia_emulator, "nbia")
    uids = publish(tcia_emulator, series=3)["series_instance_uids"]
    sops = [s["SOPInstanceUID"] for s in hook.get_sop_instance_uids(uids[0])]
    sessions = requests_sessions(monkeypatch)  # from here on: the operators' sessions only
    run_operator(operator(series_instance_uids=uids, destination=f"file://{tmp_path}", max_concurrency=3))
    assert len(sessions.opened) == 1 and sessions.still_open == []  # shared by the three downloads
    run_operator(image_operator(uids[0], sops, f"file://{tmp_path}/images", max_concurrency=2))
    assert len(sessions.opened) == 2 and sessions.still_open == []


@pytest.mark.parametrize("what", ["series", "image"])
def test_a_failed_download_closes_its_session(tcia_emulator, use_emulator, run_operator, tmp_path, monkeypatch, what):
    hook = use_emulator(tcia_emulator, "legacy")
    uid = publish(tcia_emulator, series=1)["series_instance_uids"][0]
    sop = hook.get_sop_instance_uids(uid)[0]["SOPInstanceUID"]
    endpoint = "getImage" if what == "series" else "getSingleImage"
    tcia_emulator.inject_fault(endpoint, "server_error", count=5, status=503)
    sessions = requests_sessions(monkeypatch)
    op = operator(series_instance_uids=uid, destination=f"file://{tmp_path}")
    with pytest.raises(TciaServerError, match="HTTP 503"):
        run_operator(op if what == "series" else image_operator(uid, sop, f"file://{tmp_path}"))
    assert len(sessions.opened) == 1 and sessions.still_open == []
