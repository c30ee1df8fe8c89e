"""Asking NBIA's manifest endpoints through a :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`: the answer, a
``.tcia`` manifest of any length, streamed in chunks (the hook's query methods read a text answer whole, as one
value).

The same transport as every other call (the hook's retries, the status and first-bytes checks, key
redaction); only the answer is left as chunks for :mod:`airflow_provider_tcia.downloads.tcia_manifest` to read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from airflow_provider_tcia.api.endpoints import Endpoint
from airflow_provider_tcia.api.manifest_endpoints import manifest_request
from airflow_provider_tcia.hooks.calls import Call, prepare

if TYPE_CHECKING:
    from airflow_provider_tcia.hooks.tcia import TciaHook


@contextlib.contextmanager
def stream_manifest(
    hook: TciaHook, endpoint: Endpoint, form: Iterable[tuple[str, str]]
) -> Iterator[tuple[Call, Iterator[bytes]]]:
    """POST ``form`` to one of NBIA's manifest endpoints (``api/manifest_endpoints.py``) and yield the call (for
    messages) and the answer's chunks. A legacy connection is refused before anything is sent."""
    call = prepare(hook.config, manifest_request(hook.config.generation, endpoint, form))
    with hook.open_stream(call, expect="text") as chunks:
        yield call, chunks
