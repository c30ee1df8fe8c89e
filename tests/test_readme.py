"""Every Python snippet in the README runs on its own: no name it uses is defined elsewhere.

Each block is executed in a fresh namespace; the hook's snippet talks to the bundled emulator (its
identifiers are real TCIA ones the emulator serves). Snippets that import ``airflow.sdk`` are Airflow 3 code
and run on Airflow 3 only.
"""

from __future__ import annotations

import re

import pytest

from tests.airflow_compat import AIRFLOW_V_3_0_PLUS
from tests.conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_snippets():
    assert len(BLOCKS) >= 4


@pytest.mark.integration
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs_on_its_own(index, tcia_emulator, use_emulator, run_operator):
    code = BLOCKS[index]
    if "from airflow.sdk" in code and not AIRFLOW_V_3_0_PLUS:
        pytest.skip("an Airflow 3 snippet (airflow.sdk)")
    use_emulator(tcia_emulator, "legacy")
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": f"readme_{index}"})
