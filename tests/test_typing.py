"""The provider is typed for its users: a type checker run on a user's DAG file flags a misspelt parameter.

mypy checks a small file that uses the hook and an operator, as a user's would. Airflow itself is skipped
(``follow_imports = skip``: its classes are ``Any`` here), which keeps the run to a few seconds; the
provider's own classes and methods are read in full.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import airflow_provider_tcia

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra")

PACKAGE = Path(airflow_provider_tcia.__file__).parent

CONFIG = """\
[mypy]
python_version = 3.11
follow_imports = silent
cache_dir = {cache}
show_error_codes = true

[mypy-airflow.*]
follow_imports = skip
"""

USER_FILE = """\
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.operators import TciaGetSeriesOperator

hook = TciaHook()
rows = hook.get_series({call})
first: dict = rows[0]
hook.patients_by_modality("TCGA-GBM", modality="MR")
text: str | list = hook.get_series_size("1.2.3", format="csv")
op = TciaGetSeriesOperator(task_id="series", {operator})
"""


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    """Run mypy on a user file with these arguments to ``get_series`` and the operator; its report."""
    root = tmp_path_factory.mktemp("typing")
    config = root / "mypy.ini"
    config.write_text(CONFIG.format(cache=root / "cache"))

    def run(call: str, operator: str = 'collection="TCGA-GBM"') -> str:
        user = root / "user_dag.py"
        user.write_text(USER_FILE.format(call=call, operator=operator))
        stdout, stderr, _ = mypy_api.run(["--config-file", str(config), str(user)])
        return stdout + stderr

    return run


def test_the_package_ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()


def test_a_correct_call_is_clean(check):
    report = check('collection="TCGA-GBM", modality="MR"')
    assert "Success: no issues found" in report, report


def test_a_misspelt_hook_parameter_is_flagged(check):
    report = check('colection="TCGA-GBM"')
    assert 'Unexpected keyword argument "colection"' in report, report
    assert 'did you mean "collection"' in report, report
    assert "user_dag.py:5:" in report, report


def test_a_wrong_type_for_an_operator_parameter_is_flagged(check):
    report = check('collection="TCGA-GBM"', operator="collection=1")
    assert 'Argument "collection" to "TciaGetSeriesOperator" has incompatible type "int"' in report, report
