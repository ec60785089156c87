"""Rebuild ``src/defoscan/data/coverage/real_masks.npz``: where real sparse velocity maps have data.

Each mask is a real map gridded with the project's own reader and gridding (``read_inputs`` + ``grid_inputs``) at a
few cell sizes; True where a cell holds data. Sources (read from the real-data folder, ``DEFOSCAN_REAL_DATA`` or
``../shared/data/real``; never bundled):

- Ustica EGMS L2b, tracks 022 (descending) and 117 (ascending): an island, sea = no data. 25, 50 and 100 m cells.
- Kirishima MintPy velocity, thinned by its own temporal coherence (``temporalCoherence.h5``)
  at ``KIRISHIMA_COHERENCE``: the file keeps 96 % of its pixels, which is not what a sparse map looks like; at 0.997
  the holes follow the loss of coherence (vegetated slopes, the active crater) and 22-35 % of the cells keep data.
  Cropped to the largest rectangle inside the raster's footprint (the warp to UTM leaves empty slivers at the edges,
  which are no survey, not no data). 25, 50 and 100 m cells.
- Amsterdam DePSI scatterers (2,500 points over 280 x 85 m, a selection polygon of a dense urban area): cropped to
  the largest rectangle inside the points' convex hull (outside it is unsurveyed, not empty). 5 m cells.

The file holds, per mask ``i``: ``mask_<i>`` (``numpy.packbits`` of the row-major mask), and the arrays ``names``,
``cell_sizes`` (m), ``shapes`` (rows, columns) and ``mean_counts`` (points, or source pixels, per cell with data).

Run from the repository root: ``.venv/bin/python benchmarks/make_coverage_masks.py``. With ``--fit`` it instead
fits the clustered model to each bundled mask (``defoscan.synth.coverage.fit_clustered_coverage``) and prints, as a
markdown table, the mask's statistics beside those of the fitted model (mean of 4 fresh draws) and of a uniform
random mask of the same coverage (``docs/synth-coverage.md`` quotes it).
"""

import argparse
import os
import time
from pathlib import Path

import h5py
import numpy as np
from skimage.morphology import convex_hull_image

from defoscan.io import read_inputs
from defoscan.synth.coverage import clustered_coverage, coverage_statistics, fit_clustered_coverage, real_masks
from defoscan.tracks import grid_inputs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "defoscan" / "data" / "coverage" / "real_masks.npz"
REAL = Path(os.environ.get("DEFOSCAN_REAL_DATA") or ROOT.parent / "shared" / "data" / "real")  # never bundled
USTICA = {
    "ustica_egms_l2b_022": REAL / "03_egms_ustica_italy/EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip",
    "ustica_egms_l2b_117": REAL / "03_egms_ustica_italy/EGMS_L2b_117_0227_IW2_VV_2020_2024_1.zip",
}
KIRISHIMA = REAL / "01_kirishima_mintpy_alos2/velocity.h5"
KIRISHIMA_COHERENCE_FILE = REAL / "01_kirishima_mintpy_alos2/temporalCoherence.h5"
KIRISHIMA_COHERENCE = 0.997
AMSTERDAM = REAL / "08_amsterdam_depsi_stmtools/example.csv"
CELL_SIZES = {"ustica": (25.0, 50.0, 100.0), "kirishima": (25.0, 50.0, 100.0), "amsterdam": (5.0,)}


def largest_rectangle(inside):
    """``(row0, row1, col0, col1)`` of the largest all-True axis-aligned rectangle (the histogram-stack method)."""
    rows, cols = inside.shape
    heights = np.zeros(cols, dtype=int)
    best, box = 0, (0, 0, 0, 0)
    for r in range(rows):
        heights = np.where(inside[r], heights + 1, 0)
        stack = []  # column indices with increasing heights
        for c in range(cols + 1):
            h = heights[c] if c < cols else 0
            while stack and heights[stack[-1]] >= h:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = heights[top] * (c - left)
                if area > best:
                    best, box = area, (r - heights[top] + 1, r + 1, left, c)
            stack.append(c)
    return box


def _observed(grid):
    return np.isfinite(grid["velocity"].values)


def _entry(name, cell_size, grid, box=None):
    observed = _observed(grid)
    count = grid["count"].values
    if box is not None:
        r0, r1, c0, c1 = box
        observed, count = observed[r0:r1, c0:c1], count[r0:r1, c0:c1]
    return {
        "name": name,
        "cell_size": cell_size,
        "mask": observed,
        "mean_count": float(count[observed].mean()),
    }


