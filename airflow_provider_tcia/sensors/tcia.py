"""Sensors that wait for TCIA: for new studies, new patients, new or revised series, or any query to return rows.

All four are thin declarations over :class:`TciaBaseSensor`, which polls in any of Airflow's modes:
``poke`` (holds a worker slot), ``reschedule`` (frees it between pokes) and deferrable (waits in the
triggerer on :class:`~airflow_provider_tcia.triggers.tcia.TciaQueryTrigger`). What was found — the rows,
capped at ``max_rows_in_xcom`` — is the task's return value (XCom).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.dates import parse_date
from airflow_provider_tcia.api.endpoints import check_query
from airflow_provider_tcia.collection_check import check_collection, collection_param
from airflow_provider_tcia.compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
    rescheduled_in_this_try,
)
from airflow_provider_tcia.exceptions import TciaBadRequestError, TciaError, TciaUnknownCollectionError
from airflow_provider_tcia.hooks.config import check_conn_id
from airflow_provider_tcia.polling import ERROR_TYPES, jsonable, judge, poll_once
from airflow_provider_tcia.task_errors import failure
from airflow_provider_tcia.triggers.tcia import (
    UPDATED_SERIES_ENDPOINT,
    TciaQueryTrigger,
    collections_filter,
    in_collections,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_tcia.hooks.tcia import TciaHook

#: The default ``since``: the run's data interval start (with a fallback for empty intervals, see resolve_since).
DEFAULT_SINCE = "{{ data_interval_start }}"
#: How a ``since`` that rendered to nothing looks (e.g. ``{{ params.since }}`` with the param unset).
_UNSET = ("", "None", "none", "null")


class TciaBaseSensor(BaseSensorOperator):
    """Wait until a TCIA query endpoint returns at least ``min_rows`` rows.

    Subclasses say which endpoint and parameters (:meth:`query`); this class polls, judges, defers and
    returns the rows.

    A poll that fails for a server-side reason (5xx, 429, a broken connection — after the hook's own
    retries) counts as "not yet": the sensor polls again after ``poke_interval`` until ``timeout``. A
    refused key, a wrong request, an unknown endpoint or an unusable connection fail the task at once.

    A collection the server does not have fails the task at once too: TCIA answers a query on it with no rows,
    which would otherwise look like "not yet" until ``timeout``. The first poke of a try that finds nothing
    asks the server's collection list (getCollectionValues) whether the query's ``collection`` is on it, and
    fails with :class:`~airflow_provider_tcia.exceptions.TciaUnknownCollectionError` (no Airflow retries)
    naming the closest collections if it is not. A collection listed only in another case is a warning (NBIA
    compares names regardless of case). A check the server could not answer is logged, never fatal, and made
    again at the next poke that finds nothing — in deferrable mode by the trigger, which is handed the check
    when the poke before deferring could not make it. In ``mode="reschedule"``, where every poke is a new
    run of the task, only the try's first poke checks on Airflow 3 (on Airflow 2.11, which does not tell a
    task it was rescheduled, every poke that finds nothing does).

    One hook — one HTTP session, one read of the connection — serves every poke of one run of
    :meth:`execute` and is closed when it ends, however it ends (found, timed out, failed, rescheduled or
    deferred): in ``poke`` mode the pokes of a try share it; in ``reschedule`` mode, where every poke is a new
    process, each poke has its own; a deferrable sensor's poke before deferring has its own, and the trigger
    asks through the triggerer's. A :meth:`poke` called on its own opens and closes one for itself.

    :param tcia_conn_id: the ``tcia`` connection.
    :param min_rows: how many rows count as found (default 1: any).
    :param max_rows_in_xcom: how many of the rows found the task returns (XCom) at most.
    :param deferrable: wait in the triggerer instead of on a worker (default: ``[operators]
        default_deferrable``). The sensor pokes once first, and defers only if nothing is there yet.
    """

    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        tcia_conn_id: str = "tcia_default",
        min_rows: int = 1,
        max_rows_in_xcom: int = 100,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tcia_conn_id = tcia_conn_id
        self.min_rows = min_rows
        self.max_rows_in_xcom = max_rows_in_xcom
        self.deferrable = deferrable
        self._request: tuple[str, dict[str, Any]] | None = None
        #: The hook of the running execute(), shared by its pokes (None outside it).
        self._hook: TciaHook | None = None
        #: The query's collection while it is still to be checked against the server's list (once per try).
        self._unchecked_collection: str | None = None

    # --- what to ask: the subclasses' part ------------------------------------------------------------
    def query(self, context: Context) -> tuple[str, dict[str, Any]]:
        """The endpoint to poll and its parameters by Python name (rendered templates)."""
        raise NotImplementedError

    def collections_kept(self) -> list[str] | None:
        """Only rows of these collections count (for an endpoint that cannot filter by collection); None: all."""
        return None

    # --- polling -------------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._prepare(context)
        from airflow_provider_tcia.hooks.tcia import TciaHook

        self._hook = hook = TciaHook(self.tcia_conn_id)
        try:
            return self._wait(context)
        finally:  # found, timed out, failed, rescheduled or deferred (TaskDeferred)
            self._hook = None
            hook.close()

    def _wait(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke_interval <= 0:
            raise ValueError(f"a deferrable sensor needs poke_interval > 0, not {self.poke_interval}")
        started = dt.datetime.now(dt.UTC)
        found = self.poke(context)
        if found:
            self.log.info("Success criteria met. Exiting.")
            return found.xcom_value
        endpoint, params = self._checked_request()
        self.defer(
            trigger=TciaQueryTrigger(
                endpoint=endpoint,
                query_params=params,
                tcia_conn_id=self.tcia_conn_id,
                poke_interval=self.poke_interval,
                min_rows=self.min_rows,
                max_rows=self.max_rows_in_xcom,
                timeout_at=(started + timedelta(seconds=self.timeout)).isoformat(),
                check_collection=self._unchecked_collection,
                collections=self.collections_kept(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        endpoint, params = self._checked_request(context)
        with self._poke_hook() as hook:
            poll = poll_once(hook, endpoint, params, min_rows=self.min_rows)
            kept = self.collections_kept()
            if kept is not None and poll.outcome in ("found", "waiting"):
                poll = judge(in_collections(poll.rows, kept), self.min_rows)
            if poll.outcome == "found":
                return PokeReturnValue(True, self._xcom_rows(poll.rows, len(poll.rows)))
            if poll.outcome == "fatal":
                raise _fatal(poll.error_type, poll.message)
            if poll.outcome == "transient":
                self.log.warning("%s failed; polling again in %.0f s: %s", endpoint, self.poke_interval, poll.message)
            else:
                self.log.info("%s: %d of %d row(s) so far", endpoint, len(poll.rows), self.min_rows)
                self._check_collection(hook)
        return PokeReturnValue(False)

    @contextlib.contextmanager
    def _poke_hook(self) -> Iterator[TciaHook]:
        """The running execute()'s hook; for a poke() called on its own, one closed when the poke ends."""
        if self._hook is not None:
            yield self._hook
            return
        from airflow_provider_tcia.hooks.tcia import TciaHook

        with contextlib.closing(TciaHook(self.tcia_conn_id)) as hook:
            yield hook

    def _check_collection(self, hook: Any) -> None:
        """Fail at once if the query's collection is not on the server (see the class docstring)."""
        collection = self._unchecked_collection
        if collection is None:
            return
        check = check_collection(hook, collection)
        if check.outcome == "unanswered":
            self.log.warning("%s; asking again at the next poke that finds nothing", check.message)
            return
        self._unchecked_collection = None
        if check.outcome == "unknown":
            raise failure(TciaUnknownCollectionError(check.message))
        if check.outcome == "case":
            self.log.warning("%s; polling on", check.message)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Resume after the trigger fired: return the rows, or fail clearly."""
        event = event or {}
        status = event.get("status")
        if status == "success":
            rows = list(event.get("rows") or [])
            return self._xcom_rows(rows, int(event.get("row_count", len(rows))))
        message = str(event.get("message") or f"the trigger sent an unexpected event: {event!r}")
        if status == "timeout":
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"Sensor has timed out: {message}")
            raise AirflowSensorTimeout(f"Sensor has timed out: {message}")
        if self.never_fail:
            raise AirflowSkipException(f"Skipping due to never_fail is set to True: {message}")
        raise _fatal(event.get("error_type"), message)

    # --- helpers -------------------------------------------------------------------------------------
    def _prepare(self, context: Context) -> None:
        """Check the rendered arguments before anything is sent."""
        for name in ("min_rows", "max_rows_in_xcom"):
            value = getattr(self, name)
            lowest = 1 if name == "min_rows" else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{name} must be an integer >= {lowest}, not {value!r}")
        check_conn_id(self.tcia_conn_id)
        endpoint, params = self.query(context)
        if "format" in params:
            raise TciaBadRequestError("a sensor reads JSON rows; do not pass format")
        ep, checked = check_query(endpoint, params)
        self._request = (ep.name, jsonable(checked))
        # Once per try: a later poke of a rescheduled sensor (a new execute()) trusts the first one's check.
        self._unchecked_collection = None if rescheduled_in_this_try(context) else collection_param(checked)

    def _checked_request(self, context: Context | None = None) -> tuple[str, dict[str, Any]]:
        if self._request is None:
            if context is None:  # pragma: no cover - execute() prepares first
                raise RuntimeError("the sensor was not prepared")
            self._prepare(context)
        assert self._request is not None
        return self._request

    def _xcom_rows(self, rows: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
        kept = rows[: self.max_rows_in_xcom]
        if total > len(kept):
            self.log.warning(
                "%d row(s) found; the task returns the first %d (raise max_rows_in_xcom for more)", total, len(kept)
            )
        else:
            self.log.info("%d row(s) found", total)
        return kept


def _error(error_type: str | None, message: str) -> TciaError:
    cls = ERROR_TYPES.get(error_type or "", TciaError)
    return cls(message)


def _fatal(error_type: str | None, message: str) -> AirflowFailException:
    """A wait that asking again cannot end (a refused key, a wrong request, a missing connection): the task
    fails at once, without its Airflow retries, naming the error."""
    return failure(_error(error_type, message))


def resolve_since(value: Any, context: Context, *, automatic: bool = False) -> dt.date:
    """The ``since`` day: studies added on or after it count.

    ``value`` is the rendered template or a date. With ``automatic`` (the sensor's default ``since``), or
    when ``value`` rendered to nothing, the day comes from the run: the start of its data interval, or — for
    a run without a real interval (a manual run, or a run of Airflow 3's default cron timetable, both of
    which have an empty interval at the moment they start) — the day before the run started. Successive
    daily runs then overlap by a day rather than leave one out.
    """
    if automatic or value is None or (isinstance(value, str) and value.strip() in _UNSET):
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and start < end:
            return parse_date(start, param="since")
        return _run_started(context).date() - timedelta(days=1)
    return parse_date(value, param="since")


def _run_started(context: Context) -> dt.datetime:
    dag_run = context.get("dag_run")
    for attr in ("run_after", "logical_date", "start_date"):
        value = getattr(dag_run, attr, None) if dag_run is not None else None
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC) if value.tzinfo else value
    return dt.datetime.now(dt.UTC)


class TciaQuerySensor(TciaBaseSensor):
    """Wait until any TCIA query endpoint returns rows (or at least ``min_rows`` of them).

    :param endpoint: the endpoint's name (``getSeries``, ``getPatientStudy`` …; seed, NBIA or hook-method
        spelling).
    :param query_params: its parameters by Python name (``{"collection": "TCGA-GBM", "modality": "MR"}``);
        templated.
    """

    template_fields: Sequence[str] = ("endpoint", "query_params", "tcia_conn_id")
    template_fields_renderers = {"query_params": "json"}

    def __init__(self, *, endpoint: str, query_params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.query_params = query_params

    def query(self, context: Context) -> tuple[str, dict[str, Any]]:
        if self.query_params is not None and not isinstance(self.query_params, dict):
            raise TciaBadRequestError(f"query_params must be a dict, not {type(self.query_params).__name__}")
        return self.endpoint, dict(self.query_params or {})


class _SinceSensor(TciaBaseSensor):
    """A sensor for one of the "added after a date" endpoints."""

    endpoint_name: str = ""
    template_fields: Sequence[str] = ("collection", "since", "tcia_conn_id")

    def __init__(self, *, collection: str, since: Any = DEFAULT_SINCE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.since = since
        # Left at the default, since follows the run: see resolve_since().
        self._automatic_since = isinstance(since, str) and since == DEFAULT_SINCE

    def _params(self, context: Context) -> dict[str, Any]:
        if not isinstance(self.collection, str) or not self.collection.strip():
            raise TciaBadRequestError(f"collection must be a non-empty string, not {self.collection!r}")
        since = resolve_since(self.since, context, automatic=getattr(self, "_automatic_since", False))
        # The API's date means "added after": studies added on or after ``since`` are added after the day before.
        return {"collection": self.collection, "date": since - timedelta(days=1)}

    def query(self, context: Context) -> tuple[str, dict[str, Any]]:
        return self.endpoint_name, self._params(context)


class TciaNewStudiesSensor(_SinceSensor):
    """Wait for studies added to a collection (or to one patient of it) on or after ``since``
    (``NewStudiesInPatientCollection``); returns the new study rows.

    :param collection: the collection; templated.
    :param since: a day (date, datetime or ISO string); templated, default ``{{ data_interval_start }}``.
        Studies added on or after that day count. Left at the default, or rendering to nothing, in a run
        without a real data interval (a manual run, or Airflow 3's default cron timetable): the day before
        the run started. Sent in the connection's API format (``Date=YYYY-MM-DD``, NBIA ``fromDate=MM-DD-YYYY``)
        with the API's "added after" meaning, i.e. as the day before ``since``.
    :param patient_id: only this patient's studies; templated.
    """

    endpoint_name = "NewStudiesInPatientCollection"
    template_fields: Sequence[str] = ("collection", "since", "patient_id", "tcia_conn_id")

    def __init__(self, *, patient_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patient_id = patient_id

    def _params(self, context: Context) -> dict[str, Any]:
        params = super()._params(context)
        if self.patient_id not in (None, ""):
            params["patient_id"] = self.patient_id
        return params


class TciaNewPatientsSensor(_SinceSensor):
    """Wait for patients added to a collection on or after ``since`` (``NewPatientsInCollection``); returns the
    new patient rows.

    :param collection: the collection; templated.
    :param since: as for :class:`TciaNewStudiesSensor`.
    """

    endpoint_name = "NewPatientsInCollection"


class TciaUpdatedSeriesSensor(TciaBaseSensor):
    """Wait for series released on or after ``since`` — new series, and revisions of existing ones, which TCIA
    republishes under the same SeriesInstanceUID with a new DateReleased (``getUpdatedSeries``) — in every
    collection or only in ``collections``; returns their getSeries rows (ready for
    ``TciaDownloadSeriesOperator``, which downloads a revision again and skips what it already has).

    getUpdatedSeries has no collection parameter: it lists every public collection, and the sensor keeps the
    rows of ``collections`` itself (names compared regardless of case, as NBIA does), before counting them
    against ``min_rows``. Each of ``collections`` is checked against the server's list as the other sensors
    check theirs (a collection it does not have fails the task at once). It is NBIA's: use an ``api=nbia``
    connection (a legacy one fails the task at once).

    :param collections: a collection name or a list of them; None (the default): every collection. Templated.
    :param since: as for :class:`TciaNewStudiesSensor` (default ``{{ data_interval_start }}``): series released
        on or after that day count. Sent as NBIA's ``fromDate`` (``MM-DD-YYYY``, released strictly after it),
        i.e. the day before ``since``.
    """

    template_fields: Sequence[str] = ("collections", "since", "tcia_conn_id")

    def __init__(
        self, *, collections: str | list[str] | None = None, since: Any = DEFAULT_SINCE, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.collections = collections
        self.since = since
        self._automatic_since = isinstance(since, str) and since == DEFAULT_SINCE
        #: The collections still to be checked against the server's list in this try (the trigger of a
        #: deferred sensor checks the first of them, if the server did not answer before it deferred).
        self._to_check: list[str] = []

    def collections_kept(self) -> list[str] | None:
        return collections_filter(self.collections)

    def query(self, context: Context) -> tuple[str, dict[str, Any]]:
        self.collections_kept()  # (checked before anything is sent)
        since = resolve_since(self.since, context, automatic=getattr(self, "_automatic_since", False))
        return UPDATED_SERIES_ENDPOINT, {"date": since - timedelta(days=1)}

    def _prepare(self, context: Context) -> None:
        super()._prepare(context)
        # Every collection kept, each checked once per try like the other sensors' one (see TciaBaseSensor).
        self._to_check = [] if rescheduled_in_this_try(context) else list(self.collections_kept() or [])
        self._unchecked_collection = self._to_check[0] if self._to_check else None

    def _check_collection(self, hook: Any) -> None:
        while self._to_check:
            self._unchecked_collection = self._to_check[0]
            super()._check_collection(hook)
            if self._unchecked_collection is not None:  # no answer: asked again at the next poke (or by the trigger)
                return
            self._to_check.pop(0)
