"""The installed distribution registers as an Airflow provider: CLI, hooks, and the connection form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_tcia import __version__

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _airflow_cli(*args: str, tmp_path) -> list[dict]:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [AIRFLOW, *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_listed_by_airflow_providers_list(tmp_path):
    providers = _airflow_cli("providers", "list", tmp_path=tmp_path)
    ours = [p for p in providers if p["package_name"] == "airflow-provider-tcia"]
    assert ours == [
        {
            "package_name": "airflow-provider-tcia",
            "description": "Query and download imaging data from The Cancer Imaging Archive (TCIA)",
            "version": __version__,
        }
    ]


def test_hook_listed_by_airflow_providers_hooks(tmp_path):
    hooks = _airflow_cli("providers", "hooks", tmp_path=tmp_path)
    ours = [h for h in hooks if h.get("connection_type") == "tcia"]
    assert len(ours) == 1
    assert ours[0]["class"] == "airflow_provider_tcia.hooks.tcia.TciaHook"
    assert ours[0]["conn_id_attribute_name"] == "tcia_conn_id"
    assert ours[0]["package_name"] == "airflow-provider-tcia"


@pytest.fixture
def tcia_form():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    return next(m for m in HookMetaService.hook_meta_data() if m.connection_type == "tcia")


def test_connection_form(tcia_form):
    """What the UI's connection form receives (GET /ui/connections/hook_meta)."""
    standard = tcia_form.standard_fields
    assert standard.password.title == "API Key"
    assert standard.login.hidden and standard.port.hidden and standard.url_schema.hidden
    assert not standard.host.hidden

    extra = tcia_form.extra_fields
    assert extra["environment"]["schema"]["enum"] == ["production", "test", "nlst"]
    assert extra["environment"]["value"] == "production"
    assert extra["api"]["schema"]["enum"] == ["legacy", "nbia"]
    assert extra["api"]["value"] == "legacy"
    # Not masked: the name of this extra must not look like a secret to Airflow's masker.
    assert extra["key_location"]["value"] == "header"
    assert set(extra) >= {"api_version", "timeout", "max_retries", "verify"}


def test_provider_info_uses_no_deprecated_hook_form_api(recwarn):
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["tcia"]
    assert hook is not None and hook.hook_class_name == "airflow_provider_tcia.hooks.tcia.TciaHook"
    assert not [w for w in recwarn if "tcia" in str(w.message).lower()]


def test_every_module_imports_without_deprecation_warnings(tmp_path):
    """Airflow 3 APIs only: importing each of our modules (and the example DAGs) warns about nothing."""
    code = (
        "import importlib, pkgutil, runpy, pathlib, sys, airflow_provider_tcia\n"
        "sys.path.insert(0, 'example_dags')  # as Airflow does for the DAGs folder\n"
        "mods = [m.name for m in pkgutil.walk_packages(airflow_provider_tcia.__path__, 'airflow_provider_tcia.')]\n"
        "for name in mods: importlib.import_module(name)\n"
        "dags = sorted(pathlib.Path('example_dags').glob('tcia_*.py'))\n"
        "for path in dags: runpy.run_path(str(path))\n"
        "print(len(mods), len(dags))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-W", "error::PendingDeprecationWarning", "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules, dags = map(int, done.stdout.split())
    assert modules > 30 and dags >= 6
