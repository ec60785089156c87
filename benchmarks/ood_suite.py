"""Score the detector and the baselines on out-of-distribution scenes at default settings (issue 18).

Runs the rows ``cnn``, ``threshold``, ``gistar`` and ``ada`` of :data:`defoscan.benchmark.suite.ROWS` on every
scene of ``--scenes`` (written by ``benchmarks/make_ood_scenes.py``) at ``detect``'s default cell size, then prints
the pooled scores per row and F1 per regime of each factor (from the per-scene results kept in ``--work``), and
writes them as JSON to ``--work/ood-results.json``. Interrupted runs resume (the suite keeps each result).

Usage::

    python benchmarks/ood_suite.py --scenes /tmp/ood-test --work /tmp/ood-work
"""

import argparse
import json
import os
import time

from defoscan.benchmark import suite
from defoscan.benchmark.ood_scenes import REGIMES

ROW_NAMES = ("cnn", "threshold", "gistar", "ada")


def by_regime(scene_dir, work_dir, row, names):
    """``{factor: {regime: pooled}}`` of one row's kept per-scene results."""
    table = {}
    for factor in REGIMES:
        groups = {}
        for name in names:
            with open(os.path.join(scene_dir, name + ".json")) as handle:
                regime = json.load(handle)["regime"][factor]
            with open(os.path.join(work_dir, row, name + ".json")) as handle:
                groups.setdefault(regime, []).append(json.load(handle)["result"])
        table[factor] = {regime: suite.pool(results) for regime, results in sorted(groups.items())}
    return table


def _number(value):
    return "-" if value is None else f"{value:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    rows = [row for row in suite.ROWS if row.name in ROW_NAMES]
    times = []

    def progress(done, total, description):
        times.append(time.perf_counter())
        print(f"[{done}/{total}] {description}", flush=True)

    result = suite.run_suite(args.scenes, args.work, rows=rows, real=False, progress=progress, scene_cell_size=False)
    runs = len(times) - 1
    print(f"{runs} runs, {(times[-1] - times[0]) / max(runs, 1):.1f} s per run (row x scene) on average")
    output = {"suite": result, "by_regime": {}}
    for entry in result["rows"]:
        p = entry["pooled"]
        print(
            f"{entry['name']:10s} F1 {_number(p['f1'])} precision {_number(p['precision'])}"
            f" recall {_number(p['recall'])}"
            f" truths {p['truths']} found {p['found']} detections {p['detections']}"
            f" false alarms (signal-free) {p['false_alarms']} = {_number(p['false_alarms_per_1000_km2'])} /1000 km2"
            f" over {p['area_km2']:.0f} km2; with signals {p['false_alarms_with_signals']}"
        )
        output["by_regime"][entry["name"]] = by_regime(args.scenes, args.work, entry["name"], result["scenes"])
    for factor in REGIMES:
        print(f"F1 (recall) by {factor}:")
        for regime in output["by_regime"][ROW_NAMES[0]][factor]:
            cells = [
                f"{name} {_number(output['by_regime'][name][factor][regime]['f1'])}"
                f" ({_number(output['by_regime'][name][factor][regime]['recall'])})"
                for name in output["by_regime"]
            ]
            print(f"  {regime:12s} " + "  ".join(cells))
    with open(os.path.join(args.work, "ood-results.json"), "w") as handle:
        json.dump(output, handle, indent=1)


if __name__ == "__main__":
    main()
