"""Test-wide setup: a private AIRFLOW_HOME (sqlite) and the example DAGs as the DAGs folder.

Set before Airflow is imported, so every test process — and several running side by side — gets its own
metadata database.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_home = tempfile.mkdtemp(prefix="tcia-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# No connection to real TCIA from tests: a test that forgets to point the hook at the emulator fails fast.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
