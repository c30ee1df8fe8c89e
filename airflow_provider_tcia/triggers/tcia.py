"""Triggers that wait for TCIA in the triggerer, on the hook's async side.

* :class:`TciaQueryTrigger` — behind the deferrable sensors: polls one query endpoint until it returns
  enough rows, then fires once.
* :class:`TciaNewStudiesEventTrigger` — for an :class:`~airflow.sdk.AssetWatcher`: watches a collection
  for new studies and fires an event, with the new study rows, each time some appear. No DAG polls.
* :class:`TciaUpdatedSeriesEventTrigger` — likewise for new and revised series (getUpdatedSeries), in every
  collection or a few.

All ask through :mod:`~airflow_provider_tcia.triggers.shared_poll`: triggers in one triggerer asking the same
question share one poll per interval, judged as :mod:`~airflow_provider_tcia.polling` judges every
answer; every path of the poller's loop sleeps before asking again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_tcia.api.dates import parse_date
from airflow_provider_tcia.api.endpoints import get_endpoint
from airflow_provider_tcia.collection_check import acheck_collection
from airflow_provider_tcia.compat import (
    BaseEventTrigger,
    BaseTrigger,
    TriggerEvent,
    asset_state_store,
    require_event_scheduling,
)
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaUnknownCollectionError
from airflow_provider_tcia.polling import Poll, jsonable, judge
from airflow_provider_tcia.triggers.announced import Progress, SeriesProgress, series_key
from airflow_provider_tcia.triggers.shared_poll import Subscription

NEW_STUDIES_ENDPOINT = "NewStudiesInPatientCollection"
UPDATED_SERIES_ENDPOINT = "getUpdatedSeries"


def _classpath(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    return float(value)


def _since(progress: Progress | SeriesProgress) -> str:
    """The first day the watcher's query covers (it asks for studies added *after* ``progress.after``)."""
    return (progress.after + dt.timedelta(days=1)).isoformat()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _make_hook(tcia_conn_id: str):
    from airflow_provider_tcia.hooks.tcia import TciaHook

    return TciaHook(tcia_conn_id)


