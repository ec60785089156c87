"""The real-maps benchmark (issue 18): every row at its defaults on real maps, scored by localisation.

    .venv/bin/python benchmarks/real_maps.py --work real-maps-work --table BENCHMARKS.md [--rows cnn threshold]

Runs :func:`defoscan.benchmark.real_maps.run_real_maps` (cases and scoring: that module's notes), prints how long
each (row, case) took and writes the table between ``<!-- real-maps:begin -->`` and ``<!-- real-maps:end -->`` of
``--table`` (and the full result as JSON beside the work directory's runs). Kept results are reused: a rerun only
runs what changed.
"""

import argparse
import os
import sys

from defoscan.benchmark.real_maps import CASES, DEFAULT_ROWS, real_maps_table, run_real_maps
from defoscan.benchmark.suite import write_table
from defoscan.outputs import write_json

BEGIN, END = "<!-- real-maps:begin -->", "<!-- real-maps:end -->"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="real-data folder (default: DEFOSCAN_REAL_DATA or ../shared/data/real)")
    parser.add_argument("--work", required=True, help="work folder: converted inputs, runs, kept results")
    parser.add_argument("--table", help="Markdown file to write the table into, between the real-maps markers")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), help="rows of the suite to run")
    parser.add_argument("--cases", nargs="+", default=list(CASES), help=f"cases: {', '.join(CASES)}")
    parser.add_argument("--models", help="folder of the model ablations' weights")
    args = parser.parse_args(argv)

    def progress(done, total, what):
        print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    result = run_real_maps(
        args.work, rows=args.rows, cases=args.cases, real_data=args.data, models_dir=args.models, progress=progress
    )
    for entry in result["rows"]:
        for case, scored in entry["cases"].items():
            print(f"{entry['name']} on {case}: {scored['seconds']:.1f} s (when run)")
    table = real_maps_table(result)
    print(table)
    write_json(os.path.join(args.work, "real_maps.json"), result)
    if args.table:
        write_table(args.table, table, begin=BEGIN, end=END)
    return result


if __name__ == "__main__":
    main()
