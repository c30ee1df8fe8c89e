"""Writing a query's result to an open file, streamed, and counting its rows on the way.

JSON and JSON Lines are written from the hook's parsed rows, one row at a time. CSV, XML and HTML are the
bytes the API sent in that format, passed through unchanged while a streaming parser counts the rows, so the
summary's ``rows`` is true for every format and memory does not grow with the result.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaCorruptPayloadError
from airflow_provider_tcia.storage import SUFFIX_FORMATS, suffix_format

#: What ``output_format`` may be.
OUTPUT_FORMATS = ("json", "jsonl", "csv", "xml", "html", "parquet")
#: Formats written from parsed rows; the others are the API's own text.
ROW_FORMATS = ("json", "jsonl", "parquet")


def resolve_output_format(path_name: str, output_format: object) -> str:
    """The format to write ``path_name`` in: ``output_format`` if given (it must agree with a telling suffix),
    else the one the suffix names. A path whose suffix names no format (or that has none) needs
    ``output_format``: nothing is written in a format its name does not say.

    :param path_name: the last component of ``output_path`` (``series.csv``).
    :param output_format: the operator's ``output_format`` as rendered, or ``None``.
    """
    suffix, implied = suffix_format(path_name)
    if output_format is None:
        if implied is None:
            said = f"its suffix {suffix!r} names no format" if suffix else "it has no suffix"
            raise TciaBadRequestError(
                f"output_path {path_name!r}: {said}; end it in one of "
                f"{', '.join(s for s in SUFFIX_FORMATS)} or give output_format (one of {', '.join(OUTPUT_FORMATS)})"
            )
        return implied
    if not isinstance(output_format, str) or output_format.strip().lower() not in OUTPUT_FORMATS:
        raise TciaBadRequestError(f"output_format={output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    fmt = output_format.strip().lower()
    if implied is not None and implied != fmt:
        raise TciaBadRequestError(
            f"output_format={fmt!r} does not match output_path's suffix {suffix!r} (which means {implied}); "
            f"change one of them, or leave output_format out to write {implied}"
        )
    return fmt


#: Bytes gathered before one write to the destination: object storage file handles cost per call, and a row is
#: a few hundred bytes.
WRITE_BUFFER = 1 << 20


class _CountingWriter:
    """Writes to ``fh`` in pieces of about :data:`WRITE_BUFFER` bytes and counts them."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._buffer = bytearray()
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes += len(data)
        if len(self._buffer) >= WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._fh.write(bytes(self._buffer))
            self._buffer.clear()


def write_rows(fh: IO[bytes], rows: Iterable[dict[str, Any]], fmt: str) -> tuple[int, int]:
    """Write ``rows`` as a JSON array (``json``) or one object per line (``jsonl``), row by row.

    :return: (rows, bytes) written.
    """
    out = _CountingWriter(fh)
    count = 0
    for row in rows:
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        if fmt == "jsonl":
            out.write(text.encode() + b"\n")
        else:
            out.write((b"[\n" if count == 0 else b",\n") + text.encode())
        count += 1
    if fmt == "json":
        out.write(b"\n]\n" if count else b"[]\n")
    out.flush()
    return count, out.bytes


def write_text(fh: IO[bytes], chunks: Iterable[bytes], fmt: str, *, what: str) -> tuple[int, int]:
    """Copy the API's ``fmt`` body (csv, xml or html) to ``fh`` unchanged, counting its rows as it passes.

    :param what: the request, for the message if the body is not well-formed ``fmt``.
    :return: (rows, bytes) written.
    """
    out = _CountingWriter(fh)
    passed = _tee(chunks, out)
    try:
        if fmt == "csv":
            rows = _count_csv(passed)
        elif fmt == "xml":
            rows = _count_xml(passed)
        elif fmt == "html":
            rows = _count_html(passed)
        else:
            raise TciaBadRequestError(f"{fmt!r} is not a text format; use write_rows for json or jsonl")
    except (csv.Error, ParseError) as err:
        raise TciaCorruptPayloadError(f"{what} answered with {fmt} that is not well-formed: {err}") from None
    out.flush()
    return rows, out.bytes


def _tee(chunks: Iterable[bytes], out: _CountingWriter) -> Iterator[bytes]:
    for chunk in chunks:
        out.write(chunk)
        yield chunk


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of byte chunks (so the C csv parser can pull lines from it)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _count_csv(chunks: Iterator[bytes]) -> int:
    """Records after the header row; quoted fields may hold newlines, blank lines are not rows."""
    text = io.TextIOWrapper(io.BufferedReader(_ChunkReader(chunks)), encoding="utf-8", errors="replace", newline="")
    records = sum(1 for record in csv.reader(text) if record)
    return max(records - 1, 0)


def _count_xml(chunks: Iterator[bytes]) -> int:
    """Children of the root element (``<Results><Row>…</Row>…</Results>``); each is dropped once counted."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
    depth = rows = 0
    root: Element | None = None
    seen_bytes = False
    for chunk in chunks:
        seen_bytes = seen_bytes or bool(chunk.strip())
        parser.feed(chunk)
        for item in parser.read_events():
            event, element = item[0], item[-1]
            if not isinstance(element, Element):  # (start and end events only were asked for: all elements)
                continue
            if event == "start":
                root = element if root is None else root
                depth += 1
            else:
                depth -= 1
                if depth == 1 and root is not None:
                    rows += 1
                    root.clear()
    if seen_bytes:  # an empty body (NBIA's "no rows") is no document at all
        parser.close()
    return rows


class _HtmlRowCounter(HTMLParser):
    """Table rows with data cells (``<TR><TD>``); the header row has only ``<TH>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.rows = 0
        self._row_counted = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._row_counted = False
        elif tag == "td" and not self._row_counted:
            self.rows += 1
            self._row_counted = True


def _count_html(chunks: Iterator[bytes]) -> int:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    counter = _HtmlRowCounter()
    for chunk in chunks:
        counter.feed(decoder.decode(chunk))
    counter.feed(decoder.decode(b"", final=True))
    counter.close()
    return counter.rows
