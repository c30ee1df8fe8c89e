"""Operators for TCIA's query endpoints: one base class, and one small declaration per endpoint.

:class:`TciaQueryOperator` does the work for any query endpoint. Each endpoint's operator
(:class:`TciaGetSeriesOperator`, …) names its endpoint and writes out an ``__init__`` taking the endpoint's
parameters as keyword arguments, so type checkers and IDEs see them; its templated fields come from the
endpoint table (:mod:`airflow_provider_tcia.api.endpoints`), which stays the source of truth:
``tests/api/test_typed_api.py`` fails, printing the code to paste, until a new endpoint's operator is here
and matches the table.

Typing, and what it does not check: every endpoint parameter is ``str | None = None`` (dates also take a
date), the required ones too — their value may come from ``default_args``, ``.partial()``/``.expand()`` or a
template, and ``execute()`` checks it. The operators' own and BaseOperator's arguments (``task_id``,
``retries`` …) pass through ``**kwargs: Any``: BaseOperator's differ between Airflow 2.11 and 3.3, and a
copy of them as a ``TypedDict`` would go stale. A misspelt keyword (``colection=``) is not a type error
here, but Airflow refuses it when the DAG is parsed ("Invalid arguments were passed to …";
``tests/operators/test_query_operators_unit.py``). The hook's methods have no ``**kwargs``: there a
misspelling is a type error too.

The result goes to XCom by default (the rows, as the task's return value, refused above ``max_xcom_bytes``),
or to ``output_path`` on any object storage Airflow knows (``file://``, ``s3://conn_id@bucket/key`` …) in
json, jsonl, csv, xml or html, streamed and published only once complete; XCom then gets a small summary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow_provider_tcia.api import simple_search
from airflow_provider_tcia.api.endpoints import Endpoint, check_query, get_endpoint
from airflow_provider_tcia.api.generations import INTEGER_FIELDS
from airflow_provider_tcia.api.retry import retry_call
from airflow_provider_tcia.api.uids import shown
from airflow_provider_tcia.collection_check import check_collection, collection_param
from airflow_provider_tcia.compat import BaseOperator, ObjectStoragePath
from airflow_provider_tcia.exceptions import (
    TciaBadRequestError,
    TciaIncompleteResponseError,
    TciaResultTooLargeError,
)
from airflow_provider_tcia.hooks.config import check_conn_id
from airflow_provider_tcia.hooks.paged import SERIES_METADATA_CHUNK
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.operators.output import (
    ROW_FORMATS,
    resolve_output_format,
    write_rows,
    write_text,
)
from airflow_provider_tcia.operators.parquet import require_pyarrow, write_parquet
from airflow_provider_tcia.operators.xcom import DEFAULT_MAX_XCOM_BYTES, check_max_xcom_bytes, json_bytes
from airflow_provider_tcia.storage import as_path, atomic_writer
from airflow_provider_tcia.task_errors import fail_fast

if TYPE_CHECKING:
    from airflow.sdk import Context

_T = TypeVar("_T")


class TciaQueryOperator(BaseOperator):
    """Call one TCIA query endpoint; push its rows to XCom or write them to object storage.

    Use an endpoint's own operator (:class:`TciaGetSeriesOperator` …) where you can; this base class also
    serves any query endpoint by name: ``TciaQueryOperator(task_id=…, endpoint="getSeries",
    parameters={"collection": "TCGA-GBM"})``.

    Every endpoint parameter, ``output_path``, ``output_format`` and ``tcia_conn_id`` is templated and is
    checked when the task runs, before anything is sent or written: an unknown or missing required
    parameter, an empty string, a value that is not a date where a date is expected, or a bad output
    option fails the task at once (:class:`~airflow.sdk.exceptions.AirflowFailException`, no retries), with
    nothing written at ``output_path``. A result too large for XCom fails the same way.

    A query on a ``collection`` that returns no rows asks the server's collection list once more
    (getCollectionValues): if the collection is not there — TCIA answers a misspelt collection with no rows,
    not an error — the task log gets a warning naming the closest collections the server has. The task still
    succeeds: an empty result can be the right answer.

    :param endpoint: the query endpoint (seed name such as ``getSeries``, NBIA name or hook method name);
        only for this base class — each endpoint's operator knows its own.
    :param parameters: the endpoint's parameters by the hook's names (``{"collection": "TCGA-GBM"}``);
        only for this base class — each endpoint's operator takes them as keyword arguments. Templated.
    :param tcia_conn_id: the ``tcia`` connection. Templated.
    :param output_path: where to write the result (an :class:`~airflow.sdk.ObjectStoragePath` or its URL:
        ``file:///data/series.jsonl``, ``s3://aws_conn@bucket/tcia/series.csv`` …). The object appears
        there only once it is complete, and XCom gets ``{"path", "format", "rows", "bytes"}``. Without it,
        the rows are the task's return value (XCom). Templated.
    :param output_format: ``json`` (a JSON array of row objects), ``jsonl`` (one object per line), or
        ``csv``, ``xml`` or ``html`` exactly as the API returns them in that format. Default: the one
        ``output_path``'s suffix names (``.json``, ``.jsonl``/``.ndjson``, ``.csv``, ``.xml``,
        ``.html``/``.htm``), else json; a format that contradicts the suffix is an error. Only with
        ``output_path``. Templated.
    :param max_xcom_bytes: refuse to push rows to XCom whose JSON exceeds this many bytes (default 1 MiB);
        the rows are counted as they stream in, so a huge result is refused without being held in memory.
        The same cap holds for every operator: see :mod:`airflow_provider_tcia.operators.xcom`.
    """

    template_fields: Sequence[str] = ("parameters", "tcia_conn_id", "output_path", "output_format")
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json"}
    ui_color = "#d6eaf8"

    #: The endpoint of an endpoint's operator (set by each subclass; ``None`` on this base class).
    endpoint: str | None = None
    #: The endpoint parameters an endpoint's operator takes as keyword arguments (derived from the table).
    endpoint_params: ClassVar[tuple[str, ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("endpoint")
        if name is None:
            return
        ep = get_endpoint(name)
        if ep.kind != "query":
            raise TypeError(f"{cls.__name__}: {ep.name} is a download, not a query endpoint")
        cls.endpoint = ep.name
        if ep.own_signature:
            return  # (its parameters, templated fields and __init__ are its own: getSeriesMetadata, getSimpleSearch)
        cls.endpoint_params = tuple(p.name for p in ep.params)
        cls.template_fields = (*cls.endpoint_params, "tcia_conn_id", "output_path", "output_format")
        cls.template_fields_renderers = {}
        if "__init__" not in cls.__dict__:
            # A subclass declaring only its endpoint (as users may); this module's operators write theirs out.
            cls.__init__ = _endpoint_init(cls, ep)  # type: ignore[method-assign]  # (built from the table)
        if not cls.__doc__:
            cls.__doc__ = _endpoint_doc(ep)

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tcia_conn_id: str = TciaHook.default_conn_name,
        output_path: str | ObjectStoragePath | None = None,
        output_format: str | None = None,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if type(self).endpoint_params is None:
            if endpoint is None:
                raise TypeError(f"{type(self).__name__} needs endpoint=, e.g. endpoint='getSeries'")
            self.endpoint = get_endpoint(endpoint).name
            if get_endpoint(endpoint).kind != "query":
                raise TypeError(f"{self.endpoint} is a download, not a query endpoint")
        elif endpoint is not None or parameters is not None:
            raise TypeError(
                f"{type(self).__name__} always queries {self.endpoint}; give its parameters "
                f"({', '.join(self.endpoint_params or ()) or 'none'}) as keyword arguments, "
                "not endpoint= or parameters="
            )
        self.parameters = parameters
        self.tcia_conn_id = tcia_conn_id
        self.output_path = output_path
        self.output_format = output_format
        self.max_xcom_bytes = check_max_xcom_bytes(max_xcom_bytes)

    # --- running ------------------------------------------------------------------------------------
    def execute(self, context: Context) -> list[dict[str, Any]] | dict[str, Any] | None:
        # Bad input, a refused key or a broken connection fail the same way every time: fail now, no retries.
        with fail_fast():
            ep, params = self._checked_query()
            output = self._checked_output()
            hook = TciaHook(check_conn_id(self.tcia_conn_id))
            result: list[dict[str, Any]] | dict[str, Any] | None
            try:
                if output is None:
                    result, rows = self._to_xcom(hook, ep, params)
                else:
                    result = self._to_storage(hook, ep, params, *output)
                    rows = result["rows"]
                if rows == 0:
                    self._explain_no_rows(hook, ep, params)
                return result
            finally:
                hook.close()

    def query_params(self) -> dict[str, Any]:
        """The endpoint parameters as given (rendered), by the hook's names, ``None`` for those left out."""
        if self.endpoint_params is not None:
            return {name: getattr(self, name) for name in self.endpoint_params}
        if self.parameters is None:
            return {}
        if not isinstance(self.parameters, Mapping):
            raise TciaBadRequestError(
                f"parameters must be a mapping of parameter names to values, not {self.parameters!r}"
            )
        return dict(self.parameters)

    def _checked_query(self) -> tuple[Endpoint, dict[str, Any]]:
        if self.endpoint is None:  # (set by __init__ or the class; None only on a half-built base instance)
            raise TypeError(f"{type(self).__name__} has no endpoint")
        return check_query(self.endpoint, self.query_params())

    def _checked_output(self) -> tuple[ObjectStoragePath, str] | None:
        if self.output_path is None:
            if self.output_format is not None:
                raise TciaBadRequestError(
                    f"output_format={self.output_format!r} needs output_path; without output_path the rows "
                    "go to XCom as JSON"
                )
            return None
        if isinstance(self.output_path, str):
            text = self.output_path.strip()
            if not text:
                raise TciaBadRequestError(
                    "output_path rendered to an empty string; give a URL such as file:///data/series.json or "
                    "s3://aws_conn@bucket/series.json, or leave it out to push the rows to XCom"
                )
            if text.endswith("/"):
                raise TciaBadRequestError(
                    f"output_path={text!r} names a folder; give the object to write, e.g. {text}series.json"
                )
        elif not isinstance(self.output_path, ObjectStoragePath):
            raise TciaBadRequestError(
                f"output_path must be a URL or an ObjectStoragePath, not {type(self.output_path).__name__}"
            )
        try:
            path = as_path(self.output_path)
        except ValueError as err:
            raise TciaBadRequestError(f"output_path={self.output_path!r}: {err}") from None
        fmt = resolve_output_format(path.name, self.output_format)
        if fmt == "parquet":
            require_pyarrow()
        return path, fmt

    def _explain_no_rows(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any]) -> None:
        """No rows, from a query on a collection: warn if the server does not have that collection (TCIA
        answers such a query with no rows and status 200). An empty result can be right, so the task still
        succeeds; the check costs one getCollectionValues, and a check that fails only says so."""
        collection = collection_param(params)
        if collection is None:
            return
        check = check_collection(hook, collection)
        if check.outcome in ("unknown", "case"):
            self.log.warning("%s returned no rows: %s", self._describe(ep, params), check.message)
        elif check.outcome == "unanswered":
            self.log.info("%s returned no rows; %s", self._describe(ep, params), check.message)

    def _to_xcom(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, int]:
        """The task's return value (the rows, or ``None`` with ``do_xcom_push=False``) and the row count."""
        if not self.do_xcom_push:
            count = self._restarting(
                hook, "reading the answer", lambda: sum(1 for _ in self._iter_rows(hook, ep, params))
            )
            self.log.info("%s: %d rows (do_xcom_push=False: not pushed)", ep.name, count)
            return None, count

        def collect() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            size = 2  # "[]"
            for row in self._iter_rows(hook, ep, params):
                size += json_bytes(row) + 2  # ", "
                if size > self.max_xcom_bytes:
                    raise TciaResultTooLargeError(
                        f"{self._describe(ep, params)} returned more than {self.max_xcom_bytes} bytes of JSON (after "
                        f"{len(rows) + 1} rows), too much for XCom (max_xcom_bytes={self.max_xcom_bytes}); set "
                        "output_path to write the result to object storage (e.g. "
                        "output_path='s3://aws_conn@bucket/tcia/result.jsonl') and pass the path on instead"
                    )
                rows.append(row)
            return rows

        rows = self._restarting(hook, "reading the answer", collect)
        self.log.info("%s: %d rows to XCom", ep.name, len(rows))
        return rows, len(rows)

    def _to_storage(
        self, hook: TciaHook, ep: Endpoint, params: dict[str, Any], path: ObjectStoragePath, fmt: str
    ) -> dict[str, Any]:
        what = self._describe(ep, params)

        def write_once() -> tuple[int, int]:
            # Send the request and read its first piece before creating anything at the destination, so a
            # refused or failed request leaves no trace there.
            if fmt in ROW_FORMATS:
                rows = _primed(self._iter_rows(hook, ep, params))
                with atomic_writer(path) as fh:
                    if fmt == "parquet":
                        return write_parquet(fh, rows, ep.attributes, log=self.log, integers=self.integer_columns)
                    return write_rows(fh, rows, fmt)
            chunks = _primed(self._iter_text(hook, ep, params, fmt))
            with atomic_writer(path) as fh:
                return write_text(fh, chunks, fmt, what=what)

        rows, size = self._restarting(hook, f"writing {path}", write_once)
        self.log.info("%s: wrote %d rows (%d bytes of %s) to %s", ep.name, rows, size, fmt, path)
        return {"path": str(path), "format": fmt, "rows": rows, "bytes": size}

    # --- what a subclass with its own parameters replaces ---------------------------------------------------
    #: Columns Parquet writes as 64-bit integers.
    integer_columns: ClassVar[tuple[str, ...]] = INTEGER_FIELDS

    def _iter_rows(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The rows of the query, as they stream in."""
        return hook.iter_rows(ep.name, **params)

    def _iter_text(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any], fmt: str) -> Iterator[bytes]:
        """The query's body in ``fmt`` (csv, xml or html), in chunks."""
        return hook.iter_text(ep.name, format=fmt, **params)

    def _describe(self, ep: Endpoint, params: Mapping[str, Any]) -> str:
        """The query, for messages."""
        return _describe(ep, params)

    def _restarting(self, hook: TciaHook, what: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt``; start it over (bounded, with the connection's backoff) if the body broke off."""
        return retry_call(hook.config.retry, attempt, retry_on=(TciaIncompleteResponseError,), what=what, log=self.log)


def _primed(items: Iterator[_T]) -> Iterator[_T]:
    """``items`` with its first element already fetched (so its request has been answered)."""
    iterator = iter(items)
    try:
        first = next(iterator)
    except StopIteration:
        return iter(())
    return itertools.chain((first,), iterator)


def _describe(ep: Endpoint, params: Mapping[str, Any]) -> str:
    return f"{ep.name}({', '.join(f'{k}={str(v)!r}' for k, v in params.items())})"


def _endpoint_init(cls: type[TciaQueryOperator], ep: Endpoint) -> Callable[..., None]:
    """An ``__init__`` taking the endpoint's parameters as explicit keyword arguments (a real signature, so
    Airflow's argument checks, ``default_args`` and ``.partial()``/``.expand()`` validation see them)."""
    names = tuple(p.name for p in ep.params)
    signature = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in names),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
        ]
    )

    def __init__(self: TciaQueryOperator, **kwargs: Any) -> None:
        values = {name: kwargs.pop(name, None) for name in names}
        super(cls, self).__init__(**kwargs)
        for name, value in values.items():
            setattr(self, name, value)  # verbatim: templates render later, execute() validates

    __init__.__signature__ = signature  # type: ignore[attr-defined]  # (inspect reads it; typeshed lacks it)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _endpoint_doc(ep: Endpoint) -> str:
    lines = [
        f"{ep.description} (``{ep.name}``); see :class:`TciaQueryOperator` for output and validation.",
        "",
    ]
    for p in ep.params:
        lines.append(f":param {p.name}: {p.description}{' (required)' if p.required else ''}. Templated.")
    return "\n".join(lines)


