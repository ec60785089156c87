"""Real maps assembled for tests and benchmarks from /work/shared/data/real (never copied into the repository)."""

import os

import numpy as np
import rasterio

from defoscan.benchmark.tay_scenes import TILES as TAY_TILES
from defoscan.benchmark.tay_scenes import merged_city


def tay_cities(directory):
    """Names of the Tay et al. (2022) cities whose four tiles lie in ``directory``, sorted."""
    names = {f.rsplit("_", 1)[0] for f in os.listdir(directory) if f.endswith(".tif")}
    return sorted(n for n in names if all(os.path.isfile(os.path.join(directory, f"{n}_{t}.tif")) for t in TAY_TILES))


def merge_tay_city(directory, city, out, crop=None):
    """Merge a city's four disjoint tiles (m/yr) into one float32 GeoTIFF of mm/yr, as tay_merge.py does.

    Parameters
    ----------
    directory, city : str
    out : str or os.PathLike
        GeoTIFF written.
    crop : (int, int, int, int), optional
        ``(row0, row1, col0, col1)`` cells kept (a small map for a fast test).

    Returns
    -------
    str
        ``out``.
    """
    velocity, transform, crs = merged_city(directory, city)
    if crop is not None:
        r0, r1, c0, c1 = crop
        velocity = velocity[r0:r1, c0:c1]
        transform = transform * transform.translation(c0, r0)
    profile = {"driver": "GTiff", "dtype": "float32", "nodata": np.nan, "count": 1, "crs": crs}
    profile.update(height=velocity.shape[0], width=velocity.shape[1], transform=transform)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(velocity, 1)
        dst.update_tags(units="mm/yr")
    return str(out)