class TciaQueryTrigger(BaseTrigger):
    """Poll a TCIA query endpoint until it returns at least ``min_rows`` rows; fire once.

    Events (``payload``):

    * ``{"status": "success", "rows": [... at most max_rows ...], "row_count": n}``
    * ``{"status": "error", "error_type": "TciaAuthError", "message": "..."}`` — the key was refused, the
      request is wrong, the endpoint is unknown or the connection is unusable: asking again cannot help.
      ``TciaUnknownCollectionError``: ``check_collection`` is not on the server.
    * ``{"status": "timeout", "message": "..."}`` — ``timeout_at`` passed (the task's own deferral timeout,
      set by the sensor, normally ends the wait first; this one also holds where no scheduler enforces it,
      as in ``dag.test()``).

    Server failures (5xx, 429, broken connections, a bad payload) that persist through the hook's own
    retries are logged and polled again; every path of the loop sleeps ``poke_interval``.

    :param endpoint: a query endpoint (``getSeries``, ``NewStudiesInPatientCollection`` …).
    :param query_params: its parameters by Python name, JSON-serialisable (dates as ISO strings).
    :param tcia_conn_id: the ``tcia`` connection.
    :param poke_interval: seconds between polls (> 0).
    :param min_rows: how many rows count as found.
    :param max_rows: how many rows the success event carries at most.
    :param timeout_at: ISO-8601 UTC datetime after which the trigger gives up (optional).
    :param check_collection: a collection to check against the server's list (getCollectionValues) at the
        first poll that finds too few rows — the sensor passes it when its own check before deferring got no
        answer. Not on the list: an error event naming the closest collections. Listed only in another case:
        a warning. No answer again: checked at the next such poll.
    :param collections: count only the rows of these collections (for an endpoint that cannot filter by
        collection itself, such as getUpdatedSeries); None: every row.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        query_params: dict[str, Any] | None = None,
        tcia_conn_id: str = "tcia_default",
        poke_interval: float = 60.0,
        min_rows: int = 1,
        max_rows: int = 100,
        timeout_at: str | None = None,
        check_collection: str | None = None,
        collections: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.query_params = jsonable(dict(query_params or {}))
        self.tcia_conn_id = tcia_conn_id
        self.poke_interval = _positive("poke_interval", poke_interval)
        self.min_rows = int(min_rows)
        self.max_rows = int(max_rows)
        self.timeout_at = timeout_at
        self.check_collection = check_collection
        self.collections = collections_filter(collections)
        self._deadline = dt.datetime.fromisoformat(timeout_at) if timeout_at else None
        if self._deadline is not None and self._deadline.tzinfo is None:
            self._deadline = self._deadline.replace(tzinfo=dt.UTC)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return _classpath(self), {
            "endpoint": self.endpoint,
            "query_params": self.query_params,
            "tcia_conn_id": self.tcia_conn_id,
            "poke_interval": self.poke_interval,
            "min_rows": self.min_rows,
            "max_rows": self.max_rows,
            "timeout_at": self.timeout_at,
            "check_collection": self.check_collection,
            # (only when set: triggers serialised before it existed stay the same)
            **({"collections": self.collections} if self.collections is not None else {}),
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        polls = 0
        failures = 0
        unchecked = self.check_collection
        question = Subscription(
            self.tcia_conn_id, self.endpoint, self.query_params, interval=self.poke_interval, make_hook=_make_hook
        )
        async with question:  # triggers asking the same question share one poll per interval
            while True:
                if self._deadline is not None and _utcnow() >= self._deadline:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"{self.endpoint} still had fewer than {self.min_rows} row(s) at "
                            f"{self.timeout_at} after {polls} poll(s)",
                        }
                    )
                    return
                try:  # waits for the shared poller's next answer: this loop's sleep between two looks
                    poll = await asyncio.wait_for(question.next(self.min_rows), timeout=self._wait_seconds())
                except TimeoutError:
                    continue  # the deadline passed while waiting: the next turn fires the timeout
                if self.collections is not None and poll.outcome in ("found", "waiting"):
                    poll = judge(in_collections(poll.rows, self.collections), self.min_rows)
                polls += 1
                if poll.outcome == "found":
                    self.log.info("%s: %d row(s) after %d poll(s)", self.endpoint, len(poll.rows), polls)
                    yield TriggerEvent(
                        {"status": "success", "rows": poll.rows[: self.max_rows], "row_count": len(poll.rows)}
                    )
                    return
                if poll.outcome == "fatal":
                    self.log.error("%s: giving up: %s", self.endpoint, poll.message)
                    yield TriggerEvent({"status": "error", "error_type": poll.error_type, "message": poll.message})
                    return
                if poll.outcome == "transient":
                    failures += 1
                    self.log.warning(
                        "%s: failed (%d in a row), polling again in %.0f s: %s",
                        self.endpoint, failures, self.poke_interval, poll.message,
                    )  # fmt: skip
                    continue
                failures = 0
                self.log.info(
                    "%s: %d of %d row(s) so far; polling again in %.0f s",
                    self.endpoint, len(poll.rows), self.min_rows, self.poke_interval,
                )  # fmt: skip
                if unchecked is not None:
                    with contextlib.closing(_make_hook(self.tcia_conn_id)) as hook:  # closed whatever the check did
                        event, unchecked = await self._check_collection(hook, unchecked)
                    if event is not None:
                        yield event
                        return

    async def _check_collection(self, hook: Any, collection: str) -> tuple[TriggerEvent | None, str | None]:
        """Check ``collection`` against the server's list: the error event to end with if it is not there,
        and the collection still to check (``None`` once the server has answered)."""
        check = await acheck_collection(hook, collection)
        if check.outcome == "unknown":
            self.log.error("%s: giving up: %s", self.endpoint, check.message)
            error = {"status": "error", "error_type": TciaUnknownCollectionError.__name__, "message": check.message}
            return TriggerEvent(error), None
        if check.outcome == "unanswered":
            self.log.warning("%s; asking again at the next poll that finds nothing", check.message)
            return None, collection
        if check.outcome == "case":
            self.log.warning("%s; polling on", check.message)
        return None, None

    def _wait_seconds(self) -> float | None:
        """How long to wait for the next answer: until the deadline, if there is one."""
        if self._deadline is None:
            return None
        left = (self._deadline - _utcnow()).total_seconds()
        # Never zero: the loop waits on every path; past the deadline the next turn fires the timeout.
        return max(left, 0.01)


class _Watcher:
    """What the asset watchers share: their common arguments, their loop — poll, announce what is new, save the
    progress an interval later — and their progress across triggerer restarts, in the asset state store the
    triggerer gives the watcher (Airflow 3.3+), else in memory (said once in the log).

    A watcher names its endpoint, what it watches (``_watching``), what a restart may announce again
    (``_announces``), its ``state_key``, the parameters of its question (``_params``) and what a poll's rows
    announce (``_announce``: the events, the progress marked)."""

    log: Any
    _announces = "studies"
    _endpoint = ""

    def _settings(self, since: str | None, tcia_conn_id: str, poll_interval: float, max_rows_per_event: int) -> None:
        """Check (when the DAG is parsed) and keep the arguments every watcher takes."""
        if isinstance(max_rows_per_event, bool) or not isinstance(max_rows_per_event, int) or max_rows_per_event < 1:
            raise ValueError(f"max_rows_per_event must be an integer >= 1, not {max_rows_per_event!r}")
        self.since = parse_date(since, param="since").isoformat() if since is not None else None
        self.tcia_conn_id = tcia_conn_id
        self.poll_interval = _positive("poll_interval", poll_interval)
        self.max_rows_per_event = max_rows_per_event
        self._memory: dict[str, Any] | None = None
        self._warned_no_store = False

    @property
    def state_key(self) -> str:
        raise NotImplementedError

    @property
    def _watching(self) -> str:
        raise NotImplementedError

    def _params(self, progress: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _announce(self, progress: Any, rows: list[dict[str, Any]]) -> list[TriggerEvent]:
        raise NotImplementedError

    _progress: type[Progress] | type[SeriesProgress]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The server selects "after DATE": what came on or after ``since`` came after the day before it. Saved
        # progress never goes back before a configured ``since``.
        configured = dt.date.fromisoformat(self.since) - dt.timedelta(days=1) if self.since else None
        start = configured or _utcnow().date() - dt.timedelta(days=1)
        async for event in self._watch(self._progress.load(await self._load(), start, floor=configured)):
            yield event

    def _chunks(self, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [rows[i : i + self.max_rows_per_event] for i in range(0, len(rows), self.max_rows_per_event)]

    async def _watch(self, progress: Progress | SeriesProgress) -> AsyncIterator[TriggerEvent]:
        await self._save(progress)
        endpoint = get_endpoint(self._endpoint).name
        # Watchers asking the same question (connection, endpoint, parameters, interval) share one poll.
        question = Subscription(
            self.tcia_conn_id, endpoint, self._params(progress), interval=self.poll_interval, make_hook=_make_hook
        )
        async with question:
            while True:
                question.ask(self._params(progress))
                poll = await question.next(1)
                answered = poll.outcome in ("found", "waiting")
                events = self._announce(progress, poll.rows) if answered else []
                for event in events:
                    yield event
                if not answered:
                    self._log_failure(poll)
                # Progress is saved one interval after an event was yielded (the wait for the shared poll's
                # next answer): by then the triggerer has handed the event to the database, so a crash before
                # the save repeats the event instead of losing it.
                await question.wait()
                if answered and (progress.advance(_utcnow().date()) or events):
                    await self._save(progress)

    def _log_failure(self, poll: Poll) -> None:
        if poll.outcome == "fatal":
            self.log.error(
                "%s: cannot poll %s (%s); fix the connection or the watcher's arguments — trying again in %.0f s",
                self._watching, self._endpoint, poll.message, self.poll_interval,
            )  # fmt: skip
        else:
            self.log.warning(
                "%s: polling %s failed, trying again in %.0f s: %s",
                self._watching, self._endpoint, self.poll_interval, poll.message,
            )  # fmt: skip

    async def _load(self) -> Any:
        store = self._store()
        if store is None:
            return self._memory
        try:
            return await store.aget(self.state_key, default=None)
        except ValueError as err:  # several watched assets share this trigger: no single accessor
            self._no_store(f"the asset state store is not usable here ({err})")
        except Exception as err:
            self.log.warning("could not read saved progress (%s: %s); starting afresh", type(err).__name__, err)
        return self._memory

    async def _save(self, progress: Progress | SeriesProgress) -> None:
        document = progress.dump()
        self._memory = document
        store = self._store()
        if store is None:
            return
        try:
            await store.aset(self.state_key, document)
        except ValueError as err:
            self._no_store(f"the asset state store is not usable here ({err})")
        except Exception as err:
            self.log.warning("could not save progress (%s: %s); keeping it in memory", type(err).__name__, err)

    def _store(self) -> Any:
        store = asset_state_store(self)
        if store is None:
            self._no_store("no asset state store was given to this watcher")
            return None
        return store

    def _no_store(self, why: str) -> None:
        if not self._warned_no_store:
            self._warned_no_store = True
            self.log.warning(
                "%s: %s; progress is kept in memory, so after a triggerer restart %s found since %s "
                "may be announced again",
                self._watching, why, self._announces, self.since or "the watcher's first start",
            )  # fmt: skip


class TciaNewStudiesEventTrigger(_Watcher, BaseEventTrigger):
    """Watch a TCIA collection for new studies, for an :class:`~airflow.sdk.AssetWatcher`.

    Polls ``NewStudiesInPatientCollection`` every ``poll_interval`` seconds and, whenever studies appear
    that it has not announced yet, fires an event whose payload becomes the asset event's ``extra``
    (``extra["payload"]``)::

        {"collection": "TCGA-BRCA", "patient_id": None, "since": "2024-05-01",
         "studies": [{"StudyInstanceUID": ..., "PatientID": ..., ...}, ...], "count": 2}

    (``since``: the first day its query covered). At most ``max_rows_per_event`` studies go in one event; more
    make several events, none dropped.

    It never ends by itself (a watcher that returned would be restarted by the triggerer at once): failures,
    even a refused key, are logged in the triggerer's log and the watcher polls again after
    ``poll_interval`` — fix the connection and it resumes. Arguments are checked when the DAG is parsed.

    **Restarts.** Where the triggerer provides the watched asset's state store (Airflow 3.3+, one asset per
    watcher), the watcher saves its progress there: the day it has reached and the studies it
    announced recently. A restarted watcher resumes from it, so no study is lost and none is announced
    twice — except those found in the last poll interval before a crash, which may be announced again
    (harmless: downloads are idempotent). Without a state store it keeps progress in memory and, after a
    restart, polls again from ``since`` and announces those studies again. See docs/sensors.md.

    :param collection: the collection to watch.
    :param since: announce studies added on or after this day (ISO date). ``None``: from the day the watcher
        first started, remembered in the state store. Keep it fixed in the DAG file: the trigger's identity
        is its arguments.
    :param patient_id: watch only this patient's new studies.
    :param tcia_conn_id: the ``tcia`` connection.
    :param poll_interval: seconds between polls (> 0).
    :param max_rows_per_event: studies per event at most.
    """

    def __init__(
        self,
        *,
        collection: str,
        since: str | None = None,
        patient_id: str | None = None,
        tcia_conn_id: str = "tcia_default",
        poll_interval: float = 300.0,
        max_rows_per_event: int = 100,
    ) -> None:
        require_event_scheduling(type(self).__name__)
        super().__init__()
        if not isinstance(collection, str) or not collection.strip():
            raise TciaBadRequestError(f"collection must be a non-empty string, not {collection!r}")
        if patient_id is not None and (not isinstance(patient_id, str) or not patient_id.strip()):
            raise TciaBadRequestError(f"patient_id must be a non-empty string or None, not {patient_id!r}")
        self.collection = collection
        self.patient_id = patient_id
        self._settings(since, tcia_conn_id, poll_interval, max_rows_per_event)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return _classpath(self), {
            "collection": self.collection,
            "since": self.since,
            "patient_id": self.patient_id,
            "tcia_conn_id": self.tcia_conn_id,
            "poll_interval": self.poll_interval,
            "max_rows_per_event": self.max_rows_per_event,
        }

    @property
    def state_key(self) -> str:
        """The key of this watcher's progress in the asset state store (one per watched query)."""
        identity = json.dumps(
            {"conn": self.tcia_conn_id, "collection": self.collection, "patient_id": self.patient_id},
            sort_keys=True,
        )
        return "tcia_new_studies:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    @property
    def _watching(self) -> str:
        return self.collection

    _endpoint = NEW_STUDIES_ENDPOINT
    _progress: type[Progress] | type[SeriesProgress] = Progress

    def _announce(self, progress: Progress, rows: list[dict[str, Any]]) -> list[TriggerEvent]:
        new = progress.unseen(rows)
        if not new:
            self.log.info("%s: no new study added since %s", self.collection, _since(progress))
            return []
        self.log.info(
            "%s: %d new stud%s (of %d added since %s)",
            self.collection, len(new), "y" if len(new) == 1 else "ies", len(rows), _since(progress),
        )  # fmt: skip
        progress.mark_seen(new, _utcnow().date())
        return [TriggerEvent(self._payload(progress, chunk)) for chunk in self._chunks(new)]

    def _params(self, progress: Progress) -> dict[str, Any]:
        params = {"collection": self.collection, "date": progress.after.isoformat()}
        if self.patient_id:
            params["patient_id"] = self.patient_id
        return params

    def _payload(self, progress: Progress, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "patient_id": self.patient_id,
            "since": _since(progress),
            "studies": rows,
            "count": len(rows),
        }


