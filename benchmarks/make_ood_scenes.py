"""Write out-of-distribution scenes (issue 18, defoscan.benchmark.ood_scenes) for the scene benchmark.

Usage::

    python benchmarks/make_ood_scenes.py --out DIR --n 16 --seed 21
"""

import argparse
import json
import os
import time

from defoscan.benchmark.ood_scenes import write_ood_suite


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write scene-NNN.csv/-truth.geojson/.json into")
    parser.add_argument("--n", type=int, default=16, help="number of scenes")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = write_ood_suite(args.out, args.n, args.seed)
    for name in names:
        with open(os.path.join(args.out, name + ".json")) as handle:
            info = json.load(handle)
        truths = len({signal["truth"] for signal in info["signals"]})
        regime = " ".join(f"{k}={v}" for k, v in info["regime"].items())
        print(f"{name}: {regime} shape={info['shape']} points={info['points']} truths={truths}")
    print(f"{len(names)} scenes in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
