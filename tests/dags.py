"""Helpers for tests that run example DAGs or operators: load a DAG file, read a run's states and XComs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_dag(name: str):
    """The ``dag`` object of ``example_dags/<name>.py`` (imported fresh, as Airflow's DAG processor would)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "example_dags" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def xcoms(dag_run) -> dict[tuple[str, int], object]:
    """Every return value of a run, by (task_id, map_index)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.key == "return_value"
        )
        return {(x.task_id, x.map_index): x.value for x in rows}


def states(dag_run) -> dict[tuple[str, int], str]:
    """Every task instance's state, by (task_id, map_index)."""
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
