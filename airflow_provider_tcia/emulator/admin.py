"""The admin endpoints under ``/_emulator`` (a prefix no TCIA path can start with).

==========================  =====================================================================
``GET /_emulator``          ``{"dataset", "api_key_required", "collections"}``
``POST /_emulator/reset``   back to the initial dataset; faults and request log cleared
``POST /_emulator/publish`` JSON: ``collection`` + options of :meth:`Control.publish`; 201 + result
``POST /_emulator/revise``  JSON: ``series_instance_uid`` + options of :meth:`Control.revise`; 201 + result
``POST /_emulator/series``  JSON: ``size_bytes`` + options; 201 + the synthetic series
``GET /_emulator/requests`` the request log (``?since=<id>``); ``DELETE`` clears it
``POST /_emulator/faults``  JSON: ``endpoint``, ``kind``, ``count`` + options; 201 + the fault
``GET /_emulator/faults``   pending faults; ``DELETE`` clears them
``PUT /_emulator/api_key``  JSON: ``{"api_key": "..."}`` (or ``null``): the key the seed API requires
==========================  =====================================================================

Mistakes answer 400 with ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from airflow_provider_tcia.emulator.control import ADMIN_PREFIX, LocalControl
from airflow_provider_tcia.emulator.messages import Response, as_json


def handle_admin(
    control: LocalControl, method: str, path: str, query: Sequence[tuple[str, str]], body: bytes
) -> Response:
    sub = path[len(ADMIN_PREFIX) :].rstrip("/")
    try:
        payload = json.loads(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        key = (method, sub)
        if key in (("GET", ""), ("GET", "/info")):
            return as_json(200, control.info())
        if key == ("POST", "/reset"):
            control.reset()
            return as_json(200, {"reset": True})
        if key == ("POST", "/publish"):
            if "collection" not in payload:
                raise ValueError("publish needs a collection")
            return as_json(201, control.publish(payload.pop("collection"), **payload))
        if key == ("POST", "/revise"):
            if "series_instance_uid" not in payload:
                raise ValueError("revise needs a series_instance_uid")
            return as_json(201, control.revise(payload.pop("series_instance_uid"), **payload))
        if key == ("POST", "/series"):
            if "size_bytes" not in payload:
                raise ValueError("a synthetic series needs size_bytes")
            return as_json(201, control.add_synthetic_series(payload.pop("size_bytes"), **payload))
        if key == ("GET", "/requests"):
            since = next((int(v) for k, v in query if k == "since"), 0)
            return as_json(200, control.requests(since))
        if key == ("DELETE", "/requests"):
            control.clear_requests()
            return as_json(200, {"cleared": True})
        if key == ("POST", "/faults"):
            return as_json(201, control.inject_fault(**payload))
        if key == ("PUT", "/api_key"):
            value = payload.get("api_key")
            if value is not None and not isinstance(value, str):
                raise ValueError("api_key must be a string or null")
            control.set_api_key(value)
            return as_json(200, {"api_key_required": bool(value)})
        if key == ("GET", "/faults"):
            return as_json(200, control.faults())
        if key == ("DELETE", "/faults"):
            control.clear_faults()
            return as_json(200, {"cleared": True})
    except (ValueError, TypeError) as err:
        return as_json(400, {"error": str(err)})
    return as_json(404, {"error": f"no admin endpoint {method} {path}"})
