"""TCIA download manifests (``downloads/tcia_manifest.py``), read from real files on ``file://`` and on S3
(moto's server): every variant real manifests have, every refusal with the line it is on, and the writer's
layout (which tcia_utils' ``manifestToList`` reads back to the same series)."""

from __future__ import annotations

import io
import tracemalloc

import pytest

from airflow_provider_tcia.downloads.tcia_manifest import (
    TciaManifestHeader,
    iter_manifest,
    iter_tcia_lines,
    iter_text_lines,
    manifest_file,
    manifest_format,
    write_manifest,
)
from airflow_provider_tcia.exceptions import TciaBadRequestError
from airflow_provider_tcia.storage import as_path

UIDS = [
    "1.3.6.1.4.1.14519.5.2.1.7695.1700.114861588187429958687900856462",
    "1.3.6.1.4.1.14519.5.2.1.7695.1700.277546358395853417216281153386",
    "1.2.840.113619.2.55.3.604688119.969.1268071029.320",
]
NBIA_HEADER = (
    "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet\n"
    "includeAnnotation=true\nnoOfrRetry=4\ndatabasketId=manifest-1700000000000.tcia\nmanifestVersion=3.0\n"
    "ListOfSeriesToDownload=\n"
)
PUBLIC_HEADER = NBIA_HEADER.replace("nbia.cancerimagingarchive", "public.cancerimagingarchive")
UID_LINES = "".join(u + "\n" for u in UIDS)

#: (name, file name, bytes): every variant a real manifest has, each listing UIDS.
VARIANTS = [
    ("nbia_host", "m.tcia", (NBIA_HEADER + UID_LINES).encode()),
    ("public_host", "m.tcia", (PUBLIC_HEADER + UID_LINES).encode()),
    ("series_id_line", "m.tcia", (NBIA_HEADER + "Series ID\n" + UID_LINES).encode()),
    (
        "data_type_key",
        "m.tcia",
        (NBIA_HEADER.replace("manifestVersion", "dataType=DICOM\nmanifestVersion") + UID_LINES).encode(),
    ),
    (
        "temp_loc_key",
        "m.tcia",
        (NBIA_HEADER.replace("databasketId", "tempLoc=/tmp/\ndatabasketId") + UID_LINES).encode(),
    ),
    ("crlf", "m.tcia", (NBIA_HEADER + UID_LINES).replace("\n", "\r\n").encode()),
    ("blank_lines", "m.tcia", ("\n" + NBIA_HEADER + "\n\n" + UID_LINES.replace("\n", "\n\n") + "\n").encode()),
    ("bom", "m.tcia", b"\xef\xbb\xbf" + (NBIA_HEADER + UID_LINES).encode()),
    ("no_final_newline", "m.tcia", (NBIA_HEADER + UID_LINES).rstrip("\n").encode()),
    ("trailing_spaces", "m.tcia", (NBIA_HEADER + "".join(f"  {u} \t\n" for u in UIDS)).encode()),
    ("bare_uid_list", "m.tcia", UID_LINES.encode()),
    ("other_suffix_sniffed", "manifest-1700.txt", (NBIA_HEADER + UID_LINES).encode()),
    (
        "csv_series_instance_uid",
        "m.csv",
        ("Collection,SeriesInstanceUID\n" + "".join(f"X,{u}\n" for u in UIDS)).encode(),
    ),
    ("csv_series_uid", "m.csv", ('"Series UID","Subject ID"\r\n' + "".join(f'"{u}","P-1"\r\n' for u in UIDS)).encode()),
    ("csv_bom_blank_rows", "m.csv", b"\xef\xbb\xbf" + ("SeriesInstanceUID\n\n" + UID_LINES + "\n").encode()),
    ("tsv", "m.tsv", ("Series UID\tModality\n" + "".join(f"{u}\tCT\n" for u in UIDS)).encode()),
    ("tsv_sniffed", "m.txt", ("Series UID\tModality\n" + "".join(f"{u}\tCT\n" for u in UIDS)).encode()),
]

