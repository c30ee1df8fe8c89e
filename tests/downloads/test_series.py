"""The series download engine without a server (HTTP mocked): layouts, checks, retries, atomicity, re-runs."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import zipfile

import pytest

from airflow_provider_tcia.downloads.inputs import (
    SeriesRef,
    check_uid,
    dedupe,
    refs_from_file,
    refs_from_value,
    series_file,
)
from airflow_provider_tcia.downloads.layout import DownloadPlan
from airflow_provider_tcia.downloads.progress import DownloadProgress, human_bytes, human_duration
from airflow_provider_tcia.downloads.series import SeriesDownloader
from airflow_provider_tcia.exceptions import (
    TciaBadRequestError,
    TciaCorruptDicomError,
    TciaCorruptPayloadError,
    TciaDownloadError,
    TciaServerError,
    TciaStoredDataError,
)
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.storage import as_path

ROOT = "http://tcia.test"
UID = "1.3.6.1.4.1.14519.5.2.1.9999.1"
UID2 = "1.3.6.1.4.1.14519.5.2.1.9999.2"
NBIA_IMAGE = f"{ROOT}/nbia-api/services/v4/getImage"
LEGACY_IMAGE = f"{ROOT}/services/v2/TCIA/query/getImage"


def dicom(n: int) -> bytes:
    return b"\0" * 128 + b"DICM" + f"instance {n} ".encode() * 50


def series_zip(count: int = 3, *, md5: bool = True, bad_md5: bool = False) -> bytes:
    files = {f"{i:08d}.dcm": dicom(i) for i in range(1, count + 1)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("LICENSE", "CC BY 3.0")
        for name, data in files.items():
            zf.writestr(name, data)
        if md5:
            rows = [f"{n},{hashlib.md5(d).hexdigest()}" for n, d in files.items()]
            if bad_md5:
                rows[0] = rows[0][:-32] + "0" * 32
            zf.writestr("md5hashes.csv", "Filename,MD5Hash\n" + "\n".join(rows) + "\n")
    return buf.getvalue()


def use(monkeypatch, api: str = "nbia", **extra) -> TciaHook:
    conn = {"conn_type": "tcia", "host": ROOT, "extra": {"api": api, "retry_backoff": 0.001, "max_retries": 2, **extra}}
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_DEFAULT", json.dumps(conn))
    return TciaHook()


def everything(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def downloader(hook, tmp_path, **kwargs) -> SeriesDownloader:
    layout = kwargs.pop("layout", "zip")
    nested = kwargs.pop("nested", False)
    plan = DownloadPlan(as_path(f"file://{tmp_path}/out"), layout, nested)
    return SeriesDownloader(hook, plan, progress_interval=0, log=logging.getLogger("test"), **kwargs)


# --- layouts and re-runs ---------------------------------------------------------------------------
def test_zip_layout_verified_manifest_and_rerun_skip(monkeypatch, requests_mock, tmp_path, caplog):
    hook = use(monkeypatch)
    body = series_zip()
    requests_mock.get(NBIA_IMAGE, content=body)
    [result] = downloader(hook, tmp_path).run([SeriesRef(UID, image_count=3)])
    out = tmp_path / "out"
    assert everything(out) == [f"{UID}.manifest.json", f"{UID}.zip"]
    assert (out / f"{UID}.zip").read_bytes() == body
    assert result.summary() == {
        "series_instance_uid": UID,
        "path": f"file://{out}/{UID}.zip",
        "bytes": len(body),
        "files": 3,
        "verified": True,
        "skipped": False,
    }
    manifest = json.loads((out / f"{UID}.manifest.json").read_text())
    assert manifest["files"] == 3 and manifest["bytes"] == len(body) and manifest["md5_source"] == "md5hashes.csv"
    assert manifest["source_url"] == f"{NBIA_IMAGE}?SeriesInstanceUID={UID}&IncludeMD5=Yes"
    assert [e["name"] for e in manifest["entries"]][:2] == ["LICENSE", "00000001.dcm"]
    assert manifest["entries"][1]["md5"] == hashlib.md5(dicom(1)).hexdigest()
    assert any("3 DICOM files, as ImageCount" in c for c in manifest["checks"])
    assert requests_mock.last_request.qs == {"seriesinstanceuid": [UID], "includemd5": ["yes"]}

    caplog.set_level(logging.INFO)
    # (check_revisions=False: a bare UID's revision would be asked of getSeries, see test_revised_series_*)
    [again] = downloader(use(monkeypatch), tmp_path, check_revisions=False).run([SeriesRef(UID, image_count=3)])
    assert again.skipped and again.verified and again.bytes == len(body) and again.files == 3
    assert requests_mock.call_count == 1
    assert "skipped: already present and verified" in caplog.text


def test_extract_layout_and_a_damaged_copy_is_downloaded_again(monkeypatch, requests_mock, tmp_path, caplog):
    hook = use(monkeypatch)
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    downloader(hook, tmp_path, layout="extract").run([SeriesRef(UID)])
    out = tmp_path / "out"
    assert everything(out) == sorted(
        [
            UID,
            f"{UID}/00000001.dcm",
            f"{UID}/00000002.dcm",
            f"{UID}/00000003.dcm",
            f"{UID}/LICENSE",
            f"{UID}/md5hashes.csv",
            f"{UID}.manifest.json",
        ]
    )
    assert (out / UID / "00000002.dcm").read_bytes() == dicom(2)
    (out / UID / "00000002.dcm").unlink()
    (out / UID / "stray.txt").write_text("left by someone")
    caplog.set_level(logging.INFO)
    [result] = downloader(use(monkeypatch), tmp_path, layout="extract").run([SeriesRef(UID)])
    assert not result.skipped and requests_mock.call_count == 2
    assert "00000002.dcm is missing" in caplog.text
    assert (out / UID / "00000002.dcm").read_bytes() == dicom(2)
    assert not (out / UID / "stray.txt").exists()  # the folder is replaced whole


def test_nested_layout_looks_up_patient_and_study(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch)
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    requests_mock.get(
        f"{ROOT}/nbia-api/services/v4/getSeries",
        json=[{"SeriesInstanceUID": UID, "PatientID": "TCGA-01", "StudyInstanceUID": "1.2.3", "ImageCount": 3}],
    )
    [result] = downloader(hook, tmp_path, nested=True).run(refs_from_value(UID))
    assert result.path.endswith(f"/out/TCGA-01/1.2.3/{UID}.zip")
    assert (tmp_path / "out" / "TCGA-01" / "1.2.3" / f"{UID}.manifest.json").exists()


def test_legacy_bare_uid_asks_for_object_count(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch, api="legacy")
    requests_mock.get(LEGACY_IMAGE, content=series_zip(md5=False))
    size = requests_mock.get(
        f"{ROOT}/services/v2/TCIA/query/getSeriesSize", json=[{"TotalSizeInBytes": "999", "ObjectCount": "4"}]
    )
    with pytest.raises(TciaCorruptPayloadError, match=r"holds 3 DICOM files but ObjectCount \(getSeriesSize\) says 4"):
        downloader(hook, tmp_path).run([SeriesRef(UID)])
    assert size.call_count == 1
    assert requests_mock.request_history[-1].url.startswith(LEGACY_IMAGE)
    assert everything(tmp_path / "out") == []


# --- failures, retries, atomicity ------------------------------------------------------------------
def test_truncated_then_good_is_retried(monkeypatch, requests_mock, tmp_path, caplog):
    hook = use(monkeypatch)
    body = series_zip()
    requests_mock.get(NBIA_IMAGE, [{"content": body[: len(body) // 2]}, {"content": body}])
    caplog.set_level(logging.WARNING)
    [result] = downloader(hook, tmp_path).run([SeriesRef(UID, image_count=3)])
    assert result.attempts == 2 and result.verified
    assert "the zip is truncated" in caplog.text
    assert f"downloading series {UID} again in" in caplog.text and "(1/2)" in caplog.text
    assert everything(tmp_path / "out") == [f"{UID}.manifest.json", f"{UID}.zip"]


@pytest.mark.parametrize("layout", ["zip", "extract"])
def test_always_corrupt_fails_clearly_and_leaves_nothing(monkeypatch, requests_mock, tmp_path, layout):
    hook = use(monkeypatch)
    body = series_zip()
    requests_mock.get(NBIA_IMAGE, content=body[:-30])
    with pytest.raises(TciaCorruptPayloadError) as err:
        downloader(hook, tmp_path, layout=layout).run([SeriesRef(UID, image_count=3)])
    assert str(err.value).startswith(f"series {UID}: gave up after 3 downloads (max_retries=2); the last: ")
    assert "the zip is truncated" in str(err.value) and f"getImage(SeriesInstanceUID='{UID}')" in str(err.value)
    assert requests_mock.call_count == 3
    assert everything(tmp_path / "out") == []


def test_wrong_md5_is_retried_then_fails(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch, max_retries=1)
    requests_mock.get(NBIA_IMAGE, content=series_zip(bad_md5=True))
    with pytest.raises(TciaCorruptPayloadError, match=r"'00000001.dcm' has MD5 .* but md5hashes.csv says 0{32}"):
        downloader(hook, tmp_path, layout="extract").run([SeriesRef(UID)])
    assert requests_mock.call_count == 2
    assert everything(tmp_path / "out") == []


def test_opening_errors_are_the_hooks_to_retry(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch)
    requests_mock.get(NBIA_IMAGE, status_code=503, text="busy")
    monkeypatch.setattr("airflow_provider_tcia.hooks.tcia.time.sleep", lambda s: None)
    with pytest.raises(TciaServerError, match="failed after 3 tries"):
        downloader(hook, tmp_path).run([SeriesRef(UID)])
    assert requests_mock.call_count == 3  # not 9: the engine does not retry what the hook gave up on


def test_many_series_concurrently_one_failing(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch, max_retries=0)
    uids = [f"1.2.840.{i}" for i in range(6)]
    good = series_zip()

    def body(request, context):
        return good[:100] if request.qs["seriesinstanceuid"] == ["1.2.840.3"] else good

    requests_mock.get(NBIA_IMAGE, content=body)
    with pytest.raises(TciaDownloadError) as err:
        downloader(hook, tmp_path).run([SeriesRef(u, image_count=3) for u in uids], max_concurrency=3)
    assert str(err.value).startswith(
        "1 of 6 series failed (5 are in place and verified; a re-run skips them): 1.2.840.3"
    )
    names = everything(tmp_path / "out")
    assert len(names) == 10 and not any("1.2.840.3." in n for n in names) and not any("partial" in n for n in names)


def test_stop_abandons_and_cleans_up(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch)
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    engine = downloader(hook, tmp_path)
    engine.stop()
    with pytest.raises(Exception, match="stopped"):
        engine.run([SeriesRef(UID)])
    assert everything(tmp_path / "out") == []


# --- input ----------------------------------------------------------------------------------------
def test_refs_from_values():
    rows = [
        {"SeriesInstanceUID": UID, "PatientID": "P1", "StudyInstanceUID": "1.2", "ImageCount": "36.0", "FileSize": 9},
        UID2,
    ]
    assert refs_from_value(rows) == [SeriesRef(UID, "P1", "1.2", 36, 9), SeriesRef(UID2)]
    assert refs_from_value({"series_instance_uid": UID}) == [SeriesRef(UID)]
    assert dedupe(refs_from_value([UID, UID2, UID])) == [SeriesRef(UID), SeriesRef(UID2)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.2.abc", "not a DICOM UID"),
        ("../../etc", "not a DICOM UID"),
        ("1." * 40 + "1", "at most 64"),
        ("s3://x@b/series.json", "pass it as series_from"),
        ([], "is empty"),
        ([{"Modality": "CT"}], "has no SeriesInstanceUID"),
        ([{"SeriesInstanceUID": UID, "ImageCount": "many"}], "ImageCount='many' is not a number"),
        (42, "not int"),
        (None, "is None"),
    ],
)
def test_bad_input_is_refused(value, message):
    with pytest.raises(TciaBadRequestError, match=message):
        refs_from_value(value)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_refs_from_a_getseries_file(tmp_path, fmt):
    rows = [{"SeriesInstanceUID": UID, "PatientID": "P1", "ImageCount": 2}, {"SeriesInstanceUID": UID2}]
    path = tmp_path / f"series.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        path.write_text(f"SeriesInstanceUID,PatientID,ImageCount\n{UID},P1,2\n{UID2},,\n")
    found, found_fmt = series_file(f"file://{path}")
    assert found_fmt == fmt
    assert list(refs_from_file(found, found_fmt)) == [SeriesRef(UID, "P1", None, 2), SeriesRef(UID2)]
    # the query operator's XCom summary works too, and a file without a telling suffix is sniffed
    renamed = tmp_path / "series.out"
    renamed.write_bytes(path.read_bytes())
    found, found_fmt = series_file({"path": f"file://{renamed}", "format": None, "rows": 2})
    assert [r.series_instance_uid for r in refs_from_file(found, found_fmt)] == [UID, UID2]


def test_series_file_refusals(tmp_path):
    with pytest.raises(TciaBadRequestError, match="series can be read from json, jsonl, csv"):
        series_file(f"file://{tmp_path}/series.xml")
    with pytest.raises(TciaBadRequestError, match="does not exist"):
        list(refs_from_file(*series_file(f"file://{tmp_path}/missing.json")))
    with pytest.raises(TciaBadRequestError, match="without 'path'"):
        series_file({"rows": 3})
    assert check_uid(" 1.2.3 ", "x") == "1.2.3"
    with pytest.raises(TciaBadRequestError, match=r"sop_instance_uids\[0\] must be a DICOM UID string, not int 7"):
        check_uid(7, "sop_instance_uids[0]")  # (the image operator checks SOPInstanceUIDs with it too)


def test_rows_given_to_series_from_say_which_parameter_takes_them():
    """The XCom of TciaGetSeriesOperator passed to series_from: the message names the right parameter and
    quotes only the start of the input, however many rows it has."""
    rows = [{"SeriesInstanceUID": f"1.2.840.{i}", "PatientID": f"P{i}", "Modality": "MR"} for i in range(5000)]
    with pytest.raises(TciaBadRequestError) as caught:
        series_file(rows)
    message = str(caught.value)
    assert "pass rows or SeriesInstanceUIDs as series_instance_uids=" in message
    assert "(list of 5000 items)" in message
    assert len(message) < 400 and "1.2.840.4999" not in message
    with pytest.raises(TciaBadRequestError) as caught:
        check_uid("9" * 5000, "series_instance_uids[0]")
    assert len(str(caught.value)) < 400 and "(str of 5002 characters)" in str(caught.value)


# --- progress -------------------------------------------------------------------------------------
def test_progress_lines_and_summary(caplog):
    now = [0.0]
    progress = DownloadProgress(
        logging.getLogger("p"), total_series=4, expected_bytes=4_000_000, interval=10, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO)
    progress.add(received=1_000_000, data=1_000_000, files=5)
    assert caplog.text == ""  # not yet 10 s
    now[0] = 10.0
    progress.series_finished()
    progress.add(received=1_000_000, data=1_000_000, files=5)
    assert "progress: 1/4 series done, 1.9 MiB received at 0.2 MB/s, 10 files verified, ETA 10s" in caplog.text
    progress.series_finished(skipped=True)
    assert progress.summary().startswith("4 series: 1 downloaded and verified, 1 skipped")
    assert human_bytes(1536) == "1.5 KiB" and human_duration(3725) == "1h02m"


def test_no_partial_names_survive_os_errors(monkeypatch, requests_mock, tmp_path):
    hook = use(monkeypatch)
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        downloader(hook, tmp_path).run([SeriesRef(UID)])
    monkeypatch.setattr(os, "replace", real_replace)
    assert everything(tmp_path / "out") == []


def test_manifest_source_url_has_no_secrets():
    from airflow_provider_tcia.api.redact import redact_url

    url = "https://h/services/v2/TCIA/query/getImage?SeriesInstanceUID=1.2&api_key=%2A%2A%2A&format=zip"
    assert redact_url(url, drop=True) == "https://h/services/v2/TCIA/query/getImage?SeriesInstanceUID=1.2&format=zip"


# --- single images --------------------------------------------------------------------------------
def dicom_instance(sop: str) -> bytes:
    """A DICOM file whose meta header names ``sop`` as its MediaStorageSOPInstanceUID."""
    value = sop.encode() + b"\0" * (len(sop) % 2)
    meta = b"\x02\x00\x03\x00UI" + len(value).to_bytes(2, "little") + value
    return b"\0" * 128 + b"DICM" + meta + b"pixels" * 100


def test_images_wrong_instance_fails_the_others_stay(monkeypatch, requests_mock, tmp_path, caplog):
    from airflow_provider_tcia.downloads.images import ImageDownloader

    hook = use(monkeypatch, max_retries=1)
    good, bad = "1.2.840.7", "1.2.840.8"

    def body(request, context):
        return dicom_instance(good) if request.qs["sopinstanceuid"] == [good] else dicom_instance("1.2.840.99")

    route = requests_mock.get(f"{ROOT}/nbia-api/services/v4/getSingleImage", content=body)
    md5s = {sop: hashlib.md5(dicom_instance(sop)).hexdigest() for sop in (good, bad)}
    requests_mock.get(
        f"{ROOT}/nbia-api/services/v4/getMD5HashForImage", text=lambda request, _: md5s[request.qs["sopinstanceuid"][0]]
    )
    engine = ImageDownloader(hook, as_path(f"file://{tmp_path}/out"), log=logging.getLogger("test"))
    caplog.set_level(logging.INFO)
    with pytest.raises(
        TciaDownloadError, match=r"1 of 2 images failed \(1 is in place and verified; a re-run skips it\)"
    ) as err:
        engine.run(UID, [good, bad], max_concurrency=2)
    assert f"{bad}: image {bad}: gave up after 2 downloads" in str(err.value)
    assert "sent instance '1.2.840.99' instead" in str(err.value)
    assert route.call_count == 3  # the good one once, the bad one 1 + max_retries times
    assert everything(tmp_path / "out") == [UID, f"{UID}/{good}.dcm"]
    assert "download summary: 2 images: 1 downloaded and verified, 0 skipped" in caplog.text


@pytest.mark.parametrize("layout", ["zip", "extract"])
def test_a_zip_the_verifier_cannot_follow_is_checked_whole(monkeypatch, requests_mock, tmp_path, layout, caplog):
    hook = use(monkeypatch)
    files = {f"{i:08d}.dcm": dicom(i) for i in range(1, 4)}
    listing = "Filename,MD5Hash\n" + "".join(f"{n},{hashlib.md5(d).hexdigest()}\n" for n, d in files.items())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for name, data in {**files, "md5hashes.csv": listing.encode()}.items():
            zf.writestr(name, data)
    requests_mock.get(NBIA_IMAGE, content=buf.getvalue())
    caplog.set_level(logging.INFO)
    [result] = downloader(hook, tmp_path, layout=layout).run([SeriesRef(UID, image_count=3)])
    assert result.verified and result.files == 3 and result.attempts == 1
    assert "uses compression method 12" in caplog.text
    # extract streamed its entries into a folder, so it has no zip to fall back on: it asks again for the whole
    assert requests_mock.call_count == (1 if layout == "zip" else 2)
    out = tmp_path / "out"
    if layout == "zip":
        assert (out / f"{UID}.zip").read_bytes() == buf.getvalue()
    else:
        assert {p.name: p.read_bytes() for p in (out / UID).iterdir() if p.suffix == ".dcm"} == files
    manifest = json.loads((out / f"{UID}.manifest.json").read_text())
    assert manifest["md5_source"] == "md5hashes.csv" and "zip readable: 4 entries" in manifest["checks"]
    assert not any("partial" in n for n in everything(out))


# --- structural checks of series files, what is stored, old manifests ----------------------------------
def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"
    if vr in (b"OB", b"OW"):
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def real_dicom(n: int, *, cut: int = 0) -> bytes:
    """A small valid DICOM file (explicit VR little endian, 8 x 8 x 16 bits) — less ``cut`` bytes of its pixel
    data, with its lengths rewritten to match: what a server that stored a truncated file zips, CRC and all."""
    sop = f"1.2.840.{n}".encode()
    meta = _element(0x00020010, b"UI", b"1.2.840.10008.1.2.1") + _element(0x00020003, b"UI", sop)
    pixels = bytes(8 * 8 * 2 - cut)
    body = b"".join(
        (
            _element(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.2"),
            _element(0x00080018, b"UI", sop),
            _element(0x00280002, b"US", struct.pack("<H", 1)),
            _element(0x00280010, b"US", struct.pack("<H", 8)),
            _element(0x00280011, b"US", struct.pack("<H", 8)),
            _element(0x00280100, b"US", struct.pack("<H", 16)),
            _element(0x7FE00010, b"OW", pixels),
        )
    )
    return b"\0" * 128 + b"DICM" + _element(0x00020000, b"UL", struct.pack("<I", len(meta))) + meta + body


def legacy_zip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_legacy_series_files_are_checked_by_their_structure(monkeypatch, requests_mock, tmp_path):
    """The legacy API sends no MD5: a file the server zipped cut short (its CRC-32 is that of the cut file) is
    caught by its DICOM structure, retried, then the series fails with nothing left."""
    hook = use(monkeypatch, api="legacy", max_retries=1)
    good = {f"{i}.dcm": real_dicom(i) for i in range(1, 4)}
    requests_mock.get(LEGACY_IMAGE, content=legacy_zip({**good, "2.dcm": real_dicom(2, cut=40)}))
    with pytest.raises(TciaCorruptDicomError, match=r"entry '2.dcm': its pixel data \(7FE0,0010\) has 88 bytes, but"):
        downloader(hook, tmp_path).run([SeriesRef(UID, image_count=3)])
    assert requests_mock.call_count == 2 and everything(tmp_path / "out") == []

    requests_mock.get(LEGACY_IMAGE, content=legacy_zip(good))
    [result] = downloader(hook, tmp_path).run([SeriesRef(UID, image_count=3)])
    manifest = json.loads((tmp_path / "out" / f"{UID}.manifest.json").read_text())
    assert result.verified and "DICOM structure of every file checked (3 files)" in manifest["checks"]


def test_the_structural_check_of_series_is_an_option(monkeypatch, requests_mock, tmp_path):
    requests_mock.get(LEGACY_IMAGE, content=legacy_zip({"1.dcm": real_dicom(1, cut=40)}))
    [result] = downloader(use(monkeypatch, api="legacy"), tmp_path, check_dicom=False).run(
        [SeriesRef(UID, image_count=1)]
    )
    manifest = json.loads((tmp_path / "out" / f"{UID}.manifest.json").read_text())
    assert result.verified and not any("DICOM structure" in c for c in manifest["checks"])
    # On NBIA md5hashes.csv vouches for every file: no structural check unless asked for.
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    [result] = downloader(use(monkeypatch), tmp_path / "nbia").run([SeriesRef(UID)])
    assert result.verified
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    [result] = downloader(use(monkeypatch), tmp_path / "nbia2", check_dicom=True).run([SeriesRef(UID)])
    manifest = json.loads((tmp_path / "nbia2" / "out" / f"{UID}.manifest.json").read_text())
    # (the fake files of series_zip() have no file meta: said, never called checked)
    assert "DICOM structure checked for 0 of 3 files; not checked: 3 (e.g. '00000001.dcm': its file meta has no " in (
        "; ".join(manifest["checks"])
    )


@pytest.mark.parametrize("layout", ["zip", "extract"])
def test_the_zipfile_fallback_checks_the_structure_too(monkeypatch, requests_mock, tmp_path, layout):
    hook = use(monkeypatch, api="legacy", max_retries=0)
    files = {f"{i}.dcm": real_dicom(i) for i in range(1, 3)}
    requests_mock.get(LEGACY_IMAGE, content=legacy_zip({**files, "3.dcm": real_dicom(3, cut=2)}, zipfile.ZIP_BZIP2))
    with pytest.raises(TciaCorruptDicomError, match=r"entry '3\.dcm'"):
        downloader(hook, tmp_path, layout=layout).run([SeriesRef(UID, image_count=3)])
    assert everything(tmp_path / "out") == []


@pytest.mark.parametrize("layout", ["zip", "extract"])
def test_what_is_stored_is_compared_with_what_was_verified(monkeypatch, requests_mock, tmp_path, layout):
    """Once in place (an object store's copies, object by object, included), the stored sizes must be what was
    verified; if not, the data is removed again and nothing is called verified."""
    from airflow_provider_tcia.downloads import series as engine

    requests_mock.get(NBIA_IMAGE, content=series_zip())
    real = engine.stored_listing

    def short_one(path, layout):
        listing = real(path, layout)
        name = sorted(listing)[-1]
        listing[name] = {**listing[name], "size": listing[name]["size"] - 1}
        return listing

    monkeypatch.setattr(engine, "stored_listing", short_one)
    with pytest.raises(TciaStoredDataError, match=r"once moved into place at .*, .* bytes, its manifest says"):
        downloader(use(monkeypatch), tmp_path, layout=layout).run([SeriesRef(UID)])
    assert everything(tmp_path / "out") == []


def test_a_manifest_without_a_stored_listing_is_trusted_by_its_sizes(monkeypatch, requests_mock, tmp_path):
    """Manifests written before stamps were recorded: their sizes are still compared."""
    requests_mock.get(NBIA_IMAGE, content=series_zip())
    downloader(use(monkeypatch), tmp_path).run([SeriesRef(UID)])
    path = tmp_path / "out" / f"{UID}.manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["stored"]
    path.write_text(json.dumps(manifest))
    [again] = downloader(use(monkeypatch), tmp_path, check_revisions=False).run([SeriesRef(UID)])
    assert again.skipped and requests_mock.call_count == 1
    zip_path = tmp_path / "out" / f"{UID}.zip"
    zip_path.write_bytes(zip_path.read_bytes()[:-1])
    [third] = downloader(use(monkeypatch), tmp_path, check_revisions=False).run([SeriesRef(UID)])
    assert not third.skipped and requests_mock.call_count == 2


def test_progress_says_what_was_stored_but_not_verified():
    progress = DownloadProgress(logging.getLogger("p"), total_series=3, noun="images")
    progress.series_finished()
    progress.series_finished(unverified=True)
    progress.series_finished(skipped=True, unverified=True)
    assert progress.summary().startswith(
        "3 images: 1 downloaded and verified, 0 skipped (already present and verified), 2 stored but NOT verified, "
        "0 failed"
    )
