"""``detect`` on the demo's scene (seeded, 12 x 12 km at 50 m, the bundled CNN) in a warm process: median of 5 runs.

Compare two trees in one session (BENCHMARKS.md, "one pipeline")::

    PYTHONPATH=/path/to/before/src .venv/bin/python benchmarks/demo_detect_time.py before
    PYTHONPATH=src .venv/bin/python benchmarks/demo_detect_time.py after

Prints the machine, the median, every run and the detections (the same on both sides when nothing changed).
"""

import os
import platform
import statistics
import sys
import tempfile
import time

from defoscan.demo import CELL_SIZE, SEED, SHAPE
from defoscan.synth.scene import make_scene, write_scene

try:
    from defoscan.pipeline import detect
except ImportError:  # a tree from before issue 17
    from defoscan.detect import detect


def main(label):
    work = tempfile.mkdtemp()
    points, truths, info = make_scene(SEED, shape=SHAPE, cell_size=CELL_SIZE)
    csv, _, _ = write_scene(work, "scene", points, truths, info)
    detect([csv], os.path.join(work, "warm"))  # imports, the model's first load
    times = []
    for run in range(5):
        started = time.perf_counter()
        result = detect([csv], os.path.join(work, f"out{run}"))
        times.append(time.perf_counter() - started)
    print(f"command: PYTHONPATH=... python benchmarks/demo_detect_time.py {label}")
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(
        f"{label}: detect on the demo scene, median {statistics.median(times):.3f} s of "
        f"{[round(t, 2) for t in times]}; {len(result['detections'])} detections"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "this tree")
