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

The work is split in two so that it can also be done apart (:mod:`defoscan.fill_store` solves each tile once, in
one task, and blends chunk by chunk): :func:`solve_tile` solves one tile, unblended, and :func:`blend_tile` adds a
tile's values, or any part of them, to running sums that :func:`blended` divides; :func:`run_tiled` does both over
an array in memory. A tile's target cells depend on the data up to ``reach`` cells around it, so a tile solved
from a block of the map needs the block to hold the tile and ``reach`` cells more.
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


def tile_index(start, tile, halo):
    """Global index ``k`` of the tile that starts at global cell ``start`` (``start = k (tile - 2 halo) - halo``)."""
    return (int(start) + halo) // (tile - 2 * halo)


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
    check_tiling(tile, halo)
    rows, cols = velocity.shape
    total = np.zeros((rows, cols))
    norm = np.zeros((rows, cols))
    observed = np.isfinite(velocity)
    profile = ramp(tile, halo)
    for r0 in tile_starts(origin[0], rows, tile, halo):
        for c0 in tile_starts(origin[1], cols, tile, halo):
            corner = (r0 - origin[0], c0 - origin[1])
            solved = solve_tile(fill, velocity, weight, target, observed, corner, tile, reach)
            if solved is not None:
                blend_tile(total, norm, *solved, corner, profile)
    return blended(total, norm)


def check_tiling(tile, halo):
    """Refuse a halo too large for the tile (the ramps of more than two tiles would overlap)."""
    if tile <= 4 * halo:
        raise ValueError(f"tile ({tile}) must be more than four halos ({halo})")


def solve_tile(fill, velocity, weight, target, observed, corner, tile, reach):
    """Solve one tile of the global tiling, unblended.

    The arrays may be any block of the map that holds the tile's cells within the map; ``target`` must be right on
    them (it depends on the data up to ``reach`` cells around: compute it on a block holding those). Outside the
    block there must be no map (the tile is clipped to the block as to the map's edge).

    Parameters
    ----------
    fill : callable
        ``fill(velocity, weight, target) -> values``.
    velocity, weight, target, observed : numpy.ndarray
        The block's velocity (NaN where no data), weights, cells needing a value, cells with data.
    corner : (int, int)
        The tile's first cell in the block's coordinates (may lie outside the block).
    tile : int
        Tile edge in cells.
    reach : int
        Cells beyond the tile's data that may need a value: the tile is solved on its data grown by this.

    Returns
    -------
    (window, values) or None
        ``window``: rows and columns (slices) of the block the tile was solved on; ``values``: float64 over it,
        NaN where the tile gives no value (not a target, or not filled). None for a tile with no data or no target.
    """
    # The tile clipped to the block (outside it there are no data).
    top, left = corner
    r_lo, r_hi = max(top, 0), min(top + tile, velocity.shape[0])
    c_lo, c_hi = max(left, 0), min(left + tile, velocity.shape[1])
    if r_lo >= r_hi or c_lo >= c_hi:
        return None
    data = observed[r_lo:r_hi, c_lo:c_hi]
    if not data.any() or not target[r_lo:r_hi, c_lo:c_hi].any():
        return None
    # Crop to the data grown by `reach`, within the tile: a function of the tile's content alone.
    data_rows, data_cols = np.flatnonzero(data.any(axis=1)), np.flatnonzero(data.any(axis=0))
    window = (
        slice(max(r_lo, r_lo + data_rows[0] - reach), min(r_hi, r_lo + data_rows[-1] + 1 + reach)),
        slice(max(c_lo, c_lo + data_cols[0] - reach), min(c_hi, c_lo + data_cols[-1] + 1 + reach)),
    )
    values = np.asarray(fill(velocity[window], weight[window], target[window]), dtype=np.float64)
    return window, np.where(np.isfinite(values) & target[window], values, np.nan)


def blend_tile(total, norm, window, values, corner, profile):
    """Add a tile's values to running sums with its Hann weights (the blend of :func:`run_tiled`).

    Parameters
    ----------
    total, norm : numpy.ndarray
        Sums of weighted values and of weights, updated in place (:func:`blended` divides them).
    window : (slice, slice)
        Where ``values`` lie in ``total``: any part of the tile.
    values : numpy.ndarray
        The tile's values there (:func:`solve_tile`), NaN where it gives none.
    corner : (int, int)
        The tile's first cell in ``total``'s coordinates.
    profile : numpy.ndarray
        :func:`ramp` of the tiling.
    """
    rows, cols = window
    weight = np.outer(
        profile[rows.start - corner[0] : rows.stop - corner[0]], profile[cols.start - corner[1] : cols.stop - corner[1]]
    )
    good = np.isfinite(values)
    total[window] += np.where(good, values * weight, 0.0)
    norm[window] += np.where(good, weight, 0.0)


def blended(total, norm):
    """The blend from the sums of :func:`blend_tile`: float64, NaN where no tile gave a value."""
    out = np.full(total.shape, np.nan)
    done = norm > 0
    out[done] = total[done] / norm[done]
    return out
