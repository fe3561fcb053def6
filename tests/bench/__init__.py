"""Store benchmarks: ingest rate, bytes per reading on disk, range, aggregate and latest.

Run `python -m tests.bench` for the full sizes or `python -m tests.bench --quick`
for a smoke run; each benchmark works in its own temporary directory and the
results are printed as one table at the end.
"""