#: (name, file name, bytes, what the message says): everything that is not a manifest.
REFUSED = [
    ("no_uid_lines", "m.tcia", NBIA_HEADER.encode(), "lists no series: no SeriesInstanceUID line after ListOfSeriesToDownload="),
    ("header_only_no_list_key", "m.tcia", NBIA_HEADER.replace("ListOfSeriesToDownload=\n", "").encode(), "(and no ListOfSeriesToDownload= line)"),
    ("empty_file", "m.tcia", b"", "lists no series"),
    ("not_a_uid", "m.tcia", (NBIA_HEADER + UIDS[0] + "\nLIDC-IDRI-0001\n").encode(), "line 8='LIDC-IDRI-0001' is not a DICOM UID"),
    ("uid_too_long", "m.tcia", (NBIA_HEADER + "1." + "2" * 70 + "\n").encode(), "line 7="),
    ("unknown_key", "m.tcia", (NBIA_HEADER.replace("noOfrRetry", "password=x\nnoOfrRetry") + UID_LINES).encode(), "line 3: 'password=x' is a key this reader does not know"),
    ("uid_before_list_key", "m.tcia", (NBIA_HEADER.replace("ListOfSeriesToDownload=\n", UIDS[0] + "\nListOfSeriesToDownload=\n")).encode(), "comes before ListOfSeriesToDownload="),
    ("value_on_list_key", "m.tcia", NBIA_HEADER.replace("ListOfSeriesToDownload=", "ListOfSeriesToDownload=" + UIDS[0]).encode(), "must end its line"),
    ("zip", "m.tcia", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(200), "is not a text file"),
    ("latin1_binary", "m.tcia", b"\xff\xd8\xff\xe0 JFIF " + bytes(range(128, 256)), "is not a text file"),
    ("utf16", "m.tcia", (NBIA_HEADER + UID_LINES).encode("utf-16"), "is UTF-16 text"),
    ("csv_without_column", "m.csv", (b"Collection,PatientID\nX,P-1\n"), "has no SeriesInstanceUID or Series UID column"),
    ("csv_headerless", "m.csv", UID_LINES.encode(), "has no SeriesInstanceUID or Series UID column"),
    ("csv_bad_uid", "m.csv", ("SeriesInstanceUID\n" + UIDS[0] + "\nnot-a-uid\n").encode(), "line 3 SeriesInstanceUID='not-a-uid'"),
    ("csv_empty_cell", "m.csv", (b"PatientID,SeriesInstanceUID\nP-1,\n"), "line 2 SeriesInstanceUID=''"),
    ("csv_header_only", "m.csv", b"SeriesInstanceUID\n", "no row under its header"),
    ("tsv_without_column", "m.tsv", b"Modality\tCollection\nCT\tX\n", "has no SeriesInstanceUID or Series UID column"),
]  # fmt: skip


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    """A folder URL on file:// or on S3 (moto)."""
    if request.param == "file":
        return f"file://{tmp_path}"
    return request.getfixturevalue("s3_bucket") + "/manifests"


