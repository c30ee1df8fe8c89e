"""Parsing a JSON array of objects as it streams in, one element at a time.

``getSeries`` over a large collection answers tens of megabytes of JSON; ``json.loads`` of the whole body
would hold all of it (and every parsed row) at once. :func:`iter_json_array` holds one element and one
chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from airflow_provider_tcia.exceptions import TciaCorruptPayloadError, TciaIncompleteResponseError, excerpt

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"
_NUMBER_END = ",]" + _WS


def iter_json_array(chunks: Iterable[bytes], *, what: str = "the response") -> Iterator[object]:
    """Yield each element of the JSON array spread over ``chunks``.

    An empty body (NBIA's "no results") yields nothing. A body that is not a JSON array (an HTML error page)
    raises :class:`TciaCorruptPayloadError`, one that stops before its end :class:`TciaIncompleteResponseError`,
    both naming ``what``.
    """
    buf = ""
    pos = 0
    state = "start"  # start -> open -> (value -> sep)* -> end
    head = b""
    decoder = _incremental_utf8()
    it = iter(chunks)
    exhausted = False

    def bad(reason: str) -> TciaCorruptPayloadError:
        return TciaCorruptPayloadError(f"{what} is not a JSON array ({reason}); it began: {excerpt(head)}")

    def cut(reason: str) -> TciaIncompleteResponseError:
        return TciaIncompleteResponseError(f"{what} was cut short ({reason}); it began: {excerpt(head)}")

    while True:
        # Skip white space, pulling more text as needed.
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf) or exhausted:
                break
            chunk = next(it, None)
            if chunk is None:
                exhausted = True
                buf = buf[pos:] + decoder.decode(b"", final=True)
                pos = 0
                continue
            if len(head) < 300:
                head += chunk[: 300 - len(head)]
            buf = buf[pos:] + decoder.decode(chunk)
            pos = 0
        if pos >= len(buf):
            if state == "start":
                return  # empty body: no rows
            if state == "end":
                return
            raise cut("it ends before the closing ']'")
        char = buf[pos]
        if state == "start":
            if char != "[":
                raise bad(f"it starts with {char!r}")
            pos += 1
            state = "open"
        elif state in ("open", "sep") and char == "]":
            pos += 1
            state = "end"
        elif state == "sep":
            if char != ",":
                raise bad(f"expected ',' or ']' but found {char!r}")
            pos += 1
            state = "value"
        elif state in ("open", "value"):
            while True:
                try:
                    value, end = _DECODER.raw_decode(buf, pos)
                    # A number at the very end of the buffer may continue in the next chunk.
                    if exhausted or not isinstance(value, int | float):
                        break
                    if end < len(buf) and buf[end] in _NUMBER_END:
                        break
                except json.JSONDecodeError:
                    if exhausted:
                        raise cut("its last element is incomplete") from None
                chunk = next(it, None)
                if chunk is None:
                    exhausted = True
                    buf += decoder.decode(b"", final=True)
                else:
                    if len(head) < 300:
                        head += chunk[: 300 - len(head)]
                    buf = buf[pos:] + decoder.decode(chunk)
                    pos = 0
            yield value
            pos = end
            state = "sep"
        else:  # end
            raise bad(f"unexpected {char!r} after the closing ']'")


def _incremental_utf8():
    import codecs

    return codecs.getincrementaldecoder("utf-8")(errors="strict")
