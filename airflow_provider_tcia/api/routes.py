"""Reverse routing: from a request path to the endpoint and API generation that serve it.

Built from the same table and the same :meth:`ApiGeneration.path` the hook uses to build its URLs, so a
server that routes with :func:`resolve_path` answers exactly the paths a client built with this package asks
for (and 404s the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_tcia.api.endpoints import ENDPOINTS, Endpoint
from airflow_provider_tcia.api.generations import ApiGeneration, LegacyApi, NbiaApi


@dataclass(frozen=True)
class Route:
    """What a path addresses."""

    generation: ApiGeneration
    endpoint: Endpoint
    metadata: bool = False
    """Whether the path is the endpoint's ``/metadata`` document (seed API only)."""


def _build() -> dict[str, Route]:
    routes: dict[str, Route] = {}
    generations: list[ApiGeneration] = [LegacyApi(v) for v in LegacyApi.versions]
    # v1 first: an endpoint that v4 lacks (getContentsByName) maps to v1's path and belongs to v1.
    generations += [NbiaApi("v1"), NbiaApi("v4")]
    for generation in generations:
        for endpoint in ENDPOINTS.values():
            if not generation.serves(endpoint):
                continue  # (an NBIA-only endpoint: the seed's server 404s it)
            path = generation.path(endpoint)
            # (a v4-only endpoint asked on a v1 connection goes to v4, and v4 answers it)
            serving = NbiaApi(generation.endpoint_version(endpoint)) if isinstance(generation, NbiaApi) else generation
            routes.setdefault(path, Route(serving, endpoint))
            meta = generation.metadata_path(endpoint)
            if meta:
                routes.setdefault(meta, Route(generation, endpoint, metadata=True))
    return routes


#: Every path of both generations, by path.
ROUTES: dict[str, Route] = _build()


def resolve_path(path: str) -> Route | None:
    """The route of ``path`` (without query string), or ``None`` when no generation serves it."""
    return ROUTES.get(path.rstrip("/") if path != "/" else path)
