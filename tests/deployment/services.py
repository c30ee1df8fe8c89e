"""Real servers a distributed Airflow runs on — PostgreSQL and Redis — started and stopped by the test.

Both come from Debian's packages (``postgresql`` is on this image; ``make system-deps`` installs
``redis-server``). A missing one fails the test with what to install; it is never skipped.

PostgreSQL refuses to run as root: when the tests run as root its cluster is owned by, and its server runs as,
the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployment.processes import free_port


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    if not path:
        pytest.fail(f"PostgreSQL's {name} not found: install Debian's postgresql package (make system-deps)")
    return path


def _as_user(user: str | None):
    if user is None:
        return None
    entry = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_port(port: int, what: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def postgresql(root: Path, database: str = "airflow") -> Iterator[Server]:
    """A PostgreSQL cluster of its own in ``root``, on a free loopback port, trusting local connections;
    yields its SQLAlchemy URL (psycopg2) for ``database``."""
    user = "postgres" if os.geteuid() == 0 else None
    if user:  # the postgres user cannot reach into pytest's private (0700) temp folders: a folder of its own
        root = Path(tempfile.mkdtemp(prefix="tcia-postgres-"))
    data, sockets, log = root / "pgdata", root / "pgsock", root / "postgres.log"
    for folder in (data, sockets):
        folder.mkdir(parents=True)
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, data, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(
        [_postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        capture_output=True,
        text=True,
        preexec_fn=_as_user(user),
        timeout=120,
    )
    assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
    port = free_port()
    command = [_postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(sockets)]
    command += ["-c", "fsync=off", "-c", "max_connections=200"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_as_user(user),
        )
    try:
        _wait_port(port, "postgres", server, log)
        deadline = time.monotonic() + 60
        while True:  # listening is not yet accepting: createdb retries (bounded) while the server starts up
            made = subprocess.run(
                [_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if made.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"createdb failed:\n{made.stderr}\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield Server(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}", log)
    finally:
        _stop(server, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        if user:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis(root: Path) -> Iterator[Server]:
    """A Redis server on a free loopback port, persisting nothing; yields its URL (database 0)."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server not found: install Debian's redis-server package (as root: make system-deps)")
    port, log = free_port(), root / "redis.log"
    root.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(root), "--protected-mode", "yes"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_port(port, "redis-server", server, log)
        yield Server(f"redis://127.0.0.1:{port}/0", log)
    finally:
        _stop(server)
