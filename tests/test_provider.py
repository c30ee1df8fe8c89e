"""The installed distribution registers as an Airflow provider: CLI, hooks, and the connection form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_tcia import __version__
from airflow_provider_tcia.hooks.connection_form import EXTRA_FIELDS
from tests.airflow_compat import AIRFLOW_V_3_0_PLUS, connection_form

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _airflow_cli(*args: str, tmp_path) -> list[dict]:
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [AIRFLOW, *args, "-o", "json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Airflow 3.0 prints log lines before the JSON: take it from where its line starts.
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("[{", "[]")) or line == "[")
    return json.loads("\n".join(lines[start:]))


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
    return connection_form("tcia")


def test_connection_form(tcia_form):
    """What the UI's connection form shows, on every supported Airflow (declarative fields on 3.2+, the
    hook's widgets before): labelled fields, dropdowns with their choices and defaults."""
    standard = tcia_form["standard"]
    assert standard["password"]["title"] == "API Key"
    assert standard["host"]["title"] == "Server root (optional)"
    assert standard["port"]["title"] == "Port"
    assert standard["login"]["hidden"] and standard["schema"]["hidden"]
    # The port is shown: Airflow 3.3.1 and 3.3.2's Test button needs a stored port (tests/deployment/test_connection_ui.py).
    assert not standard["host"]["hidden"] and not standard["password"]["hidden"] and not standard["port"]["hidden"]

    extra = tcia_form["extra"]
    assert extra["environment"] == {
        "label": "Environment",
        "type": "string",
        "enum": ["production", "test", "nlst"],
        "default": "production",
    }
    assert extra["api"]["enum"] == ["legacy", "nbia"] and extra["api"]["default"] == "legacy"
    # Not masked: the name of this extra must not look like a secret to Airflow's masker.
    assert extra["key_location"]["default"] == "header"
    # Every extra the hook reads is on the form, with its label; no dropdown offers a null choice.
    assert set(extra) == {f.name for f in EXTRA_FIELDS}
    assert all(field["label"] for field in extra.values())
    assert all(None not in (field["enum"] or []) for field in extra.values())
    assert extra["max_retries"]["type"] == "integer" and extra["verify"]["type"] == "boolean"
    assert str(extra["max_retries"]["default"]) == "5"


def test_connection_form_fields_match_the_configuration():
    """The form's choices and defaults are those TciaConfig applies to an empty connection."""
    from airflow_provider_tcia.hooks.config import TciaConfig

    config = TciaConfig.from_connection_fields(host=None, extra={})
    fields = {f.name: f for f in EXTRA_FIELDS}
    assert fields["environment"].default == config.environment
    assert fields["api"].default == config.generation.name
    assert fields["key_location"].default == config.key_location
    assert fields["timeout"].default == config.timeout[1]
    assert fields["max_retries"].default == config.retry.max_retries
    assert fields["retry_backoff"].default == config.retry.backoff
    assert fields["verify"].default is config.verify
    # Each dropdown choice is accepted by the configuration.
    for choice in fields["key_location"].enum:
        assert TciaConfig.from_connection_fields(host=None, extra={"key_location": choice}).key_location == choice
    # What the form's text fields hold is read: numbers as text, proxies as JSON.
    config = TciaConfig.from_connection_fields(
        host=None, extra={"timeout": "30", "retry_backoff": "0.5", "proxies": '{"https": "http://proxy:3128"}'}
    )
    assert config.timeout[1] == 30 and config.retry.backoff == 0.5
    assert config.proxies == {"https": "http://proxy:3128"}


def test_provider_info_uses_no_deprecated_hook_form_api(recwarn):
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["tcia"]
    assert hook is not None and hook.hook_class_name == "airflow_provider_tcia.hooks.tcia.TciaHook"
    assert not [w for w in recwarn if "tcia" in str(w.message).lower()]


def test_every_module_imports_without_deprecation_warnings(tmp_path):
    """Importing each of our modules (and loading the example DAGs) warns about nothing of ours, on every
    supported Airflow. Warnings raised inside Airflow's own packages while it loads (2.11's Flask stack, the
    standard provider on 3.0/3.1) are Airflow's, not ours; a deprecated import of ours is reported at our line."""
    code = (
        "import importlib, pkgutil, runpy, pathlib, sys, warnings, json\n"
        "import airflow, airflow_provider_tcia\n"
        "sys.path.insert(0, 'example_dags')  # as Airflow does for the DAGs folder\n"
        "ours = (str(pathlib.Path(airflow_provider_tcia.__file__).parent), str(pathlib.Path('example_dags').resolve()))\n"
        "failed = {}\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    mods = [m.name for m in pkgutil.walk_packages(airflow_provider_tcia.__path__, 'airflow_provider_tcia.')]\n"
        "    for name in mods: importlib.import_module(name)\n"
        "    from airflow_provider_tcia.hooks.tcia import TciaHook\n"
        "    TciaHook.get_connection_form_widgets()\n"
        "    dags = sorted(pathlib.Path('example_dags').glob('tcia_*.py'))\n"
        "    for path in dags:\n"
        "        try:\n"
        "            runpy.run_path(str(path))\n"
        "        except Exception as err:\n"
        "            failed[path.name] = f'{type(err).__name__}: {err}'\n"
        "mine = [f'{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}' for w in caught\n"
        "        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))\n"
        "        and str(pathlib.Path(w.filename).resolve()).startswith(ours)]\n"
        "print(json.dumps({'modules': len(mods), 'dags': len(dags), 'warnings': mine, 'failed': failed}))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["warnings"] == []
    assert result["modules"] > 30 and result["dags"] >= 6
    if AIRFLOW_V_3_0_PLUS:
        assert result["failed"] == {}
    else:  # no asset watchers on 2.11: the event-driven examples say so, the others load
        assert sorted(result["failed"]) == ["tcia_flagship_event_ingest.py", "tcia_updated_series.py"]
        sensors = {
            "tcia_flagship_event_ingest.py": "TciaNewStudiesSensor",
            "tcia_updated_series.py": "TciaUpdatedSeriesSensor",
        }
        for name, error in result["failed"].items():
            assert "needs Airflow 3.0 or later" in error and sensors[name] in error, (name, error)
