"""TCIA's APIs as data: the endpoint table, the two API generations, formats, dates and retry decisions.

Shared by the hook (sync and async) and the bundled emulator.
"""

from airflow_provider_tcia.api.endpoints import (
    ENDPOINTS,
    FORMATS,
    QUERY_ENDPOINTS,
    Endpoint,
    Param,
    get_endpoint,
)
from airflow_provider_tcia.api.generations import (
    ApiGeneration,
    ApiRequest,
    LegacyApi,
    NbiaApi,
    get_generation,
)
from airflow_provider_tcia.api.simple_search import SimpleSearch

__all__ = [
    "ENDPOINTS",
    "FORMATS",
    "QUERY_ENDPOINTS",
    "ApiGeneration",
    "ApiRequest",
    "Endpoint",
    "LegacyApi",
    "NbiaApi",
    "Param",
    "SimpleSearch",
    "get_endpoint",
    "get_generation",
]
