"""Driving an emulator: publish data, revise a series, reset, read the request log, inject faults, add large series.

Two implementations of one interface, :class:`Control`:

* :class:`LocalControl` — the emulator's own state, used in-process (the pytest fixture) and behind the
  admin endpoints;
* :class:`RemoteControl` — a small HTTP client for the admin endpoints (``/_emulator/…``), for an emulator
  running in another process (``tcia-emulator``, a demo, a deployment test). Standard library only.

Both take and return the same plain, JSON-able values.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from airflow_provider_tcia.emulator.catalog import DATASETS
from airflow_provider_tcia.emulator.dataset import Dataset
from airflow_provider_tcia.emulator.faults import Fault, FaultPlan
from airflow_provider_tcia.emulator.requestlog import RequestLog
from airflow_provider_tcia.emulator.responses import Responder

ADMIN_PREFIX = "/_emulator"


class EmulatorControlError(RuntimeError):
    """A control call was refused (bad arguments) or the emulator could not be reached."""


class Control:
    """What a test or a demo can do to an emulator."""

    def publish(self, collection: str, **options: Any) -> dict[str, Any]:
        """Publish new series (and the patient/study/collection they need), released today unless
        ``released="YYYY-MM-DD"``. Options: ``patient_id``, ``study_instance_uid``, ``series_count``,
        ``modality``, ``body_part``, ``manufacturer``, ``model``, ``image_count``, ``released``,
        ``study_date``, ``description``, ``patient_sex``.

        :return: ``collection``, ``patient_id``, ``study_instance_uid``, ``series_instance_uids``, ``released``.
        """
        raise NotImplementedError

    def revise(self, series_instance_uid: str, **options: Any) -> dict[str, Any]:
        """Publish a revision of an existing series: same SeriesInstanceUID, other pixels in every file, a new
        DateReleased and MaxSubmissionTimestamp (getUpdatedSeries lists it again). Options: ``image_count``
        (new images, or fewer), ``released`` (``YYYY-MM-DD``, default today), ``submitted`` (default
        ``released``).

        :return: ``series_instance_uid``, ``collection``, ``patient_id``, ``study_instance_uid``,
            ``image_count``, ``released``, ``submitted``, ``revision``.
        """
        raise NotImplementedError

    def add_synthetic_series(self, size_bytes: int, **options: Any) -> dict[str, Any]:
        """Add a series of about ``size_bytes``, generated while it streams. Options: ``collection``
        (``SYNTHETIC-LARGE``), ``patient_id``, ``modality``, ``rows``, ``columns`` (512 x 512), ``released``.

        :return: ``collection``, ``patient_id``, ``study_instance_uid``, ``series_instance_uid``,
            ``image_count``, ``total_size``.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the initial dataset; faults and the request log are cleared too."""
        raise NotImplementedError

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The requests received (after entry id ``since``): ``id``, ``time``, ``method``, ``path``,
        ``query`` (pairs), ``headers``, ``status``, ``api``, ``endpoint``, ``fault`` — the API key redacted."""
        raise NotImplementedError

    def clear_requests(self) -> None:
        raise NotImplementedError

    def inject_fault(self, endpoint: str = "*", kind: str = "server_error", count: int = 1, **options: Any) -> dict:
        """Make the next ``count`` requests to ``endpoint`` (seed or NBIA name, or ``*``) fail as ``kind``
        (see :mod:`airflow_provider_tcia.emulator.faults`). Options: ``status``, ``retry_after``, ``seconds``,
        ``after_bytes``, ``api``.

        :return: the fault, with its ``id``.
        """
        raise NotImplementedError

    def faults(self) -> list[dict[str, Any]]:
        """The faults still pending."""
        raise NotImplementedError

    def clear_faults(self) -> None:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """``dataset``, ``api_key_required``, ``collections``."""
        raise NotImplementedError

    def set_api_key(self, api_key: str | None) -> None:
        """From now on require ``api_key`` on the seed API (``None``: accept every request)."""
        raise NotImplementedError


class LocalControl(Control):
    """The state of one emulator: its data, responder, faults and request log.

    :param dataset: ``default``, ``test`` or ``scaled``.
    :param api_key: the key the seed API requires (none: every request is accepted).
    """

    def __init__(self, dataset: str = "default", api_key: str | None = None) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r} is not one of {', '.join(DATASETS)}")
        self.dataset_name = dataset
        self.data = Dataset(DATASETS[dataset])
        self.responder = Responder(self.data, api_key)
        self.fault_plan = FaultPlan()
        self.log = RequestLog()

    def publish(self, collection: str, **options: Any) -> dict[str, Any]:
        return self.data.publish(collection, **options)

    def revise(self, series_instance_uid: str, **options: Any) -> dict[str, Any]:
        return self.data.revise(series_instance_uid, **options)

    def add_synthetic_series(self, size_bytes: int, **options: Any) -> dict[str, Any]:
        series = self.data.add_synthetic_series(int(size_bytes), **options)
        return {
            "collection": series.collection,
            "patient_id": series.patient_id,
            "study_instance_uid": series.study_instance_uid,
            "series_instance_uid": series.series_instance_uid,
            "image_count": series.image_count,
            "total_size": self.data.series_size(series),
        }

    def reset(self) -> None:
        self.data.reset()
        self.fault_plan.clear()
        self.log.clear()

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self.log.entries(since)

    def clear_requests(self) -> None:
        self.log.clear()

    def inject_fault(self, endpoint: str = "*", kind: str = "server_error", count: int = 1, **options: Any) -> dict:
        fault = Fault.from_dict({"endpoint": endpoint, "kind": kind, "count": count, **options})
        return self.fault_plan.add(fault).to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return self.fault_plan.list()

    def clear_faults(self) -> None:
        self.fault_plan.clear()

    def info(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_name,
            "api_key_required": self.responder.api_key is not None,
            "collections": self.data.collection_names(),
        }

    def set_api_key(self, api_key: str | None) -> None:
        self.responder.api_key = api_key or None


class RemoteControl(Control):
    """Drives an emulator over its admin endpoints.

    :param base_url: the emulator's root, e.g. ``http://127.0.0.1:8780``.
    :param timeout: seconds per call.
    """

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{ADMIN_PREFIX}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            raise EmulatorControlError(f"{method} {path} answered {err.code}: {detail}") from None
        except OSError as err:
            raise EmulatorControlError(f"cannot reach the emulator at {self.base_url}: {err}") from err
        return json.loads(payload) if payload else None

    def publish(self, collection: str, **options: Any) -> dict[str, Any]:
        return self._call("POST", "/publish", {"collection": collection, **options})

    def revise(self, series_instance_uid: str, **options: Any) -> dict[str, Any]:
        return self._call("POST", "/revise", {"series_instance_uid": series_instance_uid, **options})

    def add_synthetic_series(self, size_bytes: int, **options: Any) -> dict[str, Any]:
        return self._call("POST", "/series", {"size_bytes": size_bytes, **options})

    def reset(self) -> None:
        self._call("POST", "/reset", {})

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/requests?since={int(since)}")

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def inject_fault(self, endpoint: str = "*", kind: str = "server_error", count: int = 1, **options: Any) -> dict:
        return self._call("POST", "/faults", {"endpoint": endpoint, "kind": kind, "count": count, **options})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def info(self) -> dict[str, Any]:
        return self._call("GET", "")

    def set_api_key(self, api_key: str | None) -> None:
        self._call("PUT", "/api_key", {"api_key": api_key})
