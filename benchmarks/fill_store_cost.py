"""What filling a map chunk by chunk from the store costs against filling it whole.

    .venv/bin/python benchmarks/fill_store_cost.py [--size 3072] [--chunk 1024] [--coverage 0.15]

A synthetic map (``defoscan.benchmark.truth_fields.synthetic_map``) is filled whole by ``defoscan.fill.fill_array``
and then from a store by ``defoscan.fill_store.fill_store`` (each tile of the global tiling solved once by the chunk
that owns it, then blended chunk by chunk); prints both wall times, their ratio, and the largest difference between
the two maps. docs/DESIGN-NOTES.md and ``defoscan.fill_store`` quote it.
"""

import argparse
import os
import platform
import tempfile
import time

import numpy as np

from defoscan.benchmark.truth_fields import synthetic_map
from defoscan.fill import fill_array
from defoscan.fill_store import fill_store
from defoscan.scan_store import write_map


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3072)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--coverage", type=float, default=0.15)
    args = parser.parse_args(argv)
    sample = synthetic_map((args.size, args.size), args.coverage, 7)
    origin = (-123_457, 9_871)
    start = time.perf_counter()
    whole = fill_array(sample.velocity, sample.count, cell_size=50.0, origin=origin)
    whole_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.zarr")
        write_map(path, sample.velocity, origin, chunk=args.chunk, count=sample.count)
        start = time.perf_counter()
        stored = fill_store(path, cell_size=50.0, chunk=args.chunk)[...]
        store_s = time.perf_counter() - start
    difference = float(np.nanmax(np.abs(stored - whole)))
    same_nan = bool(np.array_equal(np.isnan(stored), np.isnan(whole)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"map {args.size} x {args.size}, coverage {args.coverage:.0%}, chunks of {args.chunk}")
    print(f"whole: {whole_s:.1f} s; store, chunk by chunk: {store_s:.1f} s; ratio {store_s / whole_s:.2f}")
    print(f"largest difference {difference:.2e} mm/yr; same cells left empty: {same_nan}")


if __name__ == "__main__":
    main()
