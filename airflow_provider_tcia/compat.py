"""Every difference between the Airflow versions the provider supports (2.11, 3.0 to 3.3), in one place.

Most names come from ``apache-airflow-providers-common-compat`` — Airflow's own compatibility layer for
providers — which resolves each to its newest location (``airflow.sdk`` on Airflow 3, the old module on
2.11, where assets are still called datasets). This module adds only what that layer does not cover:

* :func:`amask_secret` — ``airflow.sdk.log.amask_secret`` arrived in 3.3; before it the sync
  ``mask_secret`` runs in a worker thread, so a trigger never blocks its event loop on the supervisor;
* :func:`asset` and :func:`triggering_asset_events` — assets are datasets on 2.11, without names, and the
  events that triggered a run are keyed by URI there;
* :data:`AssetWatcher` — event-driven scheduling exists from Airflow 3.0; on 2.11 using it fails at once
  with a message that says so;
* :func:`asset_state_store` — the asset state store a watcher keeps its progress in exists from 3.3;
* :func:`rescheduled_in_this_try` — Airflow 3 tells a task how often its try was rescheduled; 2.11 does not;
* :class:`Logger` — what the provider logs through: a task's ``self.log`` is a :class:`logging.Logger` on
  2.11 and Airflow's own (structlog) logger on 3, so code that takes either is typed with this protocol.

(The connection form needs no switch: the provider info carries the declarative fields Airflow 3.2+ reads,
and the hook the widgets older versions build the form from.)

Everything else in the provider imports Airflow's authoring API from here, never from a versioned path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.common.compat.connection import get_async_connection
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    ObjectStoragePath,
    PokeReturnValue,
    conf,
    mask_secret,
)
from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent
from packaging.version import Version

from airflow_provider_tcia.exceptions import TciaFeatureUnavailableError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context as Context

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "AssetWatcher",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Logger",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TriggerEvent",
    "amask_secret",
    "asset",
    "asset_state_store",
    "conf",
    "get_async_connection",
    "mask_secret",
    "require_event_scheduling",
    "rescheduled_in_this_try",
    "triggering_asset_events",
]


class Logger(Protocol):
    """A :class:`logging.Logger` or a task's ``self.log`` (Airflow 3's logger names its first argument
    ``event``, hence positional-only)."""

    def debug(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def info(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...
    def exception(self, msg: str, /, *args: Any, **kwargs: Any) -> Any: ...


def _airflow_version() -> tuple[int, int, int]:
    from airflow import __version__

    version = Version(__version__)
    return version.major, version.minor, version.micro


# As common-compat's version_compat, which asks providers to keep their own copy rather than import it.
AIRFLOW_VERSION = _airflow_version()
AIRFLOW_V_3_0_PLUS = AIRFLOW_VERSION >= (3, 0, 0)
AIRFLOW_V_3_3_PLUS = AIRFLOW_VERSION >= (3, 3, 0)

#: Each event trigger, and the deferrable sensor a scheduled DAG uses instead on Airflow 2.11.
SENSOR_FOR_TRIGGER = {
    "TciaNewStudiesEventTrigger": ("new studies", "TciaNewStudiesSensor"),
    "TciaUpdatedSeriesEventTrigger": ("new or revised series", "TciaUpdatedSeriesSensor"),
}


def event_scheduling_needs(trigger: str | None = None) -> str:
    """Why an asset watcher cannot run here, and what to use instead (for ``trigger``, or for each trigger)."""
    named = [trigger] if trigger in SENSOR_FOR_TRIGGER else list(SENSOR_FOR_TRIGGER)
    instead = " or ".join(f"for {SENSOR_FOR_TRIGGER[t][0]} with {SENSOR_FOR_TRIGGER[t][1]}" for t in named)
    return (
        f"event-driven scheduling (AssetWatcher with {' or '.join(named)}) needs Airflow 3.0 or later; "
        f"on Airflow 2.11 wait {instead} (deferrable) in a scheduled DAG instead"
    )


def require_event_scheduling(what: str) -> None:
    """Raise :class:`TciaFeatureUnavailableError` naming ``what`` where Airflow has no asset watchers."""
    if not AIRFLOW_V_3_0_PLUS:
        raise TciaFeatureUnavailableError(f"{what}: {event_scheduling_needs(what)}")


if TYPE_CHECKING or AIRFLOW_V_3_0_PLUS:  # (type checkers see Airflow 3's; make lint runs on the newest)
    from airflow.sdk import AssetWatcher
else:

    def AssetWatcher(*args: Any, **kwargs: Any) -> Any:
        """Airflow 2.11 has no asset watchers: fail where the DAG is defined, saying what to use instead."""
        require_event_scheduling("AssetWatcher")


def asset(name: str, uri: str, **kwargs: Any) -> Any:
    """``Asset(name=name, uri=uri, **kwargs)`` on Airflow 3; on 2.11 the ``Dataset`` at ``uri`` (datasets have
    no name: the URI alone identifies them)."""
    if AIRFLOW_V_3_0_PLUS:
        return Asset(name=name, uri=uri, **kwargs)
    if kwargs.get("watchers"):
        require_event_scheduling(f"asset {name!r} with watchers")
    return Asset(uri, extra=kwargs.get("extra"))


def triggering_asset_events(context: Mapping[str, Any], asset: Any) -> list[Any]:
    """The events of ``asset`` that triggered this run (none for a manual run), each with its ``extra``.

    Airflow 3 keys ``triggering_asset_events`` by asset; Airflow 2.11 keys ``triggering_dataset_events`` by URI.
    """
    if AIRFLOW_V_3_0_PLUS:
        events = context.get("triggering_asset_events")
        return list(events[asset]) if events else []
    events = context.get("triggering_dataset_events") or {}
    return list(events.get(asset.uri, []))


async def amask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's masker without blocking the event loop."""
    try:
        from airflow.sdk.log import amask_secret as _amask_secret  # Airflow 3.3+
    except ImportError:
        # Before 3.3 only the sync call exists, and from a trigger it talks to the triggerer's supervisor. Run
        # it in asgiref's worker thread, not a plain one: there the triggerer's sync-to-async bridge finds the
        # trigger loop again (from a plain thread it would start a second loop, which Airflow 3.0's triggerer
        # does not survive).
        from asgiref.sync import sync_to_async

        await sync_to_async(mask_secret)(secret)
    else:
        await _amask_secret(secret)


def asset_state_store(trigger: Any) -> Any:
    """The asset state store the triggerer gave this watcher (Airflow 3.3+), or ``None``."""
    store = getattr(trigger, "asset_state_store", None)
    if store is None or not hasattr(store, "aget"):
        return None
    return store


def rescheduled_in_this_try(context: Mapping[str, Any]) -> bool:
    """Whether a sensor in ``mode="reschedule"`` already poked in this try (each poke is a new ``execute()``).

    Airflow 3 puts the try's reschedule count in the context (``task_reschedule_count``); Airflow 2.11 does
    not tell a task, so there every poke looks like the first.
    """
    return bool(context.get("task_reschedule_count"))
