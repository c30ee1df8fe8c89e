"""What the tests need that differs between the supported Airflow versions (2.11, 3.0 to 3.3).

The provider's own differences live in :mod:`airflow_provider_tcia.compat`; these are the test-only ones:
Airflow's internals that tests read (XCom rows, asset events, the executor safeguard, the UI's form data).
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow_provider_tcia.compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_3_PLUS, AIRFLOW_VERSION

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowRescheduleException",
    "ExecutorSafeguard",
    "TaskDeferred",
    "asset_event_extras",
    "connection_form",
    "scheduled_on",
    "triggering_events_context",
    "xcom_rows",
]


def _first(name: str, *modules: str) -> Any:
    for module in modules:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    raise ImportError(f"{name} is in none of {modules}")


ExecutorSafeguard = _first("ExecutorSafeguard", "airflow.sdk.bases.operator", "airflow.models.baseoperator")
AirflowRescheduleException = _first("AirflowRescheduleException", "airflow.sdk.exceptions", "airflow.exceptions")
TaskDeferred = _first("TaskDeferred", "airflow.sdk.exceptions", "airflow.exceptions")


def xcom_rows(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """Every return value of a run, by (task_id, map_index), deserialised."""
    from airflow.utils.session import create_session

    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel as XCom
    else:
        from airflow.models.xcom import XCom
    with create_session() as session:
        rows = session.query(XCom).filter(XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.key == "return_value")
        # Deserialised when loaded on both (2.11's XCom does it in init_on_load).
        return {(x.task_id, x.map_index): x.value for x in rows}


def asset_event_extras(
    *, name: str | None = None, uri: str | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    """The ``extra`` of every event of an asset (by name on Airflow 3, by URI on 2.11's datasets), oldest first;
    only those a run with ``run_id`` produced, if given."""
    from airflow.utils.session import create_session

    with create_session() as session:
        if AIRFLOW_V_3_0_PLUS:
            from airflow.models.asset import AssetEvent, AssetModel

            query = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            query = query.filter(AssetModel.name == name) if name else query.filter(AssetModel.uri == uri)
            if run_id:
                query = query.filter(AssetEvent.source_run_id == run_id)
            return [e.extra for e in query.order_by(AssetEvent.id)]
        from airflow.models.dataset import DatasetEvent, DatasetModel

        if uri is None:
            raise ValueError("Airflow 2.11's datasets have no name: give the URI")
        query = session.query(DatasetEvent).join(DatasetModel, DatasetEvent.dataset_id == DatasetModel.id)
        query = query.filter(DatasetModel.uri == uri)
        if run_id:
            query = query.filter(DatasetEvent.source_run_id == run_id)
        return [e.extra for e in query.order_by(DatasetEvent.id)]


def scheduled_on(dag: Any) -> list[Any]:
    """The assets (datasets on 2.11) a DAG is scheduled on."""
    timetable = dag.timetable
    condition = timetable.asset_condition if AIRFLOW_V_3_0_PLUS else timetable.dataset_condition
    return list(condition.objects)


class _ByAsset(dict):
    """A mapping keyed by assets, which are not hashable on Airflow 3.0: by their name and URI."""

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        super().__init__({(a.name, a.uri): v for a, v in items})

    def __getitem__(self, asset: Any) -> Any:
        return super().__getitem__((asset.name, asset.uri))


def triggering_events_context(asset: Any, events: list[Any]) -> dict[str, Any]:
    """The part of a task's context that says which asset events triggered its run."""
    if AIRFLOW_V_3_0_PLUS:
        return {"triggering_asset_events": _ByAsset([(asset, events)])}
    return {"triggering_dataset_events": {asset.uri: events}}


def _base_type(schema_type: Any) -> str | None:
    """``"string"`` for ``"string"`` or ``["string", "null"]`` (optional fields, and every field on 3.0/3.1)."""
    if isinstance(schema_type, list):
        return next((t for t in schema_type if t != "null"), None)
    return schema_type


def connection_form(conn_type: str) -> dict[str, Any]:
    """What Airflow's UI shows for a connection type's form, on each version in one shape::

        {"standard": {"password": {"hidden": False, "title": "API Key"}, ...},
         "extra": {"environment": {"label": ..., "type": "string", "enum": [...], "default": ...}, ...}}

    Airflow 3 answers ``GET /ui/connections/hook_meta`` from ``HookMetaService`` (declarative fields on 3.2+,
    the hook's wtforms widgets on 3.0/3.1); Airflow 2.11's Flask UI renders the widgets and the field
    behaviour the providers manager collected.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

        meta = next(m for m in HookMetaService.hook_meta_data() if m.connection_type == conn_type)
        standard = {}
        for field in ("description", "url_schema", "host", "port", "login", "password"):
            behaviour = getattr(meta.standard_fields, field, None) if meta.standard_fields else None
            standard["schema" if field == "url_schema" else field] = {
                "hidden": bool(behaviour and behaviour.hidden),
                "title": behaviour.title if behaviour else None,
                "placeholder": behaviour.placeholder if behaviour else None,
            }
        extra = {}
        for name, field in (meta.extra_fields or {}).items():
            schema = field["schema"]
            extra[name] = {
                "label": schema.get("title"),
                "type": _base_type(schema.get("type")),
                "enum": schema.get("enum"),
                "default": field.get("value"),
            }
        return {"standard": standard, "extra": extra}

    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours.get(conn_type, {})
    standard = {
        field: {
            "hidden": field in behaviour.get("hidden_fields", []),
            "title": behaviour.get("relabeling", {}).get(field),
            "placeholder": behaviour.get("placeholders", {}).get(field),
        }
        for field in ("description", "schema", "host", "port", "login", "password")
    }
    extra = {}
    prefix = f"extra__{conn_type}__"
    for key, widget in manager.connection_form_widgets.items():
        if not key.startswith(prefix):
            continue
        field = widget.field
        kwargs = field.kwargs
        enum = next((list(v.values) for v in kwargs.get("validators", []) if hasattr(v, "values")), None)
        field_type = {"BooleanField": "boolean", "IntegerField": "integer"}.get(field.field_class.__name__, "string")
        extra[widget.field_name] = {
            "label": str(field.args[0]) if field.args else kwargs.get("label"),
            "type": field_type,
            "enum": enum,
            "default": kwargs.get("default"),
        }
    return {"standard": standard, "extra": extra}