def ustica_masks():
    entries = []
    for name, path in USTICA.items():
        points = read_inputs([path])
        for cell_size in CELL_SIZES["ustica"]:
            (grid,) = grid_inputs(points, cell_size=cell_size)
            entries.append(_entry(name, cell_size, grid))
    return entries


def kirishima_masks():
    (raster,) = read_inputs([KIRISHIMA])
    with h5py.File(KIRISHIMA_COHERENCE_FILE, "r") as handle:
        coherence = handle["temporalCoherence"][()]
    thinned = raster.copy()
    thinned["velocity"] = raster["velocity"].where(coherence >= KIRISHIMA_COHERENCE)
    footprint = raster.copy()
    footprint["velocity"] = raster["velocity"].fillna(0.0) * 0.0 + 1.0  # data everywhere: the survey's outline
    entries = []
    for cell_size in CELL_SIZES["kirishima"]:
        (grid,) = grid_inputs([thinned], cell_size=cell_size)
        (outline,) = grid_inputs([footprint], cell_size=cell_size)
        # The outline's edge cells are only partly inside the survey: keep cells whose four neighbours are in too.
        inside = _observed(outline)
        inside[1:-1, 1:-1] &= inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
        inside[[0, -1], :] = False
        inside[:, [0, -1]] = False
        name = f"kirishima_mintpy_coh{KIRISHIMA_COHERENCE:g}"
        entries.append(_entry(name, cell_size, grid, largest_rectangle(inside)))
    return entries


def amsterdam_masks():
    points = read_inputs([AMSTERDAM])
    entries = []
    for cell_size in CELL_SIZES["amsterdam"]:
        (grid,) = grid_inputs(points, cell_size=cell_size)
        hull = convex_hull_image(_observed(grid))
        entries.append(_entry("amsterdam_depsi", cell_size, grid, largest_rectangle(hull)))
    return entries


STAT_KEYS = ("gap_median_m", "gap_p90_m", "clusters_per_km2", "surrounded_fraction")


def fit_report(min_cells=2000):
    """Markdown table: each bundled mask's statistics, the fitted model's and a uniform random mask's."""
    header = "gap median m, gap p90 m, clusters/km², surrounded"
    print(
        f"| mask | cell | coverage | fitted scale, voids, speckle, landuse | fit s | real: {header} | model | uniform |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, cell_size, mask in real_masks():
        if mask.size < min_cells:
            continue
        start = time.perf_counter()
        params = fit_clustered_coverage(mask, cell_size)
        seconds = time.perf_counter() - start
        model = [
            coverage_statistics(
                clustered_coverage(mask.shape, np.random.default_rng(s), cell_size=cell_size, **params)[0], cell_size
            )
            for s in range(1000, 1004)
        ]
        rng = np.random.default_rng(0)
        uniform = np.zeros(mask.size, dtype=bool)
        uniform[rng.permutation(mask.size)[: mask.sum()]] = True
        rows = [
            [coverage_statistics(mask, cell_size)[k] for k in STAT_KEYS],
            [float(np.mean([m[k] for m in model])) for k in STAT_KEYS],
            [coverage_statistics(uniform.reshape(mask.shape), cell_size)[k] for k in STAT_KEYS],
        ]
        cells = [", ".join(f"{v:.0f}" if i < 2 else f"{v:.2f}" for i, v in enumerate(row)) for row in rows]
        fitted = ", ".join(f"{params[k]:.2f}" for k in ("scale", "voids", "speckle", "landuse"))
        print(
            f"| {name} | {cell_size:g} m | {mask.mean():.3f} | {fitted} | {seconds:.0f} | " + " | ".join(cells) + " |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--fit", action="store_true", help="print the fit report instead of writing the masks")
    args = parser.parse_args()
    if args.fit:
        fit_report()
        return
    entries = ustica_masks() + kirishima_masks() + amsterdam_masks()
    arrays = {
        "names": np.array([e["name"] for e in entries]),
        "cell_sizes": np.array([e["cell_size"] for e in entries]),
        "shapes": np.array([e["mask"].shape for e in entries], dtype=np.int64),
        "mean_counts": np.array([e["mean_count"] for e in entries]),
    }
    for i, entry in enumerate(entries):
        arrays[f"mask_{i}"] = np.packbits(entry["mask"].ravel())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    for entry in entries:
        mask = entry["mask"]
        print(
            f"{entry['name']:32s} {entry['cell_size']:6g} m  {mask.shape[0]:4d} x {mask.shape[1]:4d}  "
            f"coverage {mask.mean():.3f}  points/cell {entry['mean_count']:.1f}"
        )
    print(f"{args.out}: {args.out.stat().st_size / 1024:.1f} kB")


if __name__ == "__main__":
    main()
