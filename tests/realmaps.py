"""Real maps assembled for tests and benchmarks from /work/shared/data/real (never copied into the repository)."""

import os

import numpy as np
import rasterio

TAY_TILES = ("0to25pp", "25to50pp", "50to100pp", "gt100pp")


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
    tiles = []
    for tile in TAY_TILES:
        with rasterio.open(os.path.join(directory, f"{city}_{tile}.tif")) as src:
            tiles.append(src.read(1).astype(np.float64))
            profile, transform = src.profile, src.transform
    stack = np.stack(tiles)
    n = np.isfinite(stack).sum(axis=0)
    velocity = np.where(n > 0, np.nansum(stack, axis=0), np.nan) * 1000.0
    if crop is not None:
        r0, r1, c0, c1 = crop
        velocity = velocity[r0:r1, c0:c1]
        transform = transform * transform.translation(c0, r0)
    velocity = velocity.astype(np.float32)
    profile.update(
        dtype="float32", nodata=np.nan, count=1, height=velocity.shape[0], width=velocity.shape[1], transform=transform
    )
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(velocity, 1)
        dst.update_tags(units="mm/yr")
    return str(out)
