"""`make bench`: run every ``tests/benchmarks/bench_*.py`` (each has ``main()`` printing its table).

Benchmarks hold the project's timing targets; the test suite has no timed assertions. Run one alone with
``python -m tests.benchmarks.run bench_download``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(p.stem for p in here.glob("bench_*.py"))
    if not names:
        print("no benchmarks found", file=sys.stderr)
        return 1
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(f"tests.benchmarks.{name}").main()
        except Exception as err:  # report every benchmark, then fail
            failed.append(name)
            print(f"{name} failed: {type(err).__name__}: {err}", file=sys.stderr)
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
