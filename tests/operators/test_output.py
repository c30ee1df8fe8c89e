"""Output formats without a server: format inference, JSON/JSON Lines writing, row counting of API text."""

from __future__ import annotations

import io
import json

import pytest

from airflow_provider_tcia.api.formats import iter_rendered
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaCorruptPayloadError
from airflow_provider_tcia.operators.output import resolve_output_format, write_rows, write_text

ROWS = [
    {"SeriesInstanceUID": "1.2.3", "Modality": "MR", "SeriesDescription": 'ax "T1", post\ncontrast', "ImageCount": 36},
    {"SeriesInstanceUID": "1.2.4", "Modality": "CT", "SeriesDescription": "Ünïcode <b>&</b>", "ImageCount": 2},
    {"SeriesInstanceUID": "1.2.5", "Modality": "MR"},
]
COLUMNS = ["SeriesInstanceUID", "Modality", "SeriesDescription", "ImageCount"]


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("series.json", None, "json"),
        ("series.jsonl", None, "jsonl"),
        ("series.ndjson", None, "jsonl"),
        ("series.CSV", None, "csv"),
        ("series.xml", None, "xml"),
        ("series.htm", None, "html"),
        ("series.parquet", None, "parquet"),
        ("series.txt", "csv", "csv"),
        ("series", " JSONL ", "jsonl"),
        ("series.csv", "csv", "csv"),
    ],
)
def test_output_format_from_suffix_or_argument(name, given, expected):
    assert resolve_output_format(name, given) == expected


def test_output_format_contradicting_the_suffix_is_refused():
    with pytest.raises(TciaBadRequestError, match=r"output_format='xml' does not match output_path's suffix '\.csv'"):
        resolve_output_format("series.csv", "xml")


@pytest.mark.parametrize("given", ["avro", "", 3, ["json"]])
def test_unknown_output_format_is_refused(given):
    with pytest.raises(TciaBadRequestError, match=r"is not one of json, jsonl, csv, xml, html, parquet"):
        resolve_output_format("series", given)


@pytest.mark.parametrize(
    ("name", "said"), [("series.txt", "its suffix '.txt' names no format"), ("series", "it has no suffix")]
)
def test_a_path_that_names_no_format_needs_output_format(name, said):
    """Nothing is written in a format the path does not say (it used to be JSON, whatever the name)."""
    with pytest.raises(
        TciaBadRequestError, match=rf"{said}; end it in one of \.json, .*\.parquet or give output_format"
    ):
        resolve_output_format(name, None)


def test_rows_written_as_parquet_in_row_groups_typed_from_the_endpoint():
    import pyarrow.parquet as pq

    from airflow_provider_tcia.api.endpoints import get_endpoint
    from airflow_provider_tcia.operators.parquet import write_parquet

    attributes = get_endpoint("getSeries").attributes
    rows = (
        {"SeriesInstanceUID": f"1.2.{i}", "ImageCount": i, "SeriesNumber": 3.0, "Modality": "MR"} for i in range(25)
    )
    fh = io.BytesIO()
    count, size = write_parquet(fh, rows, attributes, row_group_rows=10)
    assert (count, size) == (25, len(fh.getvalue()))
    parquet = pq.ParquetFile(io.BytesIO(fh.getvalue()))
    assert parquet.metadata.num_row_groups == 3  # streamed: 10 + 10 + 5 rows, never all at once
    assert parquet.schema_arrow.names == list(attributes)
    assert str(parquet.schema_arrow.field("ImageCount").type) == "int64"
    assert str(parquet.schema_arrow.field("SeriesInstanceUID").type) == "string"
    table = parquet.read()
    assert table.column("ImageCount").to_pylist() == list(range(25))
    assert table.column("SeriesNumber").to_pylist()[0] == "3.0" and table.column("Manufacturer").to_pylist()[0] is None


def test_an_empty_result_is_a_parquet_file_with_the_schema():
    import pyarrow.parquet as pq

    from airflow_provider_tcia.api.endpoints import get_endpoint
    from airflow_provider_tcia.operators.parquet import write_parquet

    fh = io.BytesIO()
    assert write_parquet(fh, [], get_endpoint("getPatient").attributes)[0] == 0
    table = pq.read_table(io.BytesIO(fh.getvalue()))
    assert table.num_rows == 0 and table.schema.names == list(get_endpoint("getPatient").attributes)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_rows_written_as_json_and_jsonl(fmt):
    fh = io.BytesIO()
    rows, size = write_rows(fh, iter(ROWS), fmt)
    body = fh.getvalue()
    assert (rows, size) == (3, len(body))
    parsed = json.loads(body) if fmt == "json" else [json.loads(line) for line in body.decode().splitlines()]
    assert parsed == ROWS


@pytest.mark.parametrize(("fmt", "expected"), [("json", b"[]\n"), ("jsonl", b"")])
def test_no_rows_is_still_a_valid_document(fmt, expected):
    fh = io.BytesIO()
    assert write_rows(fh, iter([]), fmt) == (0, len(expected))
    assert fh.getvalue() == expected


def _chunks(text: str, size: int) -> list[bytes]:
    data = text.encode()
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_text_copied_verbatim_and_its_rows_counted(fmt, chunk):
    """Chunks of one byte split tags, quoted newlines and multi-byte characters: the count still holds."""
    text = "".join(iter_rendered(ROWS, COLUMNS, fmt))
    fh = io.BytesIO()
    rows, size = write_text(fh, iter(_chunks(text, chunk)), fmt, what="getSeries()")
    assert fh.getvalue() == text.encode()
    assert (rows, size) == (3, len(text.encode()))


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_text_without_rows_counts_zero(fmt):
    text = "".join(iter_rendered([], COLUMNS, fmt))
    assert write_text(io.BytesIO(), iter([text.encode()]), fmt, what="getSeries()")[0] == 0


@pytest.mark.parametrize("fmt", ["csv", "xml", "html"])
def test_an_empty_body_is_zero_rows(fmt):
    """NBIA answers "no rows" with an empty body, whatever the format."""
    assert write_text(io.BytesIO(), iter([]), fmt, what="getSeries()") == (0, 0)


def test_single_column_csv_and_blank_lines():
    body = b"Collection\nTCGA-GBM\n\nLIDC-IDRI\r\n4D-Lung"
    assert write_text(io.BytesIO(), iter([body]), "csv", what="getCollectionValues()")[0] == 3


def test_malformed_xml_is_a_corrupt_payload():
    body = b"<?xml version='1.0'?><Results><Row><Modality>MR</Row></Results>"
    with pytest.raises(
        TciaCorruptPayloadError, match=r"getModalityValues\(\) answered with xml that is not well-formed"
    ):
        write_text(io.BytesIO(), iter([body]), "xml", what="getModalityValues()")


def test_json_is_not_a_text_format():
    with pytest.raises(TciaBadRequestError, match="not a text format"):
        write_text(io.BytesIO(), iter([b"[]"]), "json", what="getSeries()")
