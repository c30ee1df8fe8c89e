"""One poll per distinct question per poll interval, shared by every trigger waiting in one triggerer.

A thousand deferred sensors (or asset watchers) that ask TCIA the same question — same connection, endpoint,
parameters and interval — need one request per interval, not a thousand. Each trigger *subscribes* to the
question; the first subscriber starts one poller task in the triggerer's event loop, which asks, publishes the
answer to every subscriber, sleeps the interval and asks again; the last one to leave stops it (and closes
its hook). A subscriber that joins while the latest answer is younger than one interval gets that answer at
once, so a sensor that defers still polls immediately — and sees data at most one interval old, as it would
with a poll of its own.

Why not Airflow 3.3's shared trigger streams (``BaseEventTrigger.shared_stream_key``): they exist only for
event triggers on 3.3+, while deferrable sensors use plain triggers, on every supported Airflow; and a
watcher's question changes as its saved progress advances (the day it asks "added after"), which a stream key
fixed when the trigger starts cannot follow. Sharing in the event loop covers both trigger types, on every
version, with the same judgement of an answer (:mod:`airflow_provider_tcia.polling`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_tcia.polling import Poll, apoll_once, judge

Key = tuple[str, str, str, float]


@dataclass
class _Answer:
    seq: int
    at: float
    """``loop.time()`` when the answer arrived."""
    poll: Poll
    """The answer judged with ``min_rows=1``: subscribers re-judge rows with their own ``min_rows``."""


@dataclass
class _Poller:
    conn_id: str
    endpoint: str
    params: dict[str, Any]
    interval: float
    make_hook: Callable[[str], Any]
    subscribers: int = 0
    answer: _Answer | None = None
    requests: int = 0
    error: BaseException | None = None
    """What stopped the poller (a bug, never a query error: those are answers), raised to every subscriber."""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task | None = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        seq = 0

        async def publish(poll: Poll) -> None:
            nonlocal seq
            seq += 1
            async with self.changed:
                self.answer = _Answer(seq, loop.time(), poll)
                self.changed.notify_all()

        hook = None
        try:
            hook = self.make_hook(self.conn_id)
            while True:
                asked_at = loop.time()
                await publish(await self._ask(hook))
                # On a fixed cadence (one request per interval however long the answer took), and every path
                # sleeps: an error is asked again after it.
                await asyncio.sleep(max(asked_at + self.interval - loop.time(), self.interval / 10))
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # a poller that dies must not leave its subscribers waiting forever:
            async with self.changed:  # each of them raises what stopped it
                self.error = err
                self.changed.notify_all()
        finally:
            close = getattr(hook, "close", None)
            if close is not None:
                close()

    async def _ask(self, hook: Any) -> Poll:
        self.requests += 1
        return await apoll_once(hook, self.endpoint, self.params, min_rows=1)  # never raises for query errors


# One registry per event loop: a triggerer has one; tests start and stop many.
_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Key, _Poller]] = weakref.WeakKeyDictionary()


def _key(conn_id: str, endpoint: str, params: dict[str, Any], interval: float) -> Key:
    return conn_id, endpoint, json.dumps(params, sort_keys=True, default=str), float(interval)


def pollers() -> dict[Key, _Poller]:
    """The running loop's pollers by question (for tests and benchmarks: ``requests`` counts each one's)."""
    return _POLLERS.setdefault(asyncio.get_running_loop(), {})


def _raise_if_stopped(poller: _Poller) -> None:
    if poller.error is not None:
        raise poller.error


class Subscription:
    """A trigger's place among those asking one question; :meth:`next` waits for the next answer.

    Use as ``async with Subscription(...) as question: poll = await question.next(min_rows)``; a watcher
    whose question changes calls :meth:`ask` with the new parameters (it moves to that question's poller).
    """

    def __init__(
        self,
        conn_id: str,
        endpoint: str,
        params: dict[str, Any],
        *,
        interval: float,
        make_hook: Callable[[str], Any],
    ) -> None:
        self.conn_id, self.endpoint, self.interval, self.make_hook = conn_id, endpoint, float(interval), make_hook
        self._params = dict(params)
        self._poller: _Poller | None = None
        self._seen = 0

    async def __aenter__(self) -> Subscription:
        self._join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        stopped = self._leave()
        if stopped is not None:  # the last one out waits for its poller to stop (and close its hook)
            with contextlib.suppress(asyncio.CancelledError):
                await stopped

    def ask(self, params: dict[str, Any]) -> None:
        """From now on, ask ``params`` (same endpoint and interval)."""
        if params != self._params:
            self._leave()
            self._params = dict(params)
            self._join()

    async def next(self, min_rows: int = 1) -> Poll:
        """The next answer not yet seen by this subscriber — at once if the latest is younger than one
        interval — judged with ``min_rows``."""
        poller = self._poller
        assert poller is not None, "use the subscription as an async context manager"
        loop = asyncio.get_running_loop()
        async with poller.changed:
            while not self._fresh(poller, loop.time()):
                _raise_if_stopped(poller)
                await poller.changed.wait()
            answer = poller.answer
            assert answer is not None
            self._seen = answer.seq
        poll = answer.poll
        return judge(poll.rows, min_rows) if poll.outcome in ("found", "waiting") else poll

    async def wait(self) -> None:
        """Wait (without taking it) until an answer newer than the last one taken is there: the poller's
        next poll, one interval after the previous one — a subscriber's sleep between two looks."""
        poller = self._poller
        assert poller is not None, "use the subscription as an async context manager"
        async with poller.changed:
            while poller.answer is None or poller.answer.seq <= self._seen:
                _raise_if_stopped(poller)
                await poller.changed.wait()

    def _fresh(self, poller: _Poller, now: float) -> bool:
        answer = poller.answer
        if answer is None or answer.seq <= self._seen:
            return False
        # A first look takes the latest answer only if it is younger than one interval.
        return self._seen > 0 or now - answer.at < self.interval

    def _join(self) -> None:
        registry = pollers()
        key = _key(self.conn_id, self.endpoint, self._params, self.interval)
        poller = registry.get(key)
        if poller is None:
            poller = registry[key] = _Poller(self.conn_id, self.endpoint, self._params, self.interval, self.make_hook)
            poller.task = asyncio.get_running_loop().create_task(poller.run(), name=f"tcia-poll {self.endpoint}")
        poller.subscribers += 1
        self._poller, self._seen = poller, 0

    def _leave(self) -> asyncio.Task | None:
        """Leave the poller; the last to leave stops it: its task (cancelled) is returned."""
        poller, self._poller = self._poller, None
        if poller is None:
            return None
        poller.subscribers -= 1
        if poller.subscribers > 0:
            return None
        registry = pollers()
        key = _key(poller.conn_id, poller.endpoint, poller.params, poller.interval)
        if registry.get(key) is poller:
            del registry[key]
        if poller.task is not None:
            poller.task.cancel()
        return poller.task
