"""``[core] hostname_callable`` for the Celery deployment test: each worker reports its own name.

Both workers run on this one machine, so Airflow's default (the machine's FQDN) would record the same hostname
on every task instance; the test tells them apart by the name its worker was started with.
"""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["TCIA_TEST_WORKER_NAME"]
