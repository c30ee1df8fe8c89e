"""Every fault kind through real HTTP: what the client sees, how many requests it lasts, what it targets."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
import requests

from airflow_provider_tcia.emulator.faults import Fault
from tests.emulator.conftest import GBM_SERIES, GBM_SOP, LEGACY, LUNG4D_SERIES, NBIA_V1, NBIA_V4

pytestmark = pytest.mark.integration


@pytest.fixture
def emu(tcia_emulator):
    return tcia_emulator


def fetch(emu, path: str, timeout: float = 30, **params: str) -> requests.Response:
    with requests.Session() as session:  # a fresh connection: a reset must not spoil the next test's
        return session.get(emu.url + path, params=params, timeout=timeout)


def test_rate_limit_for_the_next_n_requests(emu):
    fault = emu.inject_fault("getSeries", kind="rate_limit", count=2, retry_after=3)
    assert fault["id"] >= 1 and fault["count"] == 2
    for _ in range(2):
        r = fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM").status_code == 200
    assert emu.faults() == []
    log = emu.requests()
    assert [e["fault"] for e in log] == ["rate_limit", "rate_limit", None]
    assert [e["status"] for e in log] == [429, 429, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors(emu, status):
    emu.inject_fault("getImage", kind="server_error", status=status)
    r = fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES)
    assert r.status_code == status and r.text
    assert fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES).status_code == 200


def test_a_fault_targets_its_endpoint_and_api(emu):
    emu.inject_fault("getSeries", kind="server_error", api="nbia")
    assert fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM").status_code == 200  # other API
    assert fetch(emu, f"{NBIA_V4}/getPatient", Collection="TCGA-GBM").status_code == 200  # other endpoint
    assert fetch(emu, f"{NBIA_V1}/getSeries", Collection="TCGA-GBM").status_code == 503
    # NBIA's own names, and the seed's name for the same endpoint, both work.
    emu.inject_fault("getPatientByCollectionAndModality", kind="server_error", count=1)
    emu.inject_fault("PatientsByModality", kind="server_error", count=1, status=502)
    assert (
        fetch(emu, f"{NBIA_V4}/getPatientByCollectionAndModality", Collection="TCGA-GBM", Modality="MR").status_code
        == 503
    )
    assert fetch(emu, f"{LEGACY}/PatientsByModality", Collection="TCGA-GBM", Modality="MR").status_code == 502
    emu.inject_fault("getImageWithMD5Hash", kind="server_error", status=500)
    assert fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=GBM_SERIES).status_code == 200
    assert fetch(emu, f"{NBIA_V1}/getImageWithMD5Hash", SeriesInstanceUID=GBM_SERIES).status_code == 500
    emu.inject_fault("*", kind="server_error", count=2)
    assert fetch(emu, f"{LEGACY}/getCollectionValues").status_code == 503
    assert fetch(emu, f"{NBIA_V4}/getSeriesSize", SeriesInstanceUID=GBM_SERIES).status_code == 503
    assert fetch(emu, f"{LEGACY}/getCollectionValues").status_code == 200


def test_latency(emu):
    emu.inject_fault("getCollectionValues", kind="latency", seconds=2.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        fetch(emu, f"{LEGACY}/getCollectionValues", timeout=0.25)
    r = fetch(emu, f"{LEGACY}/getCollectionValues")  # the fault is spent
    assert r.status_code == 200 and r.json()
    assert emu.requests()[0]["fault"] == "latency"


def test_latency_then_the_real_answer(emu):
    emu.inject_fault("getSeries", kind="latency", seconds=0.05)
    r = fetch(emu, f"{NBIA_V4}/getSeries", SeriesInstanceUID=GBM_SERIES)
    assert r.status_code == 200 and r.json()[0]["SeriesInstanceUID"] == GBM_SERIES


@pytest.mark.parametrize("path", [f"{LEGACY}/getImage", f"{NBIA_V4}/getImage"])
def test_reset_in_the_middle_of_a_download(emu, path):
    emu.inject_fault("getImage", kind="reset", after_bytes=20_000)
    with requests.Session() as session:
        r = session.get(emu.url + path, params={"SeriesInstanceUID": GBM_SERIES}, stream=True, timeout=30)
        assert r.status_code == 200
        received = bytearray()
        with pytest.raises(requests.exceptions.RequestException):
            for chunk in r.iter_content(4096):
                received += chunk
    assert 0 < len(received) <= 20_000
    assert zipfile.ZipFile(io.BytesIO(fetch(emu, path, SeriesInstanceUID=GBM_SERIES).content)).testzip() is None


def test_reset_of_a_small_answer(emu):
    emu.inject_fault("getSeries", kind="reset")
    # Headers and half the body arrive, then the connection is reset.
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM")
    assert fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM").status_code == 200


def test_a_zip_cut_short_with_status_200(emu):
    emu.inject_fault("getImage", kind="truncate")
    r = fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=LUNG4D_SERIES)
    full = fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=LUNG4D_SERIES).content
    assert r.status_code == 200
    assert len(r.content) == len(full) // 2 and full.startswith(r.content)  # cut at half by default
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(r.content))
    # With md5hashes.csv too, the default cut is exactly half of what the full zip would have been.
    emu.inject_fault("getImageWithMD5Hash", kind="truncate")
    r = fetch(emu, f"{NBIA_V1}/getImageWithMD5Hash", SeriesInstanceUID=LUNG4D_SERIES)
    full = fetch(emu, f"{NBIA_V1}/getImageWithMD5Hash", SeriesInstanceUID=LUNG4D_SERIES).content
    assert (r.status_code, len(r.content)) == (200, len(full) // 2)
    emu.inject_fault("getImage", kind="truncate", after_bytes=1000, api="legacy")
    r = fetch(emu, f"{LEGACY}/getImage", SeriesInstanceUID=LUNG4D_SERIES)
    assert (r.status_code, len(r.content)) == (200, 1000)


def test_a_truncated_json_answer_keeps_a_consistent_content_length(emu):
    whole = fetch(emu, f"{NBIA_V4}/getSeries", Collection="TCGA-BRCA")
    emu.inject_fault("getSeries", kind="truncate", after_bytes=100)
    r = fetch(emu, f"{NBIA_V4}/getSeries", Collection="TCGA-BRCA")
    assert r.status_code == 200 and r.headers["Content-Length"] == "100"
    assert r.content == whole.content[:100]
    with pytest.raises(requests.JSONDecodeError):
        r.json()


@pytest.mark.parametrize("path", [f"{NBIA_V4}/getImage", f"{LEGACY}/getImage"])
def test_a_zip_cut_short_under_a_consistent_content_length(emu, path):
    """``content_length=True``: the cut body goes out under a Content-Length equal to its length (a zip is
    otherwise chunked): nothing in the framing says anything is missing."""
    full = fetch(emu, path, SeriesInstanceUID=LUNG4D_SERIES).content
    emu.inject_fault("getImage", kind="truncate", content_length=True)
    r = fetch(emu, path, SeriesInstanceUID=LUNG4D_SERIES)
    assert r.status_code == 200 and "Transfer-Encoding" not in r.headers
    assert r.headers["Content-Length"] == str(len(full) // 2) and r.content == full[: len(full) // 2]
    emu.inject_fault("getImage", kind="truncate", content_length=True, after_bytes=1000)
    r = fetch(emu, path, SeriesInstanceUID=LUNG4D_SERIES)
    assert (r.headers["Content-Length"], r.content) == ("1000", full[:1000])
    # An after_bytes past the end of a body of known size sends it whole, still under a true Content-Length.
    emu.inject_fault("getImage", kind="truncate", content_length=True, after_bytes=len(full) + 99)
    r = fetch(emu, path, SeriesInstanceUID=LUNG4D_SERIES)
    assert (r.headers["Content-Length"], r.content) == (str(len(full)), full)


@pytest.mark.parametrize("path", [f"{NBIA_V4}/getSingleImage", f"{LEGACY}/getSingleImage"])
def test_a_single_image_cut_short_under_a_consistent_content_length(emu, path):
    """The fault of the issue: half the DICOM file, under a Content-Length of that half."""
    params = {"SeriesInstanceUID": GBM_SERIES, "SOPInstanceUID": GBM_SOP}
    full = fetch(emu, path, **params).content
    assert full[128:132] == b"DICM"
    emu.inject_fault("getSingleImage", kind="truncate", content_length=True)
    r = fetch(emu, path, **params)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(len(full) // 2)
    assert r.content == full[: len(full) // 2]
    assert [e["fault"] for e in emu.requests()] == [None, "truncate"]


def test_a_fault_on_getsingleimage_spares_getmd5hashforimage(emu):
    emu.inject_fault("getSingleImage", kind="server_error")
    assert fetch(emu, f"{NBIA_V4}/getMD5HashForImage", SOPInstanceUID=GBM_SOP).status_code == 200
    assert emu.faults() != []
    emu.inject_fault("getMD5HashForImage", kind="server_error", status=502)
    assert fetch(emu, f"{NBIA_V1}/getM5HashForImage", SOPInstanceUid=GBM_SOP).status_code == 502


def test_a_wrong_md5(emu):
    emu.inject_fault("getImage", kind="bad_md5")
    r = fetch(emu, f"{NBIA_V4}/getImage", SeriesInstanceUID=LUNG4D_SERIES, IncludeMD5="Yes")
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None  # the zip itself is sound
    rows = [line.split(",") for line in archive.read("md5hashes.csv").decode().splitlines()[1:]]
    wrong = [name for name, digest in rows if hashlib.md5(archive.read(name)).hexdigest() != digest]
    assert wrong == ["00000001.dcm"]


def test_an_html_error_page_with_status_200(emu):
    emu.inject_fault("getSeries", kind="html_error")
    r = fetch(emu, f"{NBIA_V4}/getSeries", Collection="TCGA-GBM")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<html" in r.text and "Internal Server Error" in r.text


def test_an_empty_body(emu):
    emu.inject_fault("getPatient", kind="empty_body", api="legacy")
    r = fetch(emu, f"{LEGACY}/getPatient", Collection="TCGA-GBM")
    assert (r.status_code, r.content) == (200, b"")
    assert fetch(emu, f"{LEGACY}/getPatient", Collection="TCGA-GBM").json()


def test_listing_and_clearing(emu):
    emu.inject_fault("getSeries", kind="server_error", count=5)
    emu.inject_fault("getImage", kind="truncate", after_bytes=10)
    listed = emu.faults()
    assert [(f["endpoint"], f["kind"], f["count"]) for f in listed] == [
        ("getSeries", "server_error", 5),
        ("getImage", "truncate", 1),
    ]
    assert listed[0]["status"] == 503
    emu.clear_faults()
    assert emu.faults() == []
    assert fetch(emu, f"{LEGACY}/getSeries", Collection="TCGA-GBM").status_code == 200


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "explode"},
        {"kind": "server_error", "status": 404},
        {"kind": "rate_limit", "count": 0},
        {"kind": "latency", "api": "grpc"},
        {"kind": "truncate", "colour": "red"},
        {"kind": "rate_limit", "status": 500},
        {"kind": "reset", "content_length": True},
        {"kind": "truncate", "content_length": "yes"},
    ],
)
def test_invalid_faults_are_refused(options):
    with pytest.raises(ValueError):
        Fault.from_dict(options)
