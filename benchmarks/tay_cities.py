"""Every detector on every city map of Tay et al. (2022): detections per city and detector, and any failure.

usage: python benchmarks/tay_cities.py [--data DIR] [--detectors cnn,threshold,gistar,ada] [CITY ...]

Each city's four tiles are merged (tests/realmaps.py) into a temporary GeoTIFF and run through
``defoscan.pipeline.detect`` with its defaults. Prints one line per city and detector: detections (subsidence /
uplift), whether every detection's sign agrees with its relative velocities, the seconds taken, or the error. Exit
status 1 if any run failed or broke an invariant (issue 16).
"""

import argparse
import os
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from defoscan.pipeline import detect  # noqa: E402
from realmaps import merge_tay_city, tay_cities  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "real", "10_tay_city_velocity")


def consistent(frame):
    """Whether sign, mean_relative and peak_relative agree and every detection has a polygon."""
    sign = np.where(frame["sign"] == "subsidence", -1, 1)
    return bool(
        frame.geometry.notna().all()
        and (np.sign(frame["mean_relative"]) == sign).all()
        and (np.sign(frame["peak_relative"]) == sign).all()
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cities", nargs="*")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--detectors", default="cnn,threshold,gistar,ada")
    args = parser.parse_args(argv)
    cities = args.cities or tay_cities(args.data)
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for city in cities:
            path = merge_tay_city(args.data, city, os.path.join(work, f"{city}.tif"))
            for detector in args.detectors.split(","):
                mark = time.perf_counter()
                try:
                    frame = detect([path], os.path.join(work, f"{city}-{detector}"), detector=detector)["detections"]
                    ok = consistent(frame)
                    down = int((frame["sign"] == "subsidence").sum())
                    line = f"{len(frame)} ({down} subsidence / {len(frame) - down} uplift) consistent={ok}"
                    failed += not ok
                except Exception as error:  # report and go on: the point is to find every failure
                    line = f"FAILED {type(error).__name__}: {error}"
                    traceback.print_exc(file=sys.stderr)
                    failed += 1
                print(f"{city:18s} {detector:9s} {time.perf_counter() - mark:6.1f} s  {line}", flush=True)
    print(f"{len(cities)} cities, {failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
