"""Real Airflow components as processes, for the tests that start them (deployment, browser).

Every process is started in its own session (process group) and stopped with SIGTERM, then SIGKILL, whatever
happens; its output goes to a file in the Airflow home, shown when a wait times out.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_compat import AIRFLOW_V_3_0_PLUS

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of an Airflow whose home is ``home`` and whose api-server (webserver on 2.x) is on
    ``port``, on SQLite, with the SimpleAuthManager's every-user-is-admin login; ``settings`` add to it."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TCIA_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # The log servers of the workers and the triggerer on free ports, not Airflow's 8793/8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not AIRFLOW_V_3_0_PLUS:  # Airflow 2's UI is the webserver (3 moved these to [api] and warns)
        env.update(
            {
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(32),
            }
        )
    env.update(settings)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, deployment: Deployment, interval: float = 2.0):
    """Poll ``check`` until it returns something truthy; fail with the components' recent output if not."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        deployment.assert_running()
        try:
            result = check()
        except (OSError, ValueError, KeyError) as err:  # the api-server not up yet, a run not created yet …
            last_error, result = err, None
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{deployment.tails()}")


@dataclass
class Deployment:
    home: Path
    data: Path
    port: int
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)

    # --- processes -----------------------------------------------------------------------------------
    def output(self, name: str) -> Path:
        return self.home / f"{name.replace(' ', '-')}.out"

    def start(
        self,
        name: str,
        *args: str,
        label: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        """Start ``airflow <name> <args>``, known as ``label`` (default: ``name``), with ``env`` and ``cwd``
        (default: the deployment's); a restarted component gets a new output file (``triggerer-2``)."""
        label = label or name
        self.starts[label] = self.starts.get(label, 0) + 1
        key = f"{label}#{self.starts[label]}" if self.starts[label] > 1 else label
        with self.output(key.replace("#", "-")).open("wb") as out:
            self.processes[key] = subprocess.Popen(
                [AIRFLOW, *name.split(), *args],
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd or self.home,
                start_new_session=True,  # its own process group: its workers are stopped with it
            )

    def assert_running(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"airflow {name} exited with {process.returncode}\n{self.tails()}")

    def stop_one(self, key: str) -> None:
        """Stop one component as a deployment would (SIGTERM), and forget it."""
        process = self.processes.pop(key)
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(10)

    def tails(self, lines: int = 25) -> str:
        out = []
        for name in self.processes:
            text = self.output(name.replace("#", "-")).read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- airflow {name} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(out)

    # --- the CLI and the REST API --------------------------------------------------------------------
    def cli(self, *args: str) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=20) as response:
            return json.loads(response.read())

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=50")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")["task_instances"]

    def upstream_events(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/upstreamAssetEvents")["asset_events"]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)  # the group this test started (start_new_session): pgid == pid
