"""The held-out scene benchmarks of issue 18 (real deformation fields, out-of-distribution synthetic scenes).

    .venv/bin/python benchmarks/held_out.py --benchmark tay --data ../shared/data/real --work WORK --table FILE.md
    .venv/bin/python benchmarks/held_out.py --benchmark ood --work WORK --table FILE.md

Runs :func:`defoscan.benchmark.held_out.run_benchmark` (scenes made once, baselines tuned on the validation split,
every row at its defaults on the test split; that module's notes), prints the table and how long it took, and
writes it between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` of ``--table``. Kept results are reused.
"""

import argparse
import platform
import sys
import time

from defoscan.benchmark.held_out import BENCHMARKS, DEFAULT_ROWS, benchmark_table, run_benchmark
from defoscan.benchmark.suite import write_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), required=True)
    parser.add_argument("--data", help="real-data folder (default: DEFOSCAN_REAL_DATA or ../shared/data/real)")
    parser.add_argument("--work", required=True, help="work folder: scenes, maps, runs, kept results")
    parser.add_argument("--table", help="Markdown file to write the table into, between the benchmark's markers")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), help="rows run at their defaults")
    parser.add_argument("--no-tuning", action="store_true", help="leave out the baselines tuned on validation")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def progress(done, total, what):
        print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    result = run_benchmark(
        args.benchmark, args.work, real_data=args.data, rows=args.rows, tune=not args.no_tuning, progress=progress
    )
    table = benchmark_table(result)
    print(table)
    seconds = time.perf_counter() - started
    print(f"{args.benchmark}: {len(result['scenes'])} test scenes, {seconds:.0f} s on {platform.node()}")
    if args.table:
        marker = BENCHMARKS[args.benchmark].marker
        write_table(args.table, table, begin=f"<!-- {marker}:begin -->", end=f"<!-- {marker}:end -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
