"""One XCom policy for every operator: a task returns at most ``max_xcom_bytes`` of JSON.

An XCom is a row in Airflow's metadata database that travels worker → supervisor → API server; a large one
slows or breaks tasks (MySQL caps it at 64 KB; on Airflow 3 a big push can block the task's heartbeats,
apache/airflow#64628). So what any operator of this provider returns is capped at ``max_xcom_bytes``
(default 1 MiB), counted as :func:`json_bytes` counts it, and a result above the cap is refused with
:class:`~airflow_provider_tcia.exceptions.TciaResultTooLargeError` — an error no retry can fix, so the task
ends at once, without its Airflow retries — *before it is pushed and before work is done that the refusal
would waste*, with a message that says where the full result goes instead:

* query operators count the rows' JSON as they stream in and stop at the first row over the cap; the full
  result goes to ``output_path``.
* download operators refuse before any request: the number of series (images) is known then, and every
  summary is bounded — UIDs, paths, layout known, sizes and counts at most :data:`MAX_INT` — so a download
  whose summaries might not fit never starts, and none that succeeded is refused afterwards. Their full
  result goes to ``summary_path`` (written atomically; XCom then carries its path and the counts), or stays at
  the destination with ``do_xcom_push=False`` (every series' manifest holds its result).

With ``do_xcom_push=False`` nothing is pushed and nothing is refused.
"""

from __future__ import annotations

import json
from typing import Any

#: Default cap on the JSON an operator returns to XCom (1 MiB): more belongs in object storage.
DEFAULT_MAX_XCOM_BYTES = 1 << 20
#: The largest integer a summary holds (bytes, file counts): what a bound assumes for those not known yet.
MAX_INT = 2**63 - 1


def check_max_xcom_bytes(value: Any) -> int:
    """``value`` if it is a positive whole number of bytes (checked when the DAG is parsed)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"max_xcom_bytes must be a positive number of bytes, not {value!r}")
    return value


def json_bytes(value: Any) -> int:
    """The size the cap counts: ``value`` as UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False).encode())