class TciaGetCollectionValuesOperator(TciaQueryOperator):
    """Set of all collection names (``getCollectionValues``).

    Output and validation: see :class:`TciaQueryOperator`.
    """

    endpoint = "getCollectionValues"

    # Its own, with no parameters: the base class's would show endpoint= and parameters=, which it refuses.
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class TciaGetModalityValuesOperator(TciaQueryOperator):
    """Set of all modality values (``getModalityValues``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param body_part_examined: A DICOM body part, e.g. BRAIN. Templated.
    """

    endpoint = "getModalityValues"

    def __init__(
        self,
        *,
        collection: str | None = None,
        body_part_examined: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.body_part_examined = body_part_examined


class TciaGetBodyPartValuesOperator(TciaQueryOperator):
    """Set of all body part values (``getBodyPartValues``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param modality: A DICOM modality, e.g. MR. Templated.
    """

    endpoint = "getBodyPartValues"

    def __init__(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.modality = modality


class TciaGetManufacturerValuesOperator(TciaQueryOperator):
    """Set of all manufacturer values (``getManufacturerValues``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param modality: A DICOM modality, e.g. MR. Templated.
    :param body_part_examined: A DICOM body part, e.g. BRAIN. Templated.
    """

    endpoint = "getManufacturerValues"

    def __init__(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.modality = modality
        self.body_part_examined = body_part_examined


class TciaGetPatientOperator(TciaQueryOperator):
    """Set of patient objects (``getPatient``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    """

    endpoint = "getPatient"

    def __init__(
        self,
        *,
        collection: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection


class TciaPatientsByModalityOperator(TciaQueryOperator):
    """Set of patient objects with at least one series of a modality (``PatientsByModality``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM (required). Templated.
    :param modality: A DICOM modality, e.g. MR (required). Templated.
    """

    endpoint = "PatientsByModality"

    def __init__(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.modality = modality


class TciaGetPatientStudyOperator(TciaQueryOperator):
    """Set of patient-study objects (``getPatientStudy``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param patient_id: A patient ID. Templated.
    :param study_instance_uid: A study's StudyInstanceUID. Templated.
    """

    endpoint = "getPatientStudy"

    def __init__(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.patient_id = patient_id
        self.study_instance_uid = study_instance_uid


class TciaGetSeriesOperator(TciaQueryOperator):
    """Set of series objects (``getSeries``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param patient_id: A patient ID. Templated.
    :param study_instance_uid: A study's StudyInstanceUID. Templated.
    :param modality: A DICOM modality, e.g. MR. Templated.
    :param series_instance_uid: A series' SeriesInstanceUID. Templated.
    :param body_part_examined: A DICOM body part, e.g. BRAIN. Templated.
    :param manufacturer_model_name: Equipment model. Templated.
    :param manufacturer: Equipment manufacturer. Templated.
    """

    endpoint = "getSeries"

    def __init__(
        self,
        *,
        collection: str | None = None,
        patient_id: str | None = None,
        study_instance_uid: str | None = None,
        modality: str | None = None,
        series_instance_uid: str | None = None,
        body_part_examined: str | None = None,
        manufacturer_model_name: str | None = None,
        manufacturer: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.patient_id = patient_id
        self.study_instance_uid = study_instance_uid
        self.modality = modality
        self.series_instance_uid = series_instance_uid
        self.body_part_examined = body_part_examined
        self.manufacturer_model_name = manufacturer_model_name
        self.manufacturer = manufacturer


class TciaGetSeriesSizeOperator(TciaQueryOperator):
    """Total byte size and object count of a series (``getSeriesSize``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param series_instance_uid: A series' SeriesInstanceUID (required). Templated.
    """

    endpoint = "getSeriesSize"

    def __init__(
        self,
        *,
        series_instance_uid: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.series_instance_uid = series_instance_uid


class TciaGetSOPInstanceUIDsOperator(TciaQueryOperator):
    """Set of SOP instance UIDs of a series (``getSOPInstanceUIDs``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param series_instance_uid: A series' SeriesInstanceUID (required). Templated.
    """

    endpoint = "getSOPInstanceUIDs"

    def __init__(
        self,
        *,
        series_instance_uid: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.series_instance_uid = series_instance_uid


class TciaNewPatientsInCollectionOperator(TciaQueryOperator):
    """Set of patient objects added to a collection after a date (``NewPatientsInCollection``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM (required). Templated.
    :param date: Only what was added after this date (YYYY-MM-DD) (required). Templated.
    """

    endpoint = "NewPatientsInCollection"

    def __init__(
        self,
        *,
        collection: str | None = None,
        date: str | dt.date | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.date = date


class TciaNewStudiesInPatientCollectionOperator(TciaQueryOperator):
    """Set of patient-study objects added to a collection (or a patient of it) after a date (``NewStudiesInPatientCollection``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM (required). Templated.
    :param date: Only what was added after this date (YYYY-MM-DD) (required). Templated.
    :param patient_id: A patient ID. Templated.
    """

    endpoint = "NewStudiesInPatientCollection"

    def __init__(
        self,
        *,
        collection: str | None = None,
        date: str | dt.date | None = None,
        patient_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.date = date
        self.patient_id = patient_id


class TciaGetSharedListOperator(TciaQueryOperator):
    """Set of series objects in a shared list (``ContentsByName``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param name: The shared list's name (required). Templated.
    """

    endpoint = "ContentsByName"

    def __init__(
        self,
        *,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name


class TciaGetUpdatedSeriesOperator(TciaQueryOperator):
    """Set of series objects released after a date (``getUpdatedSeries``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param date: Only series released after this date (YYYY-MM-DD); all when left out. Templated.
    """

    endpoint = "getUpdatedSeries"

    def __init__(
        self,
        *,
        date: str | dt.date | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.date = date


class TciaGetCollectionDescriptionsOperator(TciaQueryOperator):
    """The collections' descriptions (HTML) and DOIs (``getCollectionDescriptions``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    """

    endpoint = "getCollectionDescriptions"

    def __init__(
        self,
        *,
        collection: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection


class TciaGetCollectionValuesAndCountsOperator(TciaQueryOperator):
    """Each collection and its number of patients (``getCollectionValuesAndCounts``).

    Output and validation: see :class:`TciaQueryOperator`.
    """

    endpoint = "getCollectionValuesAndCounts"

    # Its own, with no parameters: the base class's would show endpoint= and parameters=, which it refuses.
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class TciaGetModalityValuesAndCountsOperator(TciaQueryOperator):
    """Each modality and its number of patients (``getModalityValuesAndCounts``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param body_part_examined: A DICOM body part, e.g. BRAIN. Templated.
    """

    endpoint = "getModalityValuesAndCounts"

    def __init__(
        self,
        *,
        collection: str | None = None,
        body_part_examined: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.body_part_examined = body_part_examined


class TciaGetBodyPartValuesAndCountsOperator(TciaQueryOperator):
    """Each body part and its number of patients (``getBodyPartValuesAndCounts``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param modality: A DICOM modality, e.g. MR. Templated.
    """

    endpoint = "getBodyPartValuesAndCounts"

    def __init__(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.modality = modality


class TciaGetManufacturerValuesAndCountsOperator(TciaQueryOperator):
    """Each manufacturer and its number of patients (``getManufacturerValuesAndCounts``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    :param modality: A DICOM modality, e.g. MR. Templated.
    :param body_part_examined: A DICOM body part, e.g. BRAIN. Templated.
    """

    endpoint = "getManufacturerValuesAndCounts"

    def __init__(
        self,
        *,
        collection: str | None = None,
        modality: str | None = None,
        body_part_examined: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection = collection
        self.modality = modality
        self.body_part_examined = body_part_examined


class TciaGetSpeciesValuesAndCountsOperator(TciaQueryOperator):
    """Each species and its number of patients (``getSpeciesValuesAndCounts``).

    Output and validation: see :class:`TciaQueryOperator`.
    """

    endpoint = "getSpeciesValuesAndCounts"

    # Its own, with no parameters: the base class's would show endpoint= and parameters=, which it refuses.
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class TciaGetDicomTagsOperator(TciaQueryOperator):
    """The DICOM tags of one image of a series (``getDicomTags``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param series_instance_uid: A series' SeriesInstanceUID (required). Templated.
    """

    endpoint = "getDicomTags"

    def __init__(
        self,
        *,
        series_instance_uid: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.series_instance_uid = series_instance_uid


class TciaGetMD5HierarchyOperator(TciaQueryOperator):
    """One MD5 over a series, study, patient or collection (of its children's MD5s, sorted) (``getMD5Hierarchy``).

    Give exactly one of the four levels.

    Output and validation: see :class:`TciaQueryOperator`. The answer is one text/plain value, pushed (or
    written) as one row ``{"MD5Hash": "<lower-case hex>"}``; no row when NBIA answers nothing.

    :param series_instance_uid: A series' SeriesInstanceUID. Templated.
    :param study_instance_uid: A study's StudyInstanceUID. Templated.
    :param patient_id: A patient ID. Templated.
    :param collection: A collection name, e.g. TCGA-GBM. Templated.
    """

    endpoint = "getMD5Hierarchy"

    def __init__(
        self,
        *,
        series_instance_uid: str | None = None,
        study_instance_uid: str | None = None,
        patient_id: str | None = None,
        collection: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.series_instance_uid = series_instance_uid
        self.study_instance_uid = study_instance_uid
        self.patient_id = patient_id
        self.collection = collection


class TciaGetMD5HashForImageOperator(TciaQueryOperator):
    """The MD5 of one DICOM file, as NBIA stores it (``getMD5HashForImage``).

    Output and validation: see :class:`TciaQueryOperator`. The answer is one text/plain value, pushed (or
    written) as one row ``{"MD5Hash": "<lower-case hex>"}``; no row when NBIA answers nothing.

    :param sop_instance_uid: A SOPInstanceUID (required). Templated.
    """

    endpoint = "getMD5HashForImage"

    def __init__(
        self,
        *,
        sop_instance_uid: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sop_instance_uid = sop_instance_uid


class TciaGetCollectionOrSeriesForDOIOperator(TciaQueryOperator):
    """The collections (or series) a DOI covers (``getCollectionOrSeriesForDOI``).

    Output and validation: see :class:`TciaQueryOperator`.

    :param doi: A DOI, as TCIA records it (https://doi.org/10.7937/...) (required). Templated.
    :param collection_or_series: Series for one row per series; else one per collection. Templated.
    """

    endpoint = "getCollectionOrSeriesForDOI"

    def __init__(
        self,
        *,
        doi: str | None = None,
        collection_or_series: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.doi = doi
        self.collection_or_series = collection_or_series


#: SimpleSearch's fields, as TciaGetSimpleSearchOperator takes them.
SIMPLE_SEARCH_FIELDS = tuple(f.name for f in dataclasses.fields(simple_search.SimpleSearch))


class TciaGetSeriesMetadataOperator(TciaQueryOperator):
    """Metadata of many series (``getSeriesMetadata``, NBIA v4 only): one row per SeriesInstanceUID NBIA has,
    with the columns of v4's CSV header (``PatientID`` … ``SeriesInstanceUID`` … ``Authorized``); unknown UIDs
    are simply absent. The UIDs are sent in chunks of ``chunk_size`` and the rows stream, so memory does not grow
    with the number of rows. A legacy connection is refused before anything is sent.

    Output and validation: see :class:`TciaQueryOperator` (csv, xml and html are rendered from the rows).

    :param series_instance_uids: the series — a list of SeriesInstanceUIDs, a list of rows with a
        ``SeriesInstanceUID`` (what :class:`TciaGetSeriesOperator` pushes), or one string of UIDs separated by
        commas or whitespace; each is checked as a DICOM UID before anything is sent. Templated (an upstream
        task's XCom works: ``series_instance_uids=get_series.output``).
    :param chunk_size: UIDs per request (default :data:`~airflow_provider_tcia.hooks.paged.SERIES_METADATA_CHUNK`).
    """

    endpoint = "getSeriesMetadata"
    endpoint_params = ()
    template_fields: Sequence[str] = ("series_instance_uids", "tcia_conn_id", "output_path", "output_format")
    template_fields_renderers: ClassVar[dict[str, str]] = {"series_instance_uids": "json"}

    def __init__(
        self,
        *,
        series_instance_uids: str | Sequence[str | Mapping[str, Any]] | None = None,
        chunk_size: int = SERIES_METADATA_CHUNK,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.series_instance_uids = series_instance_uids
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a whole number of UIDs, at least 1, not {chunk_size!r}")
        self.chunk_size = chunk_size

    def _checked_query(self) -> tuple[Endpoint, dict[str, Any]]:
        return get_endpoint("getSeriesMetadata"), {"series_instance_uids": _uids_of(self.series_instance_uids)}

    def _iter_rows(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return hook.iter_series_metadata(params["series_instance_uids"], chunk_size=self.chunk_size)

    def _iter_text(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any], fmt: str) -> Iterator[bytes]:
        uids = params["series_instance_uids"]
        return hook.iter_series_metadata_text(uids, format=fmt, chunk_size=self.chunk_size)

    def _describe(self, ep: Endpoint, params: Mapping[str, Any]) -> str:
        return f"getSeriesMetadata({len(params['series_instance_uids'])} SeriesInstanceUIDs)"


class TciaGetSimpleSearchOperator(TciaQueryOperator):
    """Patients matching search criteria (``getSimpleSearch``, NBIA v4 only), every page, one row per series:
    ``Collection``, ``PatientID``, ``StudyIdentifier`` and ``SeriesIdentifier`` (NBIA's own database keys — the
    answer has no DICOM UIDs), ``Modality``, ``TotalNumberOfStudies``, ``TotalNumberOfSeries``. A legacy
    connection is refused before anything is sent.

    The criteria are :class:`~airflow_provider_tcia.api.simple_search.SimpleSearch`'s, as keyword arguments, all
    templated, and checked when the task runs, before anything is sent: a list-like criterion takes a string or
    a list of strings (any of them), different criteria must all hold, at least one is needed.

    Output and validation: see :class:`TciaQueryOperator` (csv, xml and html are rendered from the rows).

    :param collections: Collection names. Templated.
    :param species: Species codes, e.g. 337915000. Templated.
    :param modalities: DICOM modalities. Templated.
    :param all_modalities: Every one of the modalities, not any. Templated.
    :param body_parts: Body parts examined. Templated.
    :param manufacturers: Equipment manufacturers. Templated.
    :param models: Equipment models. Templated.
    :param software_versions: Software versions. Templated.
    :param patient_sexes: Patient sex codes (M, F, O). Templated.
    :param date_range: (from, to) release dates (NBIA's series.dateReleased), both included: dates or ISO-8601
        strings, e.g. ``("{{ macros.ds_add(ds, -30) }}", "{{ ds }}")``. Templated.
    :param patient_age_range: (from, to) patient age in years, both included. Templated.
    :param pixel_spacing_range: (from, to) pixel spacing in mm, both included. Templated.
    :param slice_thickness_range: (from, to) slice thickness in mm, both included. Templated.
    :param description: Words in the study or series description or protocol name (any of them). Templated.
    :param phantom: ``exclude`` phantom patients or ``only`` them. Templated.
    :param patient_ids: Patient IDs. Templated.
    :param study_instance_uids: StudyInstanceUIDs. Templated.
    :param series_instance_uids: SeriesInstanceUIDs. Templated.
    :param min_studies: At least this many studies. Templated.
    :param third_party_analysis: Third-party analyses only (True) or none (False). Templated.
    :param exclude_commercial: Leave out non-commercial licences. Templated.
    :param time_point_event: The event a study's time point counts from (with ``time_point_days``). Templated.
    :param time_point_days: (from, to) days from that event, both included, one may be None. Templated.
    :param sort_field: how NBIA orders the patients (``subject``, ``collection`` …). Templated.
    :param sort_direction: ``ascending`` or ``descending``. Templated.
    :param page_size: patients per request (default :data:`~airflow_provider_tcia.api.simple_search.PAGE_SIZE`).
    """

    endpoint = "getSimpleSearch"
    endpoint_params = ()
    template_fields: Sequence[str] = (*SIMPLE_SEARCH_FIELDS, "tcia_conn_id", "output_path", "output_format")
    template_fields_renderers: ClassVar[dict[str, str]] = {}
    integer_columns = simple_search.INTEGER_COLUMNS

    def __init__(
        self,
        *,
        collections: str | Sequence[str] | None = None,
        species: str | Sequence[str] | None = None,
        modalities: str | Sequence[str] | None = None,
        all_modalities: bool | str = False,
        body_parts: str | Sequence[str] | None = None,
        manufacturers: str | Sequence[str] | None = None,
        models: str | Sequence[str] | None = None,
        software_versions: str | Sequence[str] | None = None,
        patient_sexes: str | Sequence[str] | None = None,
        date_range: Sequence[str | dt.date] | None = None,
        patient_age_range: Sequence[float | str] | None = None,
        pixel_spacing_range: Sequence[float | str] | None = None,
        slice_thickness_range: Sequence[float | str] | None = None,
        description: str | None = None,
        phantom: str | None = None,
        patient_ids: str | Sequence[str] | None = None,
        study_instance_uids: str | Sequence[str] | None = None,
        series_instance_uids: str | Sequence[str] | None = None,
        min_studies: int | str | None = None,
        third_party_analysis: bool | str | None = None,
        exclude_commercial: bool | str = False,
        time_point_event: str | None = None,
        time_point_days: Sequence[int | str | None] | None = None,
        sort_field: str = "subject",
        sort_direction: str = "ascending",
        page_size: int = simple_search.PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collections = collections
        self.species = species
        self.modalities = modalities
        self.all_modalities = all_modalities
        self.body_parts = body_parts
        self.manufacturers = manufacturers
        self.models = models
        self.software_versions = software_versions
        self.patient_sexes = patient_sexes
        self.date_range = date_range
        self.patient_age_range = patient_age_range
        self.pixel_spacing_range = pixel_spacing_range
        self.slice_thickness_range = slice_thickness_range
        self.description = description
        self.phantom = phantom
        self.patient_ids = patient_ids
        self.study_instance_uids = study_instance_uids
        self.series_instance_uids = series_instance_uids
        self.min_studies = min_studies
        self.third_party_analysis = third_party_analysis
        self.exclude_commercial = exclude_commercial
        self.time_point_event = time_point_event
        self.time_point_days = time_point_days
        self.sort_field = sort_field
        self.sort_direction = sort_direction
        self.page_size = simple_search.check_page_size(page_size)

    def criteria(self) -> simple_search.SimpleSearch:
        """The criteria as given (rendered), checked."""
        return simple_search.SimpleSearch.from_mapping({name: getattr(self, name) for name in SIMPLE_SEARCH_FIELDS})

    def _checked_query(self) -> tuple[Endpoint, dict[str, Any]]:
        return get_endpoint("getSimpleSearch"), {"criteria": self.criteria()}

    def _iter_rows(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return hook.iter_simple_search(params["criteria"], page_size=self.page_size)

    def _iter_text(self, hook: TciaHook, ep: Endpoint, params: dict[str, Any], fmt: str) -> Iterator[bytes]:
        return hook.iter_simple_search_text(params["criteria"], format=fmt, page_size=self.page_size)

    def _describe(self, ep: Endpoint, params: Mapping[str, Any]) -> str:
        return str(params["criteria"].describe())


def _uids_of(given: object) -> list[str]:
    """SeriesInstanceUIDs from what a DAG passes: UIDs, rows with a SeriesInstanceUID, or one string of them."""
    if given is None:
        raise TciaBadRequestError("getSeriesMetadata needs series_instance_uids; nothing was sent")
    if isinstance(given, str):
        return [u for u in re.split(r"[\s,]+", given) if u]
    if isinstance(given, Mapping) or not isinstance(given, Iterable):
        raise TciaBadRequestError(
            f"series_instance_uids must be a list of SeriesInstanceUIDs (or of rows with one), not {shown(given)}"
        )
    out = []
    for item in given:
        if isinstance(item, Mapping):
            if "SeriesInstanceUID" not in item:
                raise TciaBadRequestError(f"series_instance_uids: a row without a SeriesInstanceUID: {shown(item)}")
            item = item["SeriesInstanceUID"]
        out.append(item)
    return out


#: Every endpoint's operator, by the endpoint's seed name.
QUERY_OPERATORS: dict[str, type[TciaQueryOperator]] = {
    op.endpoint: op
    for op in (
        TciaGetCollectionValuesOperator,
        TciaGetModalityValuesOperator,
        TciaGetBodyPartValuesOperator,
        TciaGetManufacturerValuesOperator,
        TciaGetPatientOperator,
        TciaPatientsByModalityOperator,
        TciaGetPatientStudyOperator,
        TciaGetSeriesOperator,
        TciaGetSeriesSizeOperator,
        TciaGetSOPInstanceUIDsOperator,
        TciaNewPatientsInCollectionOperator,
        TciaNewStudiesInPatientCollectionOperator,
        TciaGetSharedListOperator,
        TciaGetUpdatedSeriesOperator,
        TciaGetCollectionDescriptionsOperator,
        TciaGetCollectionValuesAndCountsOperator,
        TciaGetModalityValuesAndCountsOperator,
        TciaGetBodyPartValuesAndCountsOperator,
        TciaGetManufacturerValuesAndCountsOperator,
        TciaGetSpeciesValuesAndCountsOperator,
        TciaGetDicomTagsOperator,
        TciaGetMD5HierarchyOperator,
        TciaGetMD5HashForImageOperator,
        TciaGetCollectionOrSeriesForDOIOperator,
        TciaGetSeriesMetadataOperator,
        TciaGetSimpleSearchOperator,
    )
}
