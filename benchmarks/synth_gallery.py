"""Gallery of synthetic training samples, one per kind of deformation and two negatives, beside real maps.

Writes ``docs/figures/synth_gallery.png``: real maps first (Kirishima, the Shinmoedake crater, gridded at 50 m;
Ustica, EGMS track 022, a quiet island at 50 m), then one synthetic 128 x 128 sample at 50 m of every kind of
source (:data:`defoscan.synth.sources.KINDS`), an easy negative and a hard negative. The label mask (|LOS
deformation| >= 2 mm/yr) is outlined in black. Colour: LOS velocity, one symmetric scale per panel.

Run: ``.venv/bin/python benchmarks/synth_gallery.py [--seed S]``.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from pyproj import Transformer  # noqa: E402

from defoscan.figures import VELOCITY_CMAP, symmetric_limit  # noqa: E402
from defoscan.io import read_inputs  # noqa: E402
from defoscan.synth.sample import draw_sample  # noqa: E402
from defoscan.synth.sources import KINDS  # noqa: E402
from defoscan.tracks import grid_inputs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "figures", "synth_gallery.png")
SHAPE, CELL = (128, 128), 50.0
CRATER_LONLAT = (130.883, 31.911)


def _data(*parts):
    """A real map in the real-data folder (``DEFOSCAN_REAL_DATA`` or ``../shared/data/real``): never bundled."""
    from defoscan.real_data import DATASETS, real_data_dir

    folder = real_data_dir() or os.path.join("..", "shared", "data", "real")
    return os.path.join(folder, DATASETS[parts[0]][0], parts[-1])


def real_panels():
    """``(title, velocity)`` of the real examples, windows of at most 128 x 128 cells at 50 m."""
    kirishima = grid_inputs(read_inputs([_data("kirishima", "velocity.h5")]), cell_size=CELL)[0]
    x, y = Transformer.from_crs("EPSG:4326", kirishima.rio.crs, always_xy=True).transform(*CRATER_LONLAT)
    col = int(np.argmin(np.abs(kirishima["x"].values - x)))
    row = int(np.argmin(np.abs(kirishima["y"].values - y)))
    v = kirishima["velocity"].values
    r0, c0 = max(0, row - SHAPE[0] // 2), max(0, col - SHAPE[1] // 2)
    crater = v[r0 : r0 + SHAPE[0], c0 : c0 + SHAPE[1]]
    ustica = grid_inputs(read_inputs([_data("ustica", "EGMS_L2b_022_0845_IW2_VV_2020_2024_1.zip")]), cell_size=CELL)
    return [
        ("real: Kirishima (MintPy), Shinmoedake", crater),
        ("real: Ustica (EGMS L2b T022), stable", ustica[0]["velocity"].values),
    ]


def synthetic_panels(seed):
    """``(title, velocity, mask)`` of one sample per kind, an easy and a hard negative."""
    panels = []
    for i, kind in enumerate(KINDS):
        rng = np.random.default_rng([seed, i])
        for _ in range(20):  # the first draw whose deformation is seen (label 1)
            s = draw_sample(rng, shape=SHAPE, cell_size=CELL, positive=True, kinds=[kind])
            if s.label:
                break
        cov = s.info["coverage"]["coverage"]
        panels.append((f"{kind}, {cov:.0%} coverage, peak {s.info['peak_deformation']:.0f}", s.velocity, s.mask))
    for j, hard in enumerate((False, True)):
        s = draw_sample(np.random.default_rng([seed, 100 + j]), shape=SHAPE, cell_size=CELL, positive=False, hard=hard)
        atmosphere = s.info["conditions"]["atmosphere"]
        title = f"{'hard' if hard else 'easy'} negative, atmosphere {atmosphere['sigma']:.1f} mm/yr"
        panels.append((title, s.velocity, s.mask))
    return panels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)
    panels = [(t, v, None) for t, v in real_panels()] + synthetic_panels(args.seed)
    cols = 4
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), constrained_layout=True)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (title, velocity, mask) in zip(axes.ravel(), panels, strict=False):
        limit = symmetric_limit(velocity)
        ax.set_facecolor("0.85")
        image = ax.imshow(velocity, cmap=VELOCITY_CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
        if mask is not None and mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors="black", linewidths=0.7)
        ax.set_title(title, fontsize=8)
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, shrink=0.75, label="mm/yr")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    fig.savefig(args.out, dpi=64, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
