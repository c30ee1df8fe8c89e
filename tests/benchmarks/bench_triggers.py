"""A thousand watchers in one triggerer: 1,000 ``TciaQueryTrigger`` s and 1,000 ``TciaNewStudiesEventTrigger`` s
in one event loop, against the emulator (in its own process, so its CPU is not counted).

The query triggers wait for new studies in 10 distinct questions (7 collections x 2 dates), the event triggers
watch the 7 collections from yesterday on — the same questions as 7 of the query triggers' (they share those
polls too): 12 distinct questions in all, asked every ``INTERVAL`` seconds. Reported per run:

* **memory per trigger** — the process's RSS once every trigger has started and polled, minus its RSS before
  they were created, over 2,000;
* **CPU per trigger-poll** and per interval — this process's CPU time over ``MEASURE`` intervals;
* **requests per distinct question per interval** — from the emulator's request log over those intervals
  (target: exactly 1.0 — watchers asking the same question share one poll);
* **publication → event** — a study is published to one collection; the time until each trigger waiting on
  it (a query trigger fires, a watcher yields an event) has its event: median and worst (target: at most one
  interval + 1 s).

``BENCH_RUNS`` (default 3) runs, each a fresh set of triggers on a fresh emulator; medians and ranges shown.
Run with ``make bench`` or ``python -m tests.benchmarks.run bench_triggers``. Targets: ≤ 100 KiB per trigger;
1.0 request per question per interval; latency ≤ interval + 1 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import time

from tests.benchmarks.measure import cpu as _cpu
from tests.benchmarks.measure import rss as _rss

INTERVAL = 2.0
WARMUP, MEASURE = 2, 10
QUERY_TRIGGERS = EVENT_TRIGGERS = 1000
COLLECTIONS = ["TCGA-GBM", "TCGA-BRCA", "LIDC-IDRI", "4D-Lung", "VICTRE", "CBIS-DDSM", "TCGA-KIRC"]
KEY = "bench-triggers-key"


def _emulator() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_tcia.emulator", "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


async def _run(url: str) -> dict:
    from airflow_provider_tcia.emulator.control import RemoteControl
    from airflow_provider_tcia.triggers.tcia import TciaNewStudiesEventTrigger, TciaQueryTrigger

    control = RemoteControl(url)
    today = dt.date.today()
    dates = [(today - dt.timedelta(days=days)).isoformat() for days in (1, 2)]
    questions = [(c, d) for c in COLLECTIONS for d in dates][:10]
    before = _rss()
    query_triggers = [
        TciaQueryTrigger(
            endpoint="NewStudiesInPatientCollection",
            query_params={"collection": questions[i % len(questions)][0], "date": questions[i % len(questions)][1]},
            poke_interval=INTERVAL,
        )
        for i in range(QUERY_TRIGGERS)
    ]
    event_triggers = [
        TciaNewStudiesEventTrigger(collection=COLLECTIONS[i % len(COLLECTIONS)], poll_interval=INTERVAL)
        for i in range(EVENT_TRIGGERS)
    ]
    fired: dict[int, float] = {}

    async def drive(index: int, trigger) -> None:
        async for _event in trigger.run():
            fired.setdefault(index, time.monotonic())
            if index < QUERY_TRIGGERS:
                return  # a query trigger fires once

    tasks = [asyncio.create_task(drive(i, t)) for i, t in enumerate([*query_triggers, *event_triggers])]
    await asyncio.sleep(INTERVAL * WARMUP)
    rss = _rss() - before
    first = control.requests()[-1]["id"] if control.requests() else 0
    cpu, started = _cpu(), time.monotonic()
    await asyncio.sleep(INTERVAL * MEASURE)
    cpu, elapsed = _cpu() - cpu, time.monotonic() - started
    asked = [r for r in control.requests(since=first) if r["endpoint"] == "NewStudiesInPatientCollection"]
    distinct = {str(sorted(dict(r["query"]).items())) for r in asked}
    intervals = elapsed / INTERVAL

    # A study arrives in the first collection: every trigger asking about it must fire.
    target = COLLECTIONS[0]
    waiting = [i for i, t in enumerate(query_triggers) if t.query_params["collection"] == target]
    waiting += [QUERY_TRIGGERS + i for i, t in enumerate(event_triggers) if t.collection == target]
    published = time.monotonic()
    control.publish(target, series_count=1, image_count=1)
    deadline = published + INTERVAL * 3 + 5
    while time.monotonic() < deadline and not all(i in fired for i in waiting):
        await asyncio.sleep(0.05)
    latencies = [fired[i] - published for i in waiting if i in fired]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "kib_per_trigger": rss / 1024 / (QUERY_TRIGGERS + EVENT_TRIGGERS),
        "cpu_ms_per_interval": cpu * 1000 / intervals,
        "cpu_us_per_trigger_poll": cpu * 1e6 / intervals / (QUERY_TRIGGERS + EVENT_TRIGGERS),
        "requests_per_question_interval": len(asked) / len(distinct) / intervals if distinct else float("nan"),
        "questions": len(distinct),
        "fired": f"{len(latencies)}/{len(waiting)}",
        "latency_median_s": statistics.median(latencies) if latencies else float("nan"),
        "latency_max_s": max(latencies) if latencies else float("nan"),
    }


def _child() -> None:
    import json

    logging.disable(logging.WARNING)  # 2,000 triggers' info lines (and no state store outside a triggerer)
    process, url = _emulator()
    try:
        os.environ["AIRFLOW_CONN_TCIA_DEFAULT"] = json.dumps(
            {"conn_type": "tcia", "host": url, "password": KEY, "extra": {"api": "legacy", "retry_backoff": 0.2}}
        )
        print(json.dumps(asyncio.run(_run(url))))
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    import json

    runs = int(os.environ.get("BENCH_RUNS", "3"))
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks.bench_triggers", "--child"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the benchmark child failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{QUERY_TRIGGERS} TciaQueryTriggers + {EVENT_TRIGGERS} TciaNewStudiesEventTriggers in one event loop, "
          f"poll interval {INTERVAL:g} s, {results[0]['questions']} distinct questions; {runs} runs: median (min-max)")  # fmt: skip
    rows = [
        ("memory per trigger (KiB)", "kib_per_trigger", "≤ 100"),
        ("CPU per interval (ms)", "cpu_ms_per_interval", ""),
        ("CPU per trigger-poll (µs)", "cpu_us_per_trigger_poll", ""),
        ("requests per question per interval", "requests_per_question_interval", "1.0"),
        ("publication → event, median (s)", "latency_median_s", f"≤ {INTERVAL + 1:g}"),
        ("publication → event, worst (s)", "latency_max_s", f"≤ {INTERVAL + 1:g}"),
    ]
    print(f"{'':38} {'median':>8} {'range':>17}  target")
    for label, key, target in rows:
        values = [r[key] for r in results]
        print(f"{label:38} {statistics.median(values):8.2f} {min(values):8.2f}-{max(values):<8.2f}  {target}")
    print("fired (per run):", ", ".join(r["fired"] for r in results))


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
