"""Write the real-deformation scenes of one split of the Tay et al. (2022) cities (issue 18).

usage: python benchmarks/make_tay_scenes.py --split test --out DIR [--data DIR] [--seed N] [--per-city N]

The cities of the split come from ``src/defoscan/data/benchmarks/tay_split.json``; each gives up to ``--per-city``
tiles (:func:`defoscan.benchmark.tay_scenes.city_scenes`), written as ``scene-NNN`` with
:func:`defoscan.synth.scene.write_scene`, so ``defoscan.benchmark.suite.run_suite`` scores every detector on them.
Prints one line per scene (city, points, truths and their areas) and the tiles skipped.
"""

import argparse
import os
import sys
import time

from defoscan.benchmark.tay_scenes import write_tay_suite
from defoscan.real_data import real_data_dir

TAY_FOLDER = "10_tay_city_velocity"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"the {TAY_FOLDER} folder (default: the real-data folder's)")
    parser.add_argument("--split", choices=("test", "validation", "training"), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-city", type=int, default=1)
    args = parser.parse_args(argv)
    data = args.data or os.path.join(real_data_dir() or "", TAY_FOLDER)
    if not os.path.isdir(data):
        parser.error(f"no such folder: {data} (give --data)")
    mark = time.perf_counter()
    number = write_tay_suite(data, args.split, args.out, seed=args.seed, per_city=args.per_city, report=print)
    print(f"{number} scenes in {args.out} ({time.perf_counter() - mark:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
