"""Spies that count the HTTP sessions (and hooks) a task opens and closes, to prove none is left open."""

from __future__ import annotations

from typing import Any

import httpx
import requests


class Opened:
    """Every instance of ``cls`` made after the spy was set, and which of them were closed: through their
    ``close`` method, or, with ``closed_attr``, as the object itself says (``httpx.AsyncClient.is_closed``:
    ``async with`` closes the client without calling ``aclose``)."""

    def __init__(self, monkeypatch: Any, cls: type, *, closed_attr: str | None = None) -> None:
        self.opened: list[Any] = []
        self._closed: list[Any] = []
        self._closed_attr = closed_attr
        real_init = cls.__init__

        def init(obj: Any, *args: Any, **kwargs: Any) -> None:
            real_init(obj, *args, **kwargs)
            self.opened.append(obj)

        monkeypatch.setattr(cls, "__init__", init)
        if closed_attr is None:
            real_close = cls.close

            def close(obj: Any) -> None:
                self._closed.append(obj)
                real_close(obj)

            monkeypatch.setattr(cls, "close", close)

    def _is_closed(self, obj: Any) -> bool:
        if self._closed_attr is not None:
            return bool(getattr(obj, self._closed_attr))
        return any(obj is seen for seen in self._closed)

    @property
    def still_open(self) -> list[Any]:
        return [obj for obj in self.opened if not self._is_closed(obj)]


def requests_sessions(monkeypatch: Any) -> Opened:
    """The hook's sync transport (operators, sensor pokes)."""
    return Opened(monkeypatch, requests.Session)


def httpx_clients(monkeypatch: Any) -> Opened:
    """The hook's async transport (triggers)."""
    return Opened(monkeypatch, httpx.AsyncClient, closed_attr="is_closed")


def hooks(monkeypatch: Any) -> Opened:
    from airflow_provider_tcia.hooks.tcia import TciaHook

    return Opened(monkeypatch, TciaHook)
