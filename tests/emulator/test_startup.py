"""How the emulator starts: the command line, the console script, the pytest fixtures and the context
manager — and the Airflow connection the fixture hands out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from airflow_provider_tcia.emulator import Emulator, RemoteControl, run_emulator
from tests.emulator.conftest import LEGACY, NBIA_V4

pytestmark = pytest.mark.integration


def start_cli(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_tcia.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline().strip()
    return process, first


def test_the_command_line(tmp_path):
    process, first = start_cli("--dataset", "test", "--api-key", "cli-key")
    try:
        assert first.startswith("TCIA emulator listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1]
        r = requests.get(url + f"{LEGACY}/getCollectionValues", headers={"api_key": "cli-key"}, timeout=10)
        assert r.json() == [{"Collection": "TCGA-GBM"}]
        assert requests.get(url + f"{LEGACY}/getCollectionValues", timeout=10).status_code == 401
        info = RemoteControl(url).info()
        assert info == {"dataset": "test", "api_key_required": True, "collections": ["TCGA-GBM"]}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stdout.close()
        process.stderr.close()


def test_the_console_script_and_its_options():
    script = Path(sys.executable).parent / "tcia-emulator"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    for option in ("--host", "--port", "--api-key", "--dataset"):
        assert option in out
    bad = subprocess.run([str(script), "--dataset", "nope"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_a_busy_port_is_a_clear_error():
    with Emulator() as emu:
        process = subprocess.run(
            [sys.executable, "-m", "airflow_provider_tcia.emulator", "--port", str(emu.port)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert process.returncode == 2 and "cannot listen" in process.stderr


def test_the_fixture(tcia_emulator):
    assert tcia_emulator.url == f"http://127.0.0.1:{tcia_emulator.port}"
    assert requests.get(tcia_emulator.url + f"{NBIA_V4}/getCollectionValues", timeout=10).status_code == 200
    assert tcia_emulator.connection_uri() == f"tcia://127.0.0.1:{tcia_emulator.port}/http?api=legacy"
    uri = tcia_emulator.connection_uri(api="nbia", api_key="k/e y", api_version="v4", api_key_in="query")
    assert uri == f"tcia://:k%2Fe%20y@127.0.0.1:{tcia_emulator.port}/http?api=nbia&api_version=v4&api_key_in=query"
    assert json.loads(tcia_emulator.connection_json(api="nbia", environment="test")) == {
        "conn_type": "tcia",
        "host": tcia_emulator.url,
        "extra": {"api": "nbia", "environment": "test"},
    }


@pytest.mark.tcia_emulator(api_key="marked", dataset="test")
def test_the_fixture_takes_options_from_a_marker(tcia_emulator):
    assert tcia_emulator.info()["dataset"] == "test"
    assert ":marked@" in tcia_emulator.connection_uri()
    assert json.loads(tcia_emulator.connection_json())["password"] == "marked"
    assert "password" not in json.loads(tcia_emulator.connection_json(api_key=""))


def test_the_session_fixture_and_the_factory(tcia_emulator_session, tcia_emulator_factory):
    other = tcia_emulator_factory(dataset="test")
    assert other.port != tcia_emulator_session.port
    assert requests.get(tcia_emulator_session.url + f"{LEGACY}/getCollectionValues", timeout=10).json()
    assert other.info()["collections"] == ["TCGA-GBM"]


def test_the_context_manager():
    with run_emulator(api_key="ctx") as emu:
        url = emu.url
        assert requests.get(url + f"{LEGACY}/getSeries", headers={"api_key": "ctx"}, timeout=10).json()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + f"{LEGACY}/getSeries", timeout=2)


def test_the_connection_is_what_airflow_and_the_hook_read(tcia_emulator):
    from airflow.models.connection import Connection

    from airflow_provider_tcia.hooks.config import TciaConfig

    with tcia_emulator.with_api_key("pw:with/odd chars"):
        conn = Connection(conn_id="tcia_emu", uri=tcia_emulator.connection_uri(api="nbia", api_version="v1"))
        assert (conn.conn_type, conn.host, conn.port, conn.schema) == ("tcia", "127.0.0.1", tcia_emulator.port, "http")
        assert conn.password == "pw:with/odd chars"
        assert conn.extra_dejson == {"api": "nbia", "api_version": "v1"}
        config = TciaConfig.from_connection_fields(
            host=conn.host, schema=conn.schema, port=conn.port, password=conn.password, extra=conn.extra_dejson
        )
        assert config.base_url == tcia_emulator.url
        assert (config.generation.name, config.generation.version) == ("nbia", "v1")

        from_json = Connection.from_json(tcia_emulator.connection_json(), conn_id="tcia_json")
        config = TciaConfig.from_connection_fields(
            host=from_json.host, schema=from_json.schema, port=from_json.port, password=from_json.password,
            extra=from_json.extra_dejson,
        )  # fmt: skip
        assert config.base_url == tcia_emulator.url and config.api_key == "pw:with/odd chars"


def test_the_plugin_needs_no_airflow():
    # The emulator (and the plugin) import without Airflow: a fresh interpreter that cannot import it.
    code = (
        "import sys; sys.modules['airflow'] = None\n"
        "import airflow_provider_tcia.emulator.pytest_plugin\n"
        "from airflow_provider_tcia.emulator import run_emulator\n"
        "with run_emulator() as e: print(e.url)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("http://127.0.0.1:")


def test_bind_then_start_serves_and_a_bound_emulator_stops():
    emu = Emulator().bind()
    port = emu.port
    emu.stop()  # never served: returns at once
    emu = Emulator().bind()
    try:
        assert emu.start().port == emu.port
        assert requests.get(emu.url + f"{LEGACY}/getCollectionValues", timeout=10).status_code == 200
    finally:
        emu.stop()
    assert port > 0 and repr(emu) == "Emulator(stopped, dataset='default')"


def test_ipv6_loopback():
    try:
        emu = Emulator("::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert emu.url == f"http://[::1]:{emu.port}"
        assert requests.get(emu.url + f"{LEGACY}/getCollectionValues", timeout=10).status_code == 200
        assert emu.connection_uri().startswith(f"tcia://[::1]:{emu.port}/http?")
    finally:
        emu.stop()
