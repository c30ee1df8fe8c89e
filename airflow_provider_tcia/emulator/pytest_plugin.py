"""pytest plugin (entry point ``pytest11``): fixtures that run the TCIA emulator on a free port.

* ``tcia_emulator`` — a fresh emulator for one test. Options with a marker:
  ``@pytest.mark.tcia_emulator(api_key="secret", dataset="test")``.
* ``tcia_emulator_session`` — one emulator for the whole session (reset it yourself if you change it).
* ``tcia_emulator_factory`` — start more emulators with any options: ``tcia_emulator_factory(api_key="k")``.

Each yields an :class:`~airflow_provider_tcia.emulator.Emulator`: ``.url``, the control methods
(``publish``, ``reset``, ``requests``, ``inject_fault``, ``add_synthetic_series`` …) and
``.connection_uri(api=...)`` / ``.connection_json(api=...)`` for an Airflow connection.

Imports are deferred so that merely having the plugin installed costs pytest nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_tcia.emulator.app import Emulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tcia_emulator(api_key=None, dataset='default'): options of the tcia_emulator fixture",
    )


@pytest.fixture
def tcia_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A TCIA emulator started on a free loopback port for this test, stopped after it."""
    from airflow_provider_tcia.emulator.app import Emulator

    marker = request.node.get_closest_marker("tcia_emulator")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    with Emulator(**options) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def tcia_emulator_session() -> Iterator[Emulator]:
    """One TCIA emulator (default dataset, no key) shared by the whole session."""
    from airflow_provider_tcia.emulator.app import Emulator

    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def tcia_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with any options (``api_key``, ``dataset``); all are stopped after the test."""
    from airflow_provider_tcia.emulator.app import Emulator

    started: list[Emulator] = []

    def start(**options: Any) -> Emulator:
        emulator = Emulator(**options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
