"""What a model's Ustica T022 score rests on: the island as one window, changed one way at a time.

    .venv/bin/python benchmarks/ustica_probe.py [MODEL.safetensors]

Grids the bundled EGMS L2b T022 points as ``detect`` does (50 m), puts the island (smaller than a window) in one
window and prints the model's window probability for the map as it is and for: the cells more than 2 mm/yr from
the island's median replaced by the median (in the southern third only, in the rest only); cells shuffled;
smoothed; clipped to +-2 mm/yr; a robust linear trend of velocity against the points' height removed.
docs/MODEL.md ("The bundled real maps") quotes it.
"""

import sys

import numpy as np
import scipy.ndimage as ndi
import torch
from scipy.stats import theilslopes

from defoscan.despike import despike_points
from defoscan.detect import bundled_model_path
from defoscan.grid import grid_inputs
from defoscan.io import read_inputs
from defoscan.model import load_model
from defoscan.model.inputs import window_input

T022 = "src/defoscan/data/ustica/EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else str(bundled_model_path())
    torch.set_num_threads(2)
    model, card = load_model(path)
    model.eval()
    recipe = {**card["input"], "localise": False}
    (points,) = read_inputs([T022])
    velocity = _grid(points)

    def probability(v):
        window = np.full((recipe["window"],) * 2, np.nan, np.float32)
        window[20 : 20 + v.shape[0], 20 : 20 + v.shape[1]] = v
        with torch.inference_mode():
            return torch.sigmoid(model(torch.from_numpy(window_input(window[None], recipe)))["logit"]).item()

    median = np.nanmedian(velocity)
    far = np.abs(np.nan_to_num(velocity - median)) > 2.0
    south = np.zeros_like(far)
    south[2 * velocity.shape[0] // 3 :] = True
    rng = np.random.default_rng(0)
    shuffled = velocity.copy()
    seen = np.isfinite(velocity)
    shuffled[seen] = rng.permutation(velocity[seen])
    weight = ndi.gaussian_filter(seen.astype(float), 4)
    smooth = ndi.gaussian_filter(np.nan_to_num(velocity - median), 4) / np.maximum(weight, 1e-3)
    h, v = points["height"].values, points["velocity"].values
    ok = np.isfinite(h) & np.isfinite(v)
    slope = theilslopes(v[ok][::3], h[ok][::3])[0]
    detrended = points.copy()
    detrended["velocity"] = points["velocity"] - slope * (points["height"] - np.nanmedian(h))
    cases = {
        "as it is": velocity,
        f"{int((far & south).sum())} far cells of the southern third set to the median": np.where(
            far & south, median, velocity
        ),
        f"{int((far & ~south).sum())} far cells elsewhere set to the median": np.where(far & ~south, median, velocity),
        "cells shuffled": shuffled,
        "smoothed (sigma 4 cells)": np.where(seen, median + smooth, np.nan),
        "clipped to +-2 mm/yr": np.clip(velocity, median - 2, median + 2),
        f"height trend removed ({100 * slope:.2f} mm/yr per 100 m)": _grid(detrended),
    }
    print(f"model {path}")
    for name, map_ in cases.items():
        print(f"{probability(map_):.3f}  {name}")


def _grid(points):
    kept, _ = despike_points(points)
    (grid,) = grid_inputs([kept])
    return grid["velocity"].values


if __name__ == "__main__":
    main()
