"""Triggers that wait for TCIA in the triggerer, on the hook's async side.

* :class:`TciaQueryTrigger` — behind the deferrable sensors: polls one query endpoint until it returns
  enough rows, then fires once.
* :class:`TciaNewStudiesEventTrigger` — for an :class:`~airflow.sdk.AssetWatcher`: watches a collection
  for new studies and fires an event, with the new study rows, each time some appear. No DAG polls.

Both ask through :mod:`~airflow_provider_tcia.triggers.shared_poll`: triggers in one triggerer asking the same
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
from airflow_provider_tcia.polling import Poll, jsonable
from airflow_provider_tcia.triggers.announced import Progress
from airflow_provider_tcia.triggers.shared_poll import Subscription

NEW_STUDIES_ENDPOINT = "NewStudiesInPatientCollection"


def _classpath(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0, not {value!r}")
    return float(value)


def _since(progress: Progress) -> str:
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


class TciaNewStudiesEventTrigger(BaseEventTrigger):
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
        if since is not None:
            since = parse_date(since, param="since").isoformat()
        if patient_id is not None and (not isinstance(patient_id, str) or not patient_id.strip()):
            raise TciaBadRequestError(f"patient_id must be a non-empty string or None, not {patient_id!r}")
        if isinstance(max_rows_per_event, bool) or not isinstance(max_rows_per_event, int) or max_rows_per_event < 1:
            raise ValueError(f"max_rows_per_event must be an integer >= 1, not {max_rows_per_event!r}")
        self.collection = collection
        self.since = since
        self.patient_id = patient_id
        self.tcia_conn_id = tcia_conn_id
        self.poll_interval = _positive("poll_interval", poll_interval)
        self.max_rows_per_event = max_rows_per_event
        self._memory: dict[str, Any] | None = None
        self._warned_no_store = False

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        today = _utcnow().date()
        # TCIA selects "added after DATE": studies added on or after ``since`` are those added after the day
        # before it.
        configured = dt.date.fromisoformat(self.since) - dt.timedelta(days=1) if self.since else None
        start = configured or today - dt.timedelta(days=1)
        progress = Progress.load(await self._load(), start, floor=configured)
        await self._save(progress)
        endpoint = get_endpoint(NEW_STUDIES_ENDPOINT)
        # Watchers asking the same question (connection, collection, patient, day, interval) share one poll.
        question = Subscription(
            self.tcia_conn_id, endpoint.name, self._params(progress), interval=self.poll_interval, make_hook=_make_hook
        )
        async with question:
            while True:
                question.ask(self._params(progress))
                poll = await question.next(1)
                announced = False
                if poll.outcome in ("found", "waiting"):
                    new = progress.unseen(poll.rows)
                    if new:
                        self.log.info(
                            "%s: %d new stud%s (of %d added since %s)",
                            self.collection, len(new), "y" if len(new) == 1 else "ies", len(poll.rows),
                            _since(progress),
                        )  # fmt: skip
                        for start_at in range(0, len(new), self.max_rows_per_event):
                            chunk = new[start_at : start_at + self.max_rows_per_event]
                            yield TriggerEvent(self._payload(progress, chunk))
                        progress.mark_seen(new, _utcnow().date())
                        announced = True
                    else:
                        self.log.info("%s: no new study added since %s", self.collection, _since(progress))
                else:
                    self._log_failure(poll)
                # Progress is saved one interval after an event was yielded (the wait for the shared poll's
                # next answer): by then the triggerer has handed the event to the database, so a crash before
                # the save repeats the event instead of losing it.
                await question.wait()
                answered = poll.outcome in ("found", "waiting")
                if answered and (progress.advance(_utcnow().date()) or announced):
                    await self._save(progress)

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

    def _log_failure(self, poll: Poll) -> None:
        if poll.outcome == "fatal":
            self.log.error(
                "%s: cannot poll for new studies (%s); fix the connection or the watcher's arguments — "
                "trying again in %.0f s",
                self.collection, poll.message, self.poll_interval,
            )  # fmt: skip
        else:
            self.log.warning(
                "%s: polling for new studies failed, trying again in %.0f s: %s",
                self.collection, self.poll_interval, poll.message,
            )  # fmt: skip

    # --- progress across restarts -------------------------------------------------------------------
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

    async def _save(self, progress: Progress) -> None:
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
                "%s: %s; progress is kept in memory, so after a triggerer restart studies found since %s "
                "may be announced again",
                self.collection, why, self.since or "the watcher's first start",
            )  # fmt: skip
