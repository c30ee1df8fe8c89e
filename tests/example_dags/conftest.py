"""The marker that says which example DAGs a test runs (``test_example_dags.py`` checks every one has a test)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "example_dag(*dag_ids): the example DAGs this test runs with dag.test()")
