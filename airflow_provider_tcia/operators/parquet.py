"""A query's rows written as Parquet, streamed: row groups of :data:`ROW_GROUP_ROWS` rows, so memory stays flat
in the number of rows.

The schema comes from the endpoint's attributes (the seed's row fields, in order): counts and sizes as 64-bit
integers, everything else as text. A field a row has beyond them (an NBIA extra) becomes a text column when
the first row group has it; one that first appears later cannot join a file whose schema is written, and is
left out with a warning. Needs pyarrow (``pip install 'airflow-provider-tcia[parquet]'``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_tcia.api.generations import INTEGER_FIELDS
from airflow_provider_tcia.exceptions import TciaBadRequestError

if TYPE_CHECKING:
    from airflow_provider_tcia.compat import Logger

#: Rows gathered into one row group.
ROW_GROUP_ROWS = 10_000

_log = logging.getLogger(__name__)


def require_pyarrow() -> None:
    """Fail before anything is sent when pyarrow is not installed."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise TciaBadRequestError(
            "writing Parquet needs pyarrow: pip install 'airflow-provider-tcia[parquet]'"
        ) from None


class _CountingSink(io.RawIOBase):
    """The destination file as pyarrow writes it, counting the bytes."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        self._fh.write(bytes(data))
        self.bytes += size
        return size

    def tell(self) -> int:
        return self.bytes


def write_parquet(
    fh: IO[bytes],
    rows: Iterable[dict[str, Any]],
    attributes: Sequence[str],
    *,
    log: Logger | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    integers: Sequence[str] = INTEGER_FIELDS,
) -> tuple[int, int]:
    """Write ``rows`` to ``fh`` as Parquet, one row group per ``row_group_rows`` rows.

    :param attributes: the endpoint's row fields, in order (its columns).
    :param integers: the columns written as 64-bit integers (counts and sizes; the rest are text).
    :return: (rows, bytes) written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = log or _log
    iterator = iter(rows)
    first = list(islice(iterator, row_group_rows))
    columns = list(attributes) + sorted({k for row in first for k in row} - set(attributes))
    schema = pa.schema([(c, pa.int64() if c in integers else pa.string()) for c in columns])
    known = set(columns)
    dropped: set[str] = set()
    sink = _CountingSink(fh)
    count = 0
    with pq.ParquetWriter(sink, schema) as writer:
        batch = first
        while batch:
            for row in batch:
                dropped.update(k for k in row if k not in known)
            writer.write_table(pa.Table.from_pylist([_typed(row, schema) for row in batch], schema=schema))
            count += len(batch)
            batch = list(islice(iterator, row_group_rows))
    if dropped:
        log.warning("left out of the Parquet file (first seen after its schema was written): %s", sorted(dropped))
    return count, sink.bytes


def _typed(row: dict[str, Any], schema: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in schema:
        value = row.get(field.name)
        if value is None or value == "":
            out[field.name] = None
        elif field.type == "int64":
            try:
                out[field.name] = int(value)
            except (TypeError, ValueError):
                raise TciaBadRequestError(f"{field.name}={value!r} is not a whole number") from None
        else:
            out[field.name] = value if isinstance(value, str) else str(value)
    return out
