"""Rendering rows in TCIA's four formats, streamed.

The shapes are NBIA's ``FormatOutput`` (which reproduced the seed's): JSON arrays of objects without null
members; CSV with a header row, unquoted for one column and fully quoted (``"`` doubled) for several; XML
``<Results><Row><Field type='java.lang.String'>…</Field></Row></Results>`` without null fields; an HTML table
with ``&nbsp;`` for nulls. The emulator serves these; the hook uses them for an endpoint whose server only
speaks JSON. Every renderer is a generator, so 100,000 rows never sit in memory as one string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from html import escape

XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_JAVA_TYPES = {bool: "java.lang.Boolean", int: "java.lang.Integer", float: "java.lang.Double"}

Row = Mapping[str, object]


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def iter_json(rows: Iterable[Row]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        text = json.dumps({k: v for k, v in row.items() if v is not None}, separators=(",", ":"))
        yield text if first else "," + text
        first = False
    yield "]"


def iter_csv(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[str]:
    if len(columns) == 1:
        (col,) = columns
        yield col + "\n"
        for row in rows:
            value = row.get(col)
            yield ("" if value is None else _cell(value)) + "\n"
        return

    def quote(value: object) -> str:
        return '"' + ("" if value is None else _cell(value)).replace('"', '""') + '"'

    yield ",".join(quote(c) for c in columns) + "\n"
    for row in rows:
        yield ",".join(quote(row.get(c)) for c in columns) + "\n"


def iter_xml(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[str]:
    yield XML_HEAD + "<Results>"
    for row in rows:
        parts = ["<Row>"]
        for col in columns:
            value = row.get(col)
            if value is None:
                continue
            java = _JAVA_TYPES.get(type(value), "java.lang.String")
            parts.append(f"<{col} type='{java}'>{escape(_cell(value), quote=False)}</{col}>")
        parts.append("</Row>")
        yield "".join(parts)
    yield "</Results>"


def iter_html(rows: Iterable[Row], columns: Sequence[str]) -> Iterator[str]:
    yield ("<P ALIGN='center'><TABLE BORDER=1><TR>" + "".join(f"<TH>{escape(c)}</TH>" for c in columns) + "</TR>")
    for row in rows:
        cells = ("&nbsp;" if row.get(c) is None else escape(_cell(row.get(c)), quote=False) for c in columns)
        yield "<TR>" + "".join(f"<TD>{cell}</TD>" for cell in cells) + "</TR>"
    yield "</TABLE></P>"


def iter_rendered(rows: Iterable[Row], columns: Sequence[str], fmt: str) -> Iterator[str]:
    """``rows`` rendered as ``fmt`` (json, csv, xml or html), in pieces."""
    if fmt == "json":
        return iter_json(rows)
    if fmt == "csv":
        return iter_csv(rows, columns)
    if fmt == "xml":
        return iter_xml(rows, columns)
    if fmt == "html":
        return iter_html(rows, columns)
    raise ValueError(f"unknown format {fmt!r}")


def columns_of(rows: Sequence[Row], preferred: Sequence[str]) -> list[str]:
    """The columns to render: ``preferred`` first, then any other key the rows have, in order of appearance."""
    seen = dict.fromkeys(preferred)
    for row in rows:
        for key in row:
            seen.setdefault(key)
    return list(seen)
