"""The one loader and runner of the example DAGs, and what tests read of a run: its states and XComs.

Every example DAG is run from ``tests/example_dags/`` (``test_example_dags.py`` checks that each has a test
there): :func:`load_example` imports its file, :func:`run_example` runs a DAG with ``dag.test()`` and asserts
the state the run ended in — ``dag.test()`` itself does not raise when a task fails.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.airflow_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_VERSION

ROOT = Path(__file__).resolve().parents[1]


EXAMPLE_DAGS = ROOT / "example_dags"


def example_files() -> list[Path]:
    """Every DAG file of ``example_dags/`` (not its helper modules, listed in its ``.airflowignore``)."""
    ignore = EXAMPLE_DAGS / ".airflowignore"
    helpers = {line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")}
    return sorted(p for p in EXAMPLE_DAGS.glob("*.py") if p.name not in helpers)


def load_example(name: str):
    """``example_dags/<name>.py`` imported fresh, as Airflow's DAG processor would: the DAGs folder on
    ``sys.path`` and a fresh copy of the shared helper module (which reads its settings from the environment
    when imported). A helper module (``tcia_flagship_lib``) loads the same way.

    On Airflow 2.11 and 3.0 its DAGs are also written to the metadata database, as the DAG processor would,
    where ``dag.test()`` needs it and does not do it (see :func:`_register`).
    """
    if str(EXAMPLE_DAGS) not in sys.path:
        sys.path.append(str(EXAMPLE_DAGS))
    sys.modules.pop("tcia_flagship_lib", None)
    spec = importlib.util.spec_from_file_location(name, EXAMPLE_DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _register(module)
    return module


def _register(module) -> None:
    """Write a DAG file's DAGs to the metadata database where ``dag.test()`` needs it and does not do it:
    on Airflow 2.11 (dataset events are recorded only for datasets found there) and 3.0 (a task whose outlet
    asset is not active there fails)."""
    dags = dags_of(module)
    if AIRFLOW_VERSION >= (3, 1, 0) or not dags:
        return
    from airflow.models.dag import DAG as SchedulerDAG

    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.serialization.serialized_objects import SerializedDAG

        DagBundlesManager().sync_bundles_to_db()
        # As dag.test() does: the scheduler's view of each DAG.
        dags = [SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(d)) for d in dags]
        SchedulerDAG.bulk_write_to_db("dags-folder", None, dags)
    else:
        SchedulerDAG.bulk_write_to_db(dags)


def dags_of(module) -> list:
    """The DAGs a loaded example file defines."""
    from airflow.providers.common.compat.sdk import DAG  # as the example DAGs import it

    return [v for v in vars(module).values() if isinstance(v, DAG)]


def run_example(dag, *, expect: str = "success", **test_kwargs):
    """``dag.test(**test_kwargs)``, asserting the run ended ``expect`` (the task states are in the message)."""
    run = dag.test(**test_kwargs)
    assert run.state == expect, f"{dag.dag_id} ended {run.state}, not {expect}: {states(run)}"
    return run


def xcoms(dag_run) -> dict[tuple[str, int], object]:
    """Every return value of a run, by (task_id, map_index)."""
    from tests.airflow_compat import xcom_rows

    return xcom_rows(dag_run.dag_id, dag_run.run_id)


def states(dag_run) -> dict[tuple[str, int], str]:
    """Every task instance's state, by (task_id, map_index)."""
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def files_under(root: Path) -> list[str]:
    """Every file below ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
