"""Tune every detector on validation scenes (never the test suite of docs/EVALUATION.md).

    .venv/bin/python benchmarks/scene_cutoffs.py --scenes VALIDATION_SCENES --work DIR [--json OUT.json]
        [--scene-cell-size]

VALIDATION_SCENES is a benchmark's validation split, e.g. a scene suite drawn with another seed than the
benchmark's (``make evaluate`` uses seed 7):

    defoscan synth --scenes --n 8 --seed 8 --shape 600 --per-kind 2 --positive-fraction 0.75 \
        --profile evaluation-work/fitted.json --out validation-scenes

Each scene is run through ``defoscan detect`` at its default cell size (``--scene-cell-size``: at the scene's own)
by the CNN and by the thresholding detector (all outputs kept); then the CNN's probability cut-off (with its
hysteresis ratio) is swept over the CNN's maps, and each baseline's grid of :data:`defoscan.benchmark.tuning.GRIDS`
(the same budget for each) over the gridded map the baselines see (:func:`defoscan.benchmark.tuning.tune`).
Printed per detector and combination: F1, precision, recall, false alarms per 1000 km² of the signal-free scenes;
the chosen one (the best F1 within the goal's 1 per 1000 km², else the best overall) is marked. ``--json`` writes
the choices, which :func:`defoscan.benchmark.tuning.tuned_rows` makes rows of the suite.
"""

import argparse
import json
import time

from defoscan.benchmark.suite import scene_names
from defoscan.benchmark.tuning import GRIDS, scene_maps, tune

CNN_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.453, 0.5, 0.55, 0.6, 0.7)


def print_sweep(result):
    """The sweep of one detector as a table, the choice marked ``*``."""
    print(
        f"\n{result['detector']} ({result['scenes']} validation scenes, {result['scenes_with_signals']} with "
        f"{result['truths']} truths, {result['signal_free_km2'] or 0:.0f} km² signal-free; * chosen: {result['rule']})"
    )
    print("     F1  precision  recall  FA/1000 km2 signal-free  parameters")
    for index, entry in enumerate(result["sweep"]):
        mark = "*" if index == result["chosen"] else " "
        fa = entry["false_alarms_per_1000_km2"]
        shown = ", ".join(f"{name} {value:g}" for name, value in entry["parameters"].items())
        print(
            f"{mark}{entry['f1'] or 0:5.3f}  {entry['precision'] or 0:9.3f}  {entry['recall'] or 0:6.3f}  "
            f"{'-' if fa is None else f'{fa:23.2f}'}  {shown}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--json")
    parser.add_argument("--scene-cell-size", action="store_true", help="grid at each scene's own cell size")
    args = parser.parse_args(argv)
    names = scene_names(args.scenes)
    started = time.perf_counter()
    maps = {}
    for detector in ("cnn", "threshold"):  # the CNN's maps; the gridded map every baseline sees
        maps[detector] = []
        for name in names:
            print(f"detect {detector} {name}", flush=True)
            maps[detector].append(
                scene_maps(args.scenes, name, args.work, scene_cell_size=args.scene_cell_size, detector=detector)
            )
    print(f"detect: {time.perf_counter() - started:.0f} s", flush=True)
    results = {"cnn": tune("cnn", maps["cnn"], {"threshold": CNN_THRESHOLDS})}
    for detector in GRIDS:
        mark = time.perf_counter()
        results[detector] = tune(detector, maps["threshold"])
        print(f"{detector}: {len(results[detector]['sweep'])} combinations in {time.perf_counter() - mark:.0f} s")
    for result in results.values():
        print_sweep(result)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
