"""Reliability of the CNN's probability map on the held-out validation splits (issue 18).

    .venv/bin/python benchmarks/reliability.py --data ../shared/data/real --work WORK --table FILE.md

Runs `detect` at its defaults (the shipped model) on every validation scene of the Tay and out-of-distribution
benchmarks (:mod:`defoscan.benchmark.held_out`'s scenes, made once in ``WORK/tay`` and ``WORK/ood``), bins the cells
of each ``probability.tif`` against the scene's truth (:mod:`defoscan.benchmark.reliability`), prints the table and
writes it between ``<!-- reliability:begin -->`` and ``<!-- reliability:end -->`` of ``--table``. A scene's run is
kept (``WORK/reliability/``) and reused while the package source and the scene are unchanged.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from defoscan.benchmark.held_out import BENCHMARKS, ensure_scenes
from defoscan.benchmark.reliability import map_counts, markdown
from defoscan.benchmark.suite import scene_names, write_table
from defoscan.fingerprint import digest, file_identity, source_digest

SPLITS = (("tay", "Tay validation"), ("ood", "out-of-distribution validation"))


def scene_counts(scene_dir, name, out_dir):
    """The reliability counts of the CNN on one scene, from a kept run when it is still valid."""
    from defoscan.pipeline import detect

    base = os.path.join(scene_dir, name)
    mark = digest({"source": source_digest(), "files": [file_identity(base + ".csv")]})
    kept = os.path.join(out_dir, "kept.json")
    if not (os.path.exists(kept) and _read(kept).get("mark") == mark):
        detect([base + ".csv"], out_dir)
        with open(kept, "w") as handle:
            json.dump({"mark": mark}, handle)
    return map_counts(os.path.join(out_dir, "probability.tif"), base + "-truth.geojson")


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="real-data folder (default: DEFOSCAN_REAL_DATA or ../shared/data/real)")
    parser.add_argument("--work", required=True, help="work folder of the held-out benchmarks (make evaluate's)")
    parser.add_argument("--table", help="Markdown file to write the table into, between its markers")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = {}
    for benchmark, label in SPLITS:
        scene_dir = ensure_scenes(BENCHMARKS[benchmark], "validation", os.path.join(args.work, benchmark), args.data)
        total = None
        for name in scene_names(scene_dir):
            print(f"{label}: {name}", file=sys.stderr, flush=True)
            counts = scene_counts(scene_dir, name, os.path.join(args.work, "reliability", benchmark, name))
            total = counts if total is None else total + counts
        results[label] = total if total is not None else np.zeros((10, 3))
    table = markdown(results)
    print(table)
    print(f"reliability: {time.perf_counter() - started:.0f} s on {platform.node()}")
    if args.table:
        write_table(args.table, table + "\n", begin="<!-- reliability:begin -->", end="<!-- reliability:end -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
