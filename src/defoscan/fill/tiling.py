"""Tiles with a halo on a fixed global tiling, blended with Hann ramps: any map size, no seams, no chunk effects.

Tiles are anchored to whole cell indices of the CRS (a grid's edges lie on whole multiples of its cell size,
:mod:`defoscan.grid`), not to the corner of the array in hand. Along each axis, tile ``k`` covers global cells
``[k S - h, (k + 1) S + h)`` with ``S = tile - 2 h`` and ``h = halo``: its core plus a halo on either side, so
neighbouring tiles overlap by ``2 h`` cells. In an overlap the two tiles are blended with complementary Hann
ramps (``cos^2`` and ``sin^2``, which sum to one), so each tile's edge, where it knows least, counts least, and
the blend is smooth.

What a tile computes depends only on the data inside it, and each tile is solved on the same window, cropped
the same way (to its data, grown by the distance that may be filled), however the map was cut. So a map filled
whole and filled chunk by chunk, each chunk read with :func:`chunk_margin` cells of context around it, give the
same numbers: the same tiles are computed from the same inputs.
"""

import numpy as np


def grid_origin(transform):
    """Global ``(row, column)`` index of a grid's top-left cell, from its pixel-corner geotransform.

    Rows count southwards from northing 0, columns eastwards from easting 0, in cells.
    """
    cell = abs(transform.a)
    return int(round(-transform.f / cell)), int(round(transform.c / cell))


def chunk_margin(tile, halo, reach):
    """Cells of context a chunk needs around it to be filled exactly as in the whole map.

    Parameters
    ----------
    tile, halo : int
    reach : int
        Cells from data that are filled (``max_distance`` in cells).

    Returns
    -------
    int
    """
    return int(tile + reach)


def tile_starts(origin, size, tile, halo):
    """Global start indices of the tiles along one axis that overlap ``[origin, origin + size)``."""
    stride = tile - 2 * halo
    starts = (k * stride - halo for k in range((origin - tile) // stride, (origin + size + halo) // stride + 2))
    return [s for s in starts if s < origin + size and s + tile > origin]


def ramp(tile, halo):
    """Blending weight of a tile along one axis, for each of its ``tile`` cells (tiles overlap by ``2 halo``)."""
    weight = np.ones(tile)
    if halo:
        t = (np.arange(2 * halo) + 0.5) / (2 * halo)
        rising = np.sin(0.5 * np.pi * t) ** 2
        weight[: 2 * halo] = rising
        weight[-2 * halo :] = rising[::-1]
    return weight


def run_tiled(fill, velocity, weight, target, *, origin=(0, 0), tile=1024, halo=64, reach=0):
    """Apply a tile filler over a map of any size on the global tiling and blend the tiles.

    Parameters
    ----------
    fill : callable
        ``fill(velocity, weight, target) -> values`` on one tile (see :mod:`defoscan.fill.baselines`).
    velocity : numpy.ndarray
        2-D, NaN where no data.
    weight : numpy.ndarray
        Data weights (point counts).
    target : numpy.ndarray of bool
        Cells that need a value.
    origin : (int, int)
        Global index of ``velocity[0, 0]`` (:func:`grid_origin`).
    tile : int
        Tile edge in cells, halo included.
    halo : int
        Cells of overlap on each side; ``tile > 4 * halo``.
    reach : int
        Cells beyond a tile's data that may need a value; each tile is cropped to its data grown by this.

    Returns
    -------
    numpy.ndarray of float64
        Blended values at the ``target`` cells, NaN elsewhere.
    """
    if tile <= 4 * halo:
        raise ValueError(f"tile ({tile}) must be more than four halos ({halo})")
    rows, cols = velocity.shape
    total = np.zeros((rows, cols))
    norm = np.zeros((rows, cols))
    observed = np.isfinite(velocity)
    for r0 in tile_starts(origin[0], rows, tile, halo):
        for c0 in tile_starts(origin[1], cols, tile, halo):
            _fill_one(fill, velocity, weight, target, observed, origin, (r0, c0), tile, halo, reach, total, norm)
    out = np.full((rows, cols), np.nan)
    done = target & (norm > 0)
    out[done] = total[done] / norm[done]
    return out


def _fill_one(fill, velocity, weight, target, observed, origin, start, tile, halo, reach, total, norm):
    # The tile in array coordinates, clipped to the array (outside it there are no data).
    top, left = start[0] - origin[0], start[1] - origin[1]
    r_lo, r_hi = max(top, 0), min(top + tile, velocity.shape[0])
    c_lo, c_hi = max(left, 0), min(left + tile, velocity.shape[1])
    data = observed[r_lo:r_hi, c_lo:c_hi]
    if not data.any() or not target[r_lo:r_hi, c_lo:c_hi].any():
        return
    # Crop to the data grown by `reach`, within the tile: a function of the tile's content alone.
    data_rows, data_cols = np.flatnonzero(data.any(axis=1)), np.flatnonzero(data.any(axis=0))
    a_lo = max(r_lo, r_lo + data_rows[0] - reach, top)
    a_hi = min(r_hi, r_lo + data_rows[-1] + 1 + reach)
    b_lo = max(c_lo, c_lo + data_cols[0] - reach, left)
    b_hi = min(c_hi, c_lo + data_cols[-1] + 1 + reach)
    window = np.s_[a_lo:a_hi, b_lo:b_hi]
    values = np.asarray(fill(velocity[window], weight[window], target[window]), dtype=np.float64)
    profile = ramp(tile, halo)
    blend = np.outer(profile[a_lo - top : a_hi - top], profile[b_lo - left : b_hi - left])
    good = np.isfinite(values) & target[window]
    total[window] += np.where(good, values * blend, 0.0)
    norm[window] += np.where(good, blend, 0.0)
