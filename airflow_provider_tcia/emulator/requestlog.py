"""The log of requests the emulator received, with secrets redacted."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from airflow_provider_tcia.api.redact import REDACTED, SECRET_QUERY_KEYS

SECRET_HEADERS = frozenset({"api_key", "authorization", "x-mashape-authorization", "cookie"})


class RequestLog:
    """The last ``maxlen`` requests (admin requests excluded), oldest first. Thread-safe."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(
        self, method: str, path: str, query: Iterable[tuple[str, str]], headers: Iterable[tuple[str, str]]
    ) -> dict[str, Any]:
        """Add a request; the returned entry is completed (``status``, ``fault``, …) as it is answered."""
        entry: dict[str, Any] = {
            "id": next(self._ids),
            "time": time.time(),
            "method": method,
            "path": path,
            "query": self.redacted(query),
            "headers": {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers},
            "status": None,
        }
        with self._lock:
            self._entries.append(entry)
        return entry

    @staticmethod
    def redacted(fields: Iterable[tuple[str, str]]) -> list[list[str]]:
        """Form or query fields as logged: a secret's value replaced."""
        return [[k, REDACTED if k.lower() in SECRET_QUERY_KEYS else v] for k, v in fields]

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Copies of the entries with an id above ``since``."""
        with self._lock:
            return [dict(e) for e in self._entries if e["id"] > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
