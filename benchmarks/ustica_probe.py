"""What a model's Ustica T022 score rests on: the island as one window, changed one way at a time.

    .venv/bin/python benchmarks/ustica_probe.py [MODEL.safetensors]

Grids the EGMS L2b T022 points (read from ../shared/data/real) as ``detect`` does (50 m; gap-filled if the model
reads filled maps), puts the island (smaller than a window) in one window and prints the model's window probability
(and the peak of its cell map over the island, for a localising model) for the map as it is and for: the cells more
than 2 mm/yr from the island's median replaced by the median (in the southern third only, in the rest only); cells
shuffled; smoothed; clipped to +-2 mm/yr; a robust linear trend of velocity against the points' height removed.
docs/MODEL.md ("The real maps") quotes it."""

import sys

import numpy as np
import scipy.ndimage as ndi
import torch
from scipy.stats import theilslopes

from defoscan.despike import despike_points
from defoscan.fill import fill_array
from defoscan.io import read_inputs
from defoscan.model import load_model
from defoscan.model.inputs import window_input
from defoscan.pipeline import bundled_model_path
from defoscan.real_data import dataset_files, real_data_dir
from defoscan.scan import cell_probability, localise_mode
from defoscan.tracks import grid_inputs

T022 = dataset_files("ustica", real_data_dir() or "../shared/data/real")[0]  # real data: never bundled
CELL = 50.0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else str(bundled_model_path())
    torch.set_num_threads(2)
    model, card = load_model(path)
    model.eval()
    recipe = card["input"]
    (points,) = read_inputs([T022])
    grid = _grid(points)
    velocity = grid["velocity"].values

    def probability(v):
        """Window probability and, for a localising model, the peak of its cell map over the island."""
        read = v
        if recipe.get("fill"):  # the model reads the gap-filled map, as detect gives it
            read = fill_array(v, grid["count"].values, cell_size=CELL)
        window = np.full((recipe["window"],) * 2, np.nan, np.float32)
        window[20 : 20 + v.shape[0], 20 : 20 + v.shape[1]] = read
        with torch.inference_mode():
            output = model(torch.from_numpy(window_input(window[None], recipe)))
        cells = cell_probability(output, localise_mode(recipe)).numpy()[0]
        if cells.ndim == 0:
            return f"{float(cells):.3f}"
        island = cells[20 : 20 + v.shape[0], 20 : 20 + v.shape[1]][np.isfinite(v)]
        return f"{torch.sigmoid(output['logit'])[0].item():.3f} (cell map peak {island.max():.3f})"

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
        f"height trend removed ({100 * slope:.2f} mm/yr per 100 m)": _grid(detrended)["velocity"].values,
    }
    print(f"model {path}")
    for name, map_ in cases.items():
        print(f"{probability(map_)}  {name}")


def _grid(points):
    kept, _ = despike_points(points)
    (grid,) = grid_inputs([kept], cell_size=CELL)
    return grid


if __name__ == "__main__":
    main()
