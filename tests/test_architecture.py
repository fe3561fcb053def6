"""The dependency rules of the layout, enforced: import contracts and where SQL may live."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "drivers", "web", "sync")
SQL = re.compile(r"\b(SELECT\s+\S.*\bFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET)\b")


def test_import_contracts_hold():
    result = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "Only the store talks to SQLite KEPT" in result.stdout


def test_no_sql_outside_the_store():
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path.is_relative_to(ROOT / "edge" / "store"):
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if SQL.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert offenders == []


def test_the_benchmarks_import_so_make_bench_runs():
    # `make test` does not run the benchmarks; importing them catches a moved name.
    import tests.bench.__main__ as bench

    assert set(bench.BENCHMARKS) >= {"ingest", "sync", "api", "modbus"}
