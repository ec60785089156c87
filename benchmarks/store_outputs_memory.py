"""Peak memory and time of writing a COG from a Zarr store block by block, against the map's size.

    .venv/bin/python benchmarks/store_outputs_memory.py [--sizes 4096 16384] [--chunk 1024] [--coverage 0.3]

For each size a store holds one float32 ``velocity`` map, mostly NaN as a country's is: a fraction ``--coverage``
of its chunks hold data (noisy smooth field, a third of their cells empty), the others none. A fresh process then
writes it with :func:`defoscan.store_outputs.write_cog_from_arrays` and reports its wall time, CPU time, resident
memory once imports are done and peak resident memory (VmHWM): the peak should not grow with the map's area. For
sizes up to ``--whole-up-to`` the same map is also written by :func:`defoscan.outputs.write_cog` (whole array in
memory) as the reference. Not a test, and not in ``benchmarks/run.py``: run it alone on an idle machine.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import zarr
from affine import Affine

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from process_stats import cpu_seconds, peak_mib  # noqa: E402

TRANSFORM = Affine(50, 0, 3_000_000, 0, -50, 4_000_000)
CRS = "EPSG:3035"


def make_store(path, size, chunk, coverage, seed=7):
    """A ``size x size`` store written chunk by chunk (never whole); returns the fraction of cells with data."""
    group = zarr.open_group(path, mode="w")
    group.attrs.update(origin=[0, 0], shape=[size, size])
    velocity = group.create_array(
        "velocity", shape=(size, size), chunks=(chunk, chunk), dtype="float32", fill_value=np.nan
    )
    rng = np.random.default_rng(seed)
    n = -(-size // chunk)
    filled = 0
    for i in range(n):
        for j in range(n):
            if rng.random() >= coverage:
                continue
            rows, columns = min(chunk, size - i * chunk), min(chunk, size - j * chunk)
            y, x = np.mgrid[0:rows, 0:columns] / 200.0
            block = (10 * np.sin(x + i) * np.cos(y - j) + rng.normal(0, 1, (rows, columns))).astype(np.float32)
            block[rng.random((rows, columns)) < 1 / 3] = np.nan
            velocity[i * chunk : i * chunk + rows, j * chunk : j * chunk + columns] = block
            filled += int(np.isfinite(block).sum())
    return filled / size**2


def child(path, out, mode):
    """Write the store's map as a COG in this process; print its figures as JSON."""
    from defoscan.outputs import write_cog
    from defoscan.store_outputs import write_cog_from_arrays

    velocity = zarr.open_group(path, mode="r")["velocity"]
    rss_imports = _rss_mib()
    start, (cpu_start, _) = time.perf_counter(), cpu_seconds()
    if mode == "blocks":
        write_cog_from_arrays(out, [("velocity", velocity)], TRANSFORM, CRS, tags={"units": "mm/yr"})
    else:
        write_cog(out, [("velocity", velocity[...])], TRANSFORM, CRS, tags={"units": "mm/yr"})
    figures = {
        "wall_s": time.perf_counter() - start,
        "cpu_s": cpu_seconds()[0] - cpu_start,
        "rss_after_imports_mib": rss_imports,
        "peak_mib": peak_mib(),
        "cog_mib": os.path.getsize(out) / 2**20,
    }
    print(json.dumps(figures))


def _rss_mib():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--coverage", type=float, default=0.3, help="fraction of chunks holding data")
    parser.add_argument("--whole-up-to", type=int, default=4096, help="also run write_cog up to this size")
    parser.add_argument("--child", nargs=3, metavar=("STORE", "OUT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"chunks of {args.chunk}, {args.coverage:.0%} of chunks with data")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
            store = os.path.join(tmp, "s.zarr")
            fraction = make_store(store, size, args.chunk, args.coverage)
            modes = ["blocks"] + (["whole"] if size <= args.whole_up_to else [])
            for mode in modes:
                out = os.path.join(tmp, f"{mode}.tif")
                run = subprocess.run(
                    [sys.executable, __file__, "--child", store, out, mode], capture_output=True, text=True, check=True
                )
                f = json.loads(run.stdout.strip().splitlines()[-1])
                name = "write_cog_from_arrays" if mode == "blocks" else "write_cog (whole)"
                print(
                    f"{size} x {size} ({fraction:.1%} cells with data) {name}: {f['wall_s']:.1f} s wall, "
                    f"{f['cpu_s']:.1f} s CPU, RSS after imports {f['rss_after_imports_mib']:.0f} MiB, "
                    f"peak {f['peak_mib']:.0f} MiB, COG {f['cog_mib']:.0f} MiB"
                )


if __name__ == "__main__":
    main()
