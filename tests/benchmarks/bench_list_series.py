"""getSeries over a 100,000-series collection, written to a file: time and peak memory, ours vs tcia-utils.

The emulator serves its ``scaled`` dataset (collection ``SCALE-100K``) in this process; each measured run is a
fresh child process (so peak RSS is that run's own), which reports:

* ``TciaGetSeriesOperator`` writing ``file://…/series.jsonl`` (and ``.json``) through the NBIA and the legacy
  API: rows parsed as the body streams and written one by one;
* ``tcia_utils.nbia.getSeries`` pointed at the same emulator (its ``setApiUrl`` patched, here only), then
  ``json.dump`` of the list to a file — what a tcia-utils user does to keep the listing.

Each child measures wall time and its own CPU time (the emulator's is not counted) of the call alone, and peak RSS (``ru_maxrss``) beside its RSS before the call,
so "growth" is what the listing itself cost. A second size (20,000 series: ``modality=MR``) shows whether
memory grows with the rows. Run with ``make bench`` or ``python -m tests.benchmarks.run bench_list_series``;
``BENCH_RUNS`` (default 3) sets the runs per case (the median is shown).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.measure import cpu as _cpu
from tests.benchmarks.measure import rss as _rss

COLLECTION = "SCALE-100K"
SIZES = {"100k": {}, "20k": {"modality": "MR"}}
CASES = [
    # (label, client, api, format)
    ("TciaGetSeriesOperator → .jsonl (NBIA v4)", "ours", "nbia", "jsonl"),
    ("TciaGetSeriesOperator → .json (NBIA v4)", "ours", "nbia", "json"),
    ("TciaGetSeriesOperator → .jsonl (legacy v2)", "ours", "legacy", "jsonl"),
    ("tcia_utils.nbia.getSeries + json.dump (NBIA v4)", "tcia_utils", "nbia", "json"),
]


def _child(client: str, url: str, api: str, fmt: str, filters: dict, out: str) -> dict:
    """Runs in the child process: one listing to ``out``; returns the measurements."""
    if client == "ours":
        from airflow_provider_tcia.operators import TciaGetSeriesOperator
        from tests.airflow_compat import ExecutorSafeguard

        ExecutorSafeguard.test_mode = True
        op = TciaGetSeriesOperator(
            task_id="bench", collection=COLLECTION, output_path=f"file://{out}", output_format=fmt, **filters
        )
        before, cpu = _rss(), _cpu()
        start = time.perf_counter()
        summary = op.execute(context={})
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
        rows = summary["rows"]
    else:
        import tcia_utils.nbia as nbia

        nbia.setApiUrl = lambda endpoint, api_url="nbia": f"{url}/nbia-api/services/v4/"
        before, cpu = _rss(), _cpu()
        start = time.perf_counter()
        data = nbia.getSeries(collection=COLLECTION, modality=filters.get("modality", ""))
        with open(out, "w") as fh:
            json.dump(data, fh)
        seconds, cpu = time.perf_counter() - start, _cpu() - cpu
        rows = len(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rows": rows,
        "before": before,
        "peak": peak,
        "bytes": Path(out).stat().st_size,
    }


def _run_child(client: str, url: str, api: str, fmt: str, filters: dict, home: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/series.{fmt}"
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW_CONN_TCIA_DEFAULT": json.dumps(
                {"conn_type": "tcia", "host": url, "extra": {"api": api, "timeout": 600}}
            ),
        }
        args = json.dumps([client, url, api, fmt, filters, out])
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.bench_list_series", "--child", args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{client} ({api}, {fmt}) failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.0f}"


def main() -> None:
    from airflow_provider_tcia.emulator.app import Emulator

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    results: dict[tuple[str, str], dict] = {}
    measurements: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as home, Emulator(dataset="scaled") as emulator:
        # Round-robin over the cases, so that whatever else the machine is doing weighs on all of them alike.
        for run in range(runs):
            for size, filters in SIZES.items():
                for label, client, api, fmt in CASES:
                    m = _run_child(client, emulator.url, api, fmt, filters, home)
                    measurements.setdefault((label, size), []).append(m)
                    print(f"  run {run + 1}/{runs} {size:>4} {label}: {m['seconds']:.2f} s", flush=True)
    for (label, size), measured in measurements.items():
        rows = {m["rows"] for m in measured}
        if len(rows) != 1:
            raise RuntimeError(f"{label}: row counts differ between runs: {rows}")
        results[(label, size)] = {
            "rows": rows.pop(),
            "seconds": statistics.median(m["seconds"] for m in measured),
            "cpu": statistics.median(m["cpu"] for m in measured),
            "peak": statistics.median(m["peak"] for m in measured),
            "growth": statistics.median(m["peak"] - m["before"] for m in measured),
        }

    baseline = "tcia_utils.nbia.getSeries + json.dump (NBIA v4)"
    print(f"\ngetSeries of {COLLECTION} written to a local file; median of {runs} runs; each run a fresh process.")
    print(
        "| client → output | rows | wall time (s) | vs tcia-utils | client CPU (s) | peak RSS (MiB) "
        "| RSS growth during the call (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        base = results[(baseline, size)]
        for label, *_ in CASES:
            r = results[(label, size)]
            print(
                f"| {label} | {r['rows']:,} | {r['seconds']:.2f} | {r['seconds'] / base['seconds']:.2f}x "
                f"| {r['cpu']:.2f} | {_mib(r['peak'])} | {_mib(r['growth'])} |"
            )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(*json.loads(sys.argv[2]))))
    else:
        main()