def put(store: str, name: str, data: bytes) -> str:
    path = as_path(f"{store}/{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(data)
    return str(path)


def read(url: str) -> list:
    path, fmt = manifest_file(url)
    return list(iter_manifest(path, fmt))


@pytest.mark.parametrize(("name", "file_name", "data"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_variant_real_manifests_have_is_read(store, name, file_name, data):
    refs = read(put(store, file_name, data))
    assert [r.series_instance_uid for r in refs] == UIDS


def test_a_csv_manifest_carries_its_patients_and_studies(tmp_path):
    data = "Subject ID,Study UID,Series UID\n" + "".join(f"P-{i},1.2.{i},{u}\n" for i, u in enumerate(UIDS))
    refs = read(put(f"file://{tmp_path}", "m.csv", data.encode()))
    assert [(r.patient_id, r.study_instance_uid) for r in refs] == [
        ("P-0", "1.2.0"),
        ("P-1", "1.2.1"),
        ("P-2", "1.2.2"),
    ]


@pytest.mark.parametrize(("name", "file_name", "data", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_is_not_a_manifest_is_refused_saying_where(store, name, file_name, data, message):
    url = put(store, file_name, data)
    with pytest.raises(TciaBadRequestError) as err:
        read(url)
    assert message in str(err.value)
    assert url in str(err.value)  # the message names the file


def test_a_missing_manifest_and_a_wrong_argument_are_refused(tmp_path):
    with pytest.raises(TciaBadRequestError, match="does not exist"):
        read(f"file://{tmp_path}/none.tcia")
    for bad in (None, "", ["1.2.3"], 3):
        with pytest.raises(TciaBadRequestError, match=r"must be the URL of a \.tcia, \.csv or \.tsv manifest"):
            manifest_file(bad)
    assert manifest_file({"path": f"file://{tmp_path}/m.tcia", "format": "tcia"})[1] == "tcia"  # an XCom


def test_reading_streams_memory_stays_flat_in_the_number_of_uids(tmp_path):
    """200,000 UIDs (13 MB): reading them one by one never holds more than a few lines."""
    path = tmp_path / "big.tcia"
    with path.open("w") as fh:
        fh.write(NBIA_HEADER)
        for i in range(200_000):
            fh.write(f"1.3.6.1.4.1.14519.5.2.1.7695.1700.{i:030d}\n")
    url = f"file://{path}"
    manifest, fmt = manifest_file(url)
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_manifest(manifest, fmt))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 1 << 20, f"reading held {peak} bytes at its peak"


def test_the_header_keys_are_collected_before_the_first_uid():
    keys: dict[str, str] = {}
    lines = iter_tcia_lines(iter_text_lines([(PUBLIC_HEADER + UID_LINES).encode()]), keys=keys)
    assert next(lines) == UIDS[0]
    assert keys["downloadServerUrl"].startswith("https://public.") and keys["databasketId"].endswith(".tcia")
    header = TciaManifestHeader.from_keys(keys, databasket_id="unused")
    assert header.databasket_id == "manifest-1700000000000.tcia" and header.include_annotation


def test_text_lines_from_chunks_cut_anywhere():
    text = ("é\r\n" + NBIA_HEADER + UID_LINES).encode()
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]  # cuts inside the two-byte 'é' too
    assert [line.rstrip("\r") for line in iter_text_lines(chunks)] == ("é\n" + NBIA_HEADER + UID_LINES).splitlines()


@pytest.mark.parametrize("fmt", ["tcia", "csv", "tsv"])
def test_what_is_written_is_read_back(store, fmt):
    path = as_path(f"{store}/out.{fmt}")
    assert manifest_format(path) == fmt
    with path.open("wb") as fh:
        assert write_manifest(fh, fmt, iter(UIDS), TciaManifestHeader(databasket_id="out.tcia")) == 3
    assert [r.series_instance_uid for r in iter_manifest(*manifest_file(str(path)))] == UIDS


def test_a_tcia_manifest_is_written_in_manifest_makers_layout():
    out = io.BytesIO()
    write_manifest(out, "tcia", UIDS, TciaManifestHeader(databasket_id="manifest-1700000000000.tcia"))
    assert out.getvalue().decode() == NBIA_HEADER + UID_LINES
    out = io.BytesIO()
    write_manifest(out, "csv", UIDS, TciaManifestHeader(databasket_id="x", include_annotation=False))
    assert out.getvalue().decode() == "SeriesInstanceUID\n" + UID_LINES


def test_the_writer_refuses_what_is_not_a_uid_and_a_suffix_it_cannot_write(tmp_path):
    with pytest.raises(TciaBadRequestError, match="series 2='LIDC-IDRI-0001' is not a DICOM UID"):
        write_manifest(io.BytesIO(), "tcia", [UIDS[0], "LIDC-IDRI-0001"], TciaManifestHeader(databasket_id="x"))
    with pytest.raises(TciaBadRequestError, match="cannot hold a line break"):
        write_manifest(io.BytesIO(), "tcia", UIDS, TciaManifestHeader(databasket_id="x\ny"))
    with pytest.raises(TciaBadRequestError, match="its suffix says which manifest to write"):
        manifest_format(as_path(f"file://{tmp_path}/out.json"))
