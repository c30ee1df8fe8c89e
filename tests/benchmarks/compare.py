"""`make bench-compare BASE=<commit>`: benchmarks of an earlier commit and of this tree, side by side in one run.

The earlier commit is checked out in a temporary git worktree; each round runs every named benchmark there, then
here (then the next round in the other order), with the same interpreter and installed packages, so both see
the same machine and the same load. Each benchmark run prints its own medians; this prints them one after the
other, labelled, and the load average before each run.

    python -m tests.benchmarks.compare a2627dc bench_download bench_list_series

``ROUNDS`` (default 2) sets the rounds. Benchmarks take their own settings from the environment
(``BENCH_REPEATS``, ``BENCH_BIG_MIB`` …), passed to both sides unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tree: Path, label: str, bench: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    print(f"\n##### {label} ({tree}) — {bench}, load average {os.getloadavg()[0]:.1f}", flush=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.run", bench], cwd=tree, env=env, check=False)
    print(f"##### {label} — {bench}: {time.perf_counter() - start:.0f} s, exit {done.returncode}", flush=True)
    return done.returncode


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    base, benches = argv[0], argv[1:] or ["bench_download", "bench_list_series", "bench_triggers"]
    rounds = int(os.environ.get("ROUNDS", "2"))
    sha = subprocess.run(
        ["git", "rev-parse", "--short", base], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    worktree = Path(tempfile.mkdtemp(prefix=f"tcia-bench-{sha}-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(worktree), sha], cwd=ROOT, check=True)
    failed = 0
    try:
        sides = [(worktree, f"before ({sha})"), (ROOT, "after (this tree)")]
        for n in range(rounds):
            for tree, label in sides if n % 2 == 0 else sides[::-1]:
                for bench in benches:
                    failed += _run(tree, f"round {n + 1}, {label}", bench) != 0
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
