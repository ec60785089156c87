"""Inference throughput: the compact network against the AlexNet-style one (the paper's), on this CPU.

Two figures per network, both in the same run so their ratio is fair:

- **windows/s**: forward passes of batches of 32 windows of random channels (the speed does not depend on the
  weights), median of ``repeats`` timed batches after two warm-ups, with 1 and with 2 torch threads.
- **km^2/s**: :func:`defoscan.scan.scan_probability` over a map of 512 x 512 cells of 50 m (655 km^2) with 60 %
  of its cells holding data in patches, stride a quarter window, inputs made and blended (the whole scan as
  ``detect`` runs it), 2 threads.

The compact net is the shipped model's architecture (``defoscan/data/model``; the card says which, with or without
the per-pixel head, whose map the scan then blends) on 128-cell windows; the AlexNet-style net runs on the same
128-cell windows and, as the paper did, on 227-cell windows.
The AlexNet-style network is the baseline of the ratios.
"""

import json
import statistics
import time
from importlib.resources import files

import numpy as np
import torch
from scipy import ndimage

from defoscan.model import build_model
from defoscan.model.inputs import DEFAULT_RECIPE, input_channels
from defoscan.model.networks import for_inference
from defoscan.scan import scan_probability

NAME = "scan"
MAP_CELLS = 512
CELL = 50.0
BATCH = 32


def _compact_options():
    card = files("defoscan") / "data" / "model" / "defoscan-compact.json"
    try:
        options = json.loads(card.read_text())["options"]
    except (OSError, ValueError, KeyError):
        options = {"width": 16, "fcn": False, "separable": False}
    return {k: v for k, v in options.items() if k != "seed"}


def _windows_per_second(model, window, threads, repeats):
    torch.set_num_threads(threads)
    x = torch.randn(BATCH, input_channels(DEFAULT_RECIPE), window, window)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return BATCH / statistics.median(times)


def _test_map(seed=0):
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((MAP_CELLS, MAP_CELLS)), 6)
    velocity = rng.normal(0.0, 2.0, (MAP_CELLS, MAP_CELLS)).astype(np.float32)
    velocity[field < np.quantile(field, 0.4)] = np.nan
    return velocity


def run(ctx):
    """Time both networks; print and return the results."""
    repeats = 2 if ctx.quick else max(ctx.repeats, 5)
    channels = input_channels(DEFAULT_RECIPE)
    compact = _compact_options()
    nets = {
        # as detect runs them: batch norms folded into the convolutions (AlexNet has none)
        "compact, 128": (for_inference(build_model("compact", channels, **compact)), 128),
        "alexnet, 128": (for_inference(build_model("alexnet", channels)), 128),
        "alexnet, 227": (for_inference(build_model("alexnet", channels)), 227),
    }
    results = {"batch": BATCH, "repeats": repeats, "map_cells": MAP_CELLS, "cell_m": CELL, "nets": {}}
    for name, (model, window) in nets.items():
        rates = {t: _windows_per_second(model, window, t, repeats) for t in (1, 2)}
        results["nets"][name] = {"window": window, "windows_per_s": rates}
        print(f"  {name}: {rates[1]:.1f} windows/s (1 thread), {rates[2]:.1f} (2 threads)", flush=True)
    velocity = _test_map()
    area = MAP_CELLS**2 * (CELL / 1000.0) ** 2
    torch.set_num_threads(2)
    sizes = (128,) if ctx.quick else (128, 227)
    for name, (model, window) in nets.items():
        if window not in sizes:
            continue
        # The shipped compact net with a per-pixel head is scanned as detect scans it: blending its per-pixel map.
        localise = "product" if name.startswith("compact") and compact["fcn"] else "window"
        recipe = {**DEFAULT_RECIPE, "window": window, "localise": localise}
        start = time.perf_counter()
        scan_probability(velocity, model, recipe)
        seconds = time.perf_counter() - start
        results["nets"][name].update(scan_s=seconds, km2_per_s=area / seconds)
        print(f"  {name}: scan of {area:.0f} km2 in {seconds:.1f} s ({area / seconds:.1f} km2/s)", flush=True)
    markdown = _markdown(results)
    print()
    print(markdown)
    return {"summary": results, "markdown": markdown}


def _markdown(results):
    base = results["nets"]["alexnet, 128"]
    lines = [
        f"Forward passes of batches of {results['batch']} windows (median of {results['repeats']}), and the whole "
        f"scan of a {results['map_cells']} x {results['map_cells']} map of {results['cell_m']:g} m cells (stride a "
        "quarter window, inputs and blending included, 2 threads). Ratios against the AlexNet-style net on the same "
        "128-cell windows, measured in the same run.",
        "",
        "| network, window | windows/s, 1 thread | windows/s, 2 threads | x AlexNet (2 threads) | scan km2/s | "
        "x AlexNet (scan) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results["nets"].items():
        rate = r["windows_per_s"]
        km2 = r.get("km2_per_s")
        scan = f"{km2:.1f}" if km2 else "-"
        scan_ratio = f"{km2 / base['km2_per_s']:.2f}" if km2 and base.get("km2_per_s") else "-"
        lines.append(
            f"| {name} | {rate[1]:.1f} | {rate[2]:.1f} | {rate[2] / base['windows_per_s'][2]:.2f} | {scan} | "
            f"{scan_ratio} |"
        )
    return "\n".join(lines)
