"""The thread pool both download engines run their items on, and the one error a task raises for the items that
failed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from airflow_provider_tcia.exceptions import TciaDownloadError

K = TypeVar("K")
R = TypeVar("R")


def run_in_pool(
    work: Callable[[K], R], items: Sequence[K], workers: int, stop: threading.Event, name: str
) -> tuple[dict[K, R], dict[K, Exception]]:
    """``work(item)`` for every item on ``workers`` threads: the results and the failures, by item. If this
    thread is killed or interrupted meanwhile, ``stop`` is set (the running downloads clean up), nothing more
    starts, and the interruption propagates once the running ones are done."""
    results: dict[K, R] = {}
    failures: dict[K, Exception] = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        futures = {pool.submit(work, item): item for item in items}
        try:
            for future in as_completed(futures):
                try:
                    results[futures[future]] = future.result()
                except Exception as err:
                    failures[futures[future]] = err
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results, failures


def gathered_failure(failures: Mapping[str, BaseException], total: int, noun: str) -> BaseException:
    """The error of a task whose downloads failed: the one error itself when there was one thing to download,
    else a :class:`TciaDownloadError` listing the first few (the others are in place)."""
    first = next(iter(failures.values()))
    if total == 1:
        return first
    listed = "; ".join(f"{key}: {err}" for key, err in list(failures.items())[:5])
    more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
    done = total - len(failures)
    error = TciaDownloadError(
        f"{len(failures)} of {total} {noun} failed ({done} {'is' if done == 1 else 'are'} in place and verified; "
        f"a re-run skips {'it' if done == 1 else 'them'}): {listed}{more}",
        failures=failures,
    )
    error.__cause__ = first
    return error
