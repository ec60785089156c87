"""Write the real-deformation scenes of one split of the Tay et al. (2022) cities (issue 18).

usage: python benchmarks/make_tay_scenes.py --split test --out DIR [--data DIR] [--seed N] [--per-city N]

The cities of the split come from ``src/defoscan/data/benchmarks/tay_split.json``; each gives up to ``--per-city``
tiles (:func:`defoscan.benchmark.tay_scenes.city_scenes`), written as ``scene-NNN`` with
:func:`defoscan.synth.scene.write_scene`, so ``defoscan.benchmark.suite.run_suite`` scores every detector on them.
Prints one line per scene (city, points, truths and their areas) and the tiles skipped.
"""

import argparse
import json
import os
import sys
import time
from importlib import resources

from defoscan.benchmark.tay_scenes import city_scenes
from defoscan.real_data import real_data_dir
from defoscan.synth.scene import write_scene

TAY_FOLDER = "10_tay_city_velocity"


def split_cities(split):
    """The cities of ``split`` (``test``, ``validation`` or ``training``), as the committed split file lists them."""
    text = resources.files("defoscan").joinpath("data", "benchmarks", "tay_split.json").read_text()
    return json.loads(text)[split]


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
    number = 0
    for index, city in enumerate(split_cities(args.split)):
        mark = time.perf_counter()
        # One seed per city (its place in the split), so a city's scenes do not depend on the others'.
        scenes, skipped = city_scenes(data, city, split=args.split, seed=[args.seed, index], per_city=args.per_city)
        for points, truths, info in scenes:
            number += 1
            write_scene(args.out, f"scene-{number:03d}", points, truths, info)
            areas = ", ".join(f"{t['kind']} {t['peak_velocity']:.0f} mm/yr {t['area_km2']:.1f} km2" for t in truths)
            print(f"scene-{number:03d} {city:16s} {len(points['x']):7d} points  {len(truths)} truths  {areas}")
        for skip in skipped:
            print(f"skipped  {city:16s} tile {skip['window']['rows']} {skip['window']['cols']}: {skip['why']}")
        print(f"         {city:16s} {time.perf_counter() - mark:.1f} s", flush=True)
    print(f"{number} scenes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
