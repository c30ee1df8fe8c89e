"""``python -m airflow_provider_tcia.emulator`` / ``tcia-emulator``: run the emulator until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Sequence

from airflow_provider_tcia.emulator.catalog import DATASETS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tcia-emulator",
        description="Serve an emulator of TCIA's REST APIs (the key-based query API and NBIA) over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8780, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--api-key", default=None, help="require this key (api_key header or query parameter) on the seed API"
    )
    parser.add_argument("--dataset", default="default", choices=sorted(DATASETS), help="(default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from airflow_provider_tcia.emulator.app import Emulator

    emulator = Emulator(args.host, args.port, api_key=args.api_key, dataset=args.dataset, verbose=args.verbose)
    try:
        emulator.bind()
    except OSError as err:
        print(f"tcia-emulator: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 2
    print(f"TCIA emulator listening on {emulator.url}", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