def collections_filter(collections: Any, *, param: str = "collections") -> list[str] | None:
    """``collections`` checked: None (every collection) or a non-empty list of non-empty names, in order, each
    once. A single name is a list of one."""
    if collections is None:
        return None
    if isinstance(collections, str):
        collections = [collections]
    if not isinstance(collections, list | tuple) or not collections:
        raise TciaBadRequestError(f"{param} must be a collection name, a list of them or None, not {collections!r}")
    names: dict[str, None] = {}
    for name in collections:
        if not isinstance(name, str) or not name.strip():
            raise TciaBadRequestError(f"{param} must hold non-empty collection names, not {name!r}")
        names[name.strip()] = None
    return list(names)


def in_collections(rows: list[dict[str, Any]], collections: list[str] | None) -> list[dict[str, Any]]:
    """The rows of those collections (NBIA compares collection names regardless of case); all rows for None."""
    if collections is None:
        return rows
    wanted = {name.casefold() for name in collections}
    return [row for row in rows if str(row.get("Collection") or "").casefold() in wanted]


class TciaUpdatedSeriesEventTrigger(_Watcher, BaseEventTrigger):
    """Watch TCIA for new and revised series (``getUpdatedSeries``), for an :class:`~airflow.sdk.AssetWatcher`.

    getUpdatedSeries lists the series of every public collection released after a day — new series, and
    revisions of existing ones, which TCIA republishes under the same SeriesInstanceUID with a new DateReleased.
    The watcher polls it every ``poll_interval`` seconds, keeps the rows of ``collections`` (all collections
    when None; the endpoint itself cannot filter, so this is done here, and watchers of different collections
    share one poll), and fires an event whenever a series appears that it has not announced, or one whose
    DateReleased or submission timestamp is newer than what it announced for it (or whose ImageCount changed:
    :mod:`airflow_provider_tcia.revisions`) — a revision of an announced series is announced again. Payload
    (the asset event's ``extra["payload"]``)::

        {"collections": ["TCGA-BRCA"], "since": "2024-05-01", "series": [{"SeriesInstanceUID": ..., ...}],
         "count": 2, "revised": ["1.3.6…"]}

    (``since``: the first release day its query covered; ``revised``: the UIDs among ``series`` it had announced
    before, in an older revision). At most ``max_rows_per_event`` series per event; more make several events.
    The rows are getSeries rows, so they can go straight to ``TciaDownloadSeriesOperator``, which downloads a
    revision again and skips what it already has.

    getUpdatedSeries is NBIA's (``api=nbia`` connections); on a legacy connection every poll is refused and
    logged. Failures never end the watcher, and progress survives restarts where Airflow gives the watcher an
    asset state store, as for :class:`TciaNewStudiesEventTrigger` (see docs/sensors.md).

    :param collections: a collection name or a list of them; None: every collection.
    :param since: announce series released on or after this day (ISO date). ``None``: from the day the watcher
        first started, remembered in the state store. Keep it fixed in the DAG file.
    :param tcia_conn_id: the ``tcia`` connection (NBIA).
    :param poll_interval: seconds between polls (> 0).
    :param max_rows_per_event: series per event at most.
    """

    _announces = "series"

    def __init__(
        self,
        *,
        collections: str | list[str] | None = None,
        since: str | None = None,
        tcia_conn_id: str = "tcia_default",
        poll_interval: float = 300.0,
        max_rows_per_event: int = 100,
    ) -> None:
        require_event_scheduling(type(self).__name__)
        super().__init__()
        self.collections = collections_filter(collections)
        self._settings(since, tcia_conn_id, poll_interval, max_rows_per_event)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return _classpath(self), {
            "collections": self.collections,
            "since": self.since,
            "tcia_conn_id": self.tcia_conn_id,
            "poll_interval": self.poll_interval,
            "max_rows_per_event": self.max_rows_per_event,
        }

    @property
    def state_key(self) -> str:
        """The key of this watcher's progress in the asset state store (one per watched question)."""
        identity = json.dumps({"conn": self.tcia_conn_id, "collections": self.collections}, sort_keys=True)
        return "tcia_updated_series:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    @property
    def _watching(self) -> str:
        return ", ".join(self.collections) if self.collections else "every collection"

    # (every watcher on one connection asks the same question, whatever its collections: one poll for all)
    _endpoint = UPDATED_SERIES_ENDPOINT
    _progress = SeriesProgress

    def _announce(self, progress: SeriesProgress, rows: list[dict[str, Any]]) -> list[TriggerEvent]:
        rows = in_collections(rows, self.collections)
        changed, revised = progress.changed(rows)
        if not changed:
            self.log.info("%s: no new or revised series since %s", self._watching, _since(progress))
            return []
        self.log.info(
            "%s: %d new or revised series (%d revised; %d released since %s)",
            self._watching, len(changed), len(revised), len(rows), _since(progress),
        )  # fmt: skip
        progress.mark_announced(changed, _utcnow().date())
        return [TriggerEvent(self._payload(progress, chunk, revised)) for chunk in self._chunks(changed)]

    def _params(self, progress: SeriesProgress) -> dict[str, Any]:
        return {"date": progress.after.isoformat()}

    def _payload(self, progress: SeriesProgress, rows: list[dict[str, Any]], revised: list[str]) -> dict[str, Any]:
        uids = {series_key(row) for row in rows}
        return {
            "collections": self.collections,
            "since": _since(progress),
            "series": rows,
            "count": len(rows),
            "revised": [uid for uid in revised if uid in uids],
        }
