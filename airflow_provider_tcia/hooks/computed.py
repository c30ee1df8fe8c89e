"""Answers of NBIA-only endpoints computed from the seed API's endpoints, for a connection on the legacy API.

Only where the answer can be computed honestly: the endpoint table's ``legacy_from`` names the seed endpoints
each one is computed from (the docs say which), and every other NBIA-only endpoint is refused on a legacy
connection before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_tcia.api.endpoints import Endpoint

if TYPE_CHECKING:
    from airflow_provider_tcia.hooks.tcia import TciaHook

Rows = Iterator[dict[str, Any]]

#: How each computed endpoint's rows are made, by the endpoint's name.
COMPUTED: dict[str, Callable[[TciaHook, dict[str, Any]], Rows]] = {}


def legacy_rows(hook: TciaHook, endpoint: Endpoint, params: dict[str, Any]) -> Rows:
    """The rows of ``endpoint`` computed through ``hook`` (on the legacy API) from the seed's endpoints."""
    try:
        compute = COMPUTED[endpoint.name]
    except KeyError:
        raise AssertionError(f"{endpoint.name} names legacy_from but hooks/computed.py cannot compute it") from None
    return compute(hook, params)
