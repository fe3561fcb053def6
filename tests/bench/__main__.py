"""`python -m tests.bench [--quick] [--only NAME ...]`: run the benchmarks, print a table."""

from __future__ import annotations

import argparse
import sys
import time

from tests.bench import api, disk, ingest, latest, modbus, movements, sync, ui, window
from tests.bench._common import FULL, QUICK, Result, table

BENCHMARKS = {
    "ingest": ingest.run,
    "disk": disk.run,
    "window": window.run,
    "latest": latest.run,
    "movements": movements.run,
    "modbus": modbus.run,
    "api": api.run,
    "sync": sync.run,
    "ui": ui.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS), help="run only these"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results: list[Result] = []
    started = time.perf_counter()
    for name in args.only:
        print(f"{name} ...", end=" ", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        results += BENCHMARKS[name](sizes)
        print(f"{time.perf_counter() - begun:.1f} s", file=sys.stderr, flush=True)
    print(table(results))
    missed = [r.measure for r in results if r.ok is False]
    mode = "quick" if args.quick else "full"
    print(f"\n{mode} run, {time.perf_counter() - started:.1f} s; targets missed: {len(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
