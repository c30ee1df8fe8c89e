"""Shared helpers for the emulator's tests: known identifiers and a read-only emulator per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from airflow_provider_tcia.emulator import Emulator

GBM_SERIES = "1.3.6.1.4.1.14519.5.2.1.7695.4001.306204232344341694648035234440"
GBM_STUDY = "1.3.6.1.4.1.14519.5.2.1.7695.4001.130563880911723253267280582465"
GBM_SOP = "1.3.6.1.4.1.14519.5.2.1.7695.4001.254637948180506182312529390348"
BRCA_SERIES = "1.3.6.1.4.1.14519.5.2.1.3344.4002.142000486987125226950494153345"
BRCA_STUDY = "1.3.6.1.4.1.14519.5.2.1.3344.4002.307747749278929226311301198628"
BRCA_150_SERIES = "1.3.6.1.4.1.14519.5.2.1.3344.4002.298037359751562809791703106256"
BRCA_150_SOP = "1.3.6.1.4.1.14519.5.2.1.3344.4002.113224119964450170072494597907"
LIDC_DX = "1.3.6.1.4.1.14519.5.2.1.6279.6001.141365756818074696859567662357"
LUNG4D_SERIES = "1.3.6.1.4.1.14519.5.2.1.6834.5010.322628904903035357840500590726"
VICTRE_SERIES = "1.3.6.1.4.1.14519.5.2.1.2135.6389.861085683843003228352649673146"

LEGACY = "/services/v2/TCIA/query"
NBIA_V4 = "/nbia-api/services/v4"
NBIA_V1 = "/nbia-api/services/v1"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """A default-dataset emulator for tests that only read."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def get(http: requests.Session, emu: Emulator, path: str, **params: object) -> requests.Response:
    return http.get(emu.url + path, params=params, timeout=30)
