"""Despiking: remove isolated values that disagree with their neighbourhood, keep small genuine signals.

A spike is a point (or a grid cell) whose velocity is far from its neighbours' and that no neighbour backs up: a
bad scatterer, an isolated unwrapping error. A small quarry or a sinkhole also stands out from its surroundings,
but its points agree with each other. The test, for every value ``v`` with at least ``min_neighbours`` neighbours:

1. **Leave-one-out neighbourhood**: the neighbours' median ``m`` and robust spread ``1.4826 * MAD`` leave ``v``
   itself out, so a spike cannot vouch for itself. The residual is ``r = v - m``.
2. **Noise units**: the scale is ``s = max(1.4826 * MAD, sigma)``, ``sigma`` being the robust standard deviation
   (``1.4826 * MAD``) of all residuals of the map. The local spread widens the test where the neighbourhood is
   rough (the flank of a bowl, a noisy area); the global floor keeps a perfectly smooth neighbourhood (a few
   neighbours that happen to agree, quantised values) from turning every small deviation into a spike.
3. **Candidates**: ``|r| > k * s`` and ``|r| >= min_residual`` (mm/yr). The velocity floor only matters on
   very quiet or quantised maps: below about 2 mm/yr a deviation is not worth removing.
4. **Support**: a neighbour supports the candidate when it departs from ``m`` in the same direction by at least
   half as much, ``(v_j - m) / r >= 0.5``. A candidate with fewer than ``min_support`` supporting neighbours is a
   spike. The points of a quarry support each other (all of them depart from the background the same way), so
   the quarry stays; a spike's neighbours sit near the background and leave it alone.

Points use their ``neighbours`` nearest points within ``radius`` metres (a KD-tree); grids use the other cells
of a ``window`` x ``window`` square. Both reduce to the same computation on a matrix of neighbour values, one
row per tested value, whose medians come from a row-wise sort (NaN sorts last).

How the defaults were chosen, and what they achieve on synthetic maps, is in ``docs/DESPIKE.md``.
"""

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

MAD_TO_SIGMA = 1.4826  # the MAD of a Gaussian is 0.6745 sigma
SUPPORT_FRACTION = 0.5  # a supporting neighbour departs from the median by at least this share of the residual
_POINT_CHUNK = 262_144  # points per KD-tree query: bounds the (chunk, neighbours) matrices to a few tens of MB
_GRID_BLOCK_CELLS = 262_144  # cells per row block of a grid, for the same reason


def despike_points(
    points, *, radius=150.0, neighbours=16, k=5.0, min_neighbours=4, min_support=2, min_residual=2.0, workers=-1
):
    """Remove isolated spikes from a points dataset.

    Parameters
    ----------
    points : xarray.Dataset
        Points along ``point`` with projected ``x``/``y`` (metres) and ``velocity`` (mm/yr), see
        :mod:`defoscan.points`.
    radius : float
        Metres: only neighbours this close count.
    neighbours : int
        How many nearest neighbours (within ``radius``) form a point's neighbourhood.
    k : float
        Threshold in noise units.
    min_neighbours : int
        Points with fewer neighbours than this are not judged, and kept.
    min_support : int
        Neighbours that must back up a candidate for it to stay.
    min_residual : float
        mm/yr a spike must depart from its neighbours' median.
    workers : int
        Threads for the KD-tree queries (-1: all cores).

    Returns
    -------
    despiked : xarray.Dataset
        The points that are not spikes.
    spike : xarray.DataArray of bool
        Along the input's ``point``: True where a point was removed. ``attrs`` hold a summary for the run record
        (``sigma_mm_yr``, ``judged``, ``removed``, the parameters).

    See Also
    --------
    despike_grid : the same test on a gridded map.
    """
    x, y = points["x"].values, points["y"].values
    v = points["velocity"].values.astype(np.float32, copy=False)
    usable = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    index = np.flatnonzero(usable)
    xy = np.column_stack([x[index], y[index]])
    values = v[index]
    tree = cKDTree(xy)
    stats = []
    for start in range(0, index.size, _POINT_CHUNK):
        stop = min(start + _POINT_CHUNK, index.size)
        # One more than wanted: the point itself is (nearly always) its own nearest neighbour.
        _, near = tree.query(xy[start:stop], k=neighbours + 1, distance_upper_bound=radius, workers=workers)
        own = near == np.arange(start, stop)[:, None]
        missing = own | (near == index.size)
        # Self not among the hits (points sharing a position): drop the farthest to keep ``neighbours``.
        missing[~own.any(axis=1), -1] = True
        near_values = values[np.where(missing, 0, near)]
        near_values[missing] = np.nan
        stats.append(_neighbourhood_stats(values[start:stop], near_values, k, min_residual))
    spike_usable, summary = _decide(stats, k, min_neighbours, min_support, min_residual)
    spike = np.zeros(v.size, dtype=bool)
    spike[index] = spike_usable
    summary.update(radius=radius, neighbours=neighbours)
    mask = xr.DataArray(spike, dims="point", coords={"x": points["x"], "y": points["y"]}, name="spike", attrs=summary)
    return points.isel(point=np.flatnonzero(~spike)), mask


def despike_grid(grid, *, window=5, k=5.0, min_neighbours=4, min_support=2, min_residual=2.0):
    """Set isolated spike cells of a gridded map to no data.

    Parameters
    ----------
    grid : xarray.Dataset
        Raster dataset (:mod:`defoscan.raster`) with ``velocity`` (mm/yr, NaN = no data) and ``count``.
    window : int
        Odd side, in cells, of the square neighbourhood centred on each cell (the cell itself left out).
    k, min_neighbours, min_support, min_residual
        As in :func:`despike_points`; neighbours are cells with data in the window.

    Returns
    -------
    despiked : xarray.Dataset
        A copy of ``grid`` with ``velocity`` NaN and ``count`` 0 in the spike cells.
    spike : xarray.DataArray of bool
        (y, x): True where a cell was removed; ``attrs`` as in :func:`despike_points`.
    """
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd number of cells >= 3, got {window}")
    velocity = grid["velocity"].values.astype(np.float32, copy=False)
    height, width = velocity.shape
    half = window // 2
    dy, dx = np.divmod(np.arange(window * window), window)
    centre = (dy == half) & (dx == half)
    dy, dx = dy[~centre] - half, dx[~centre] - half
    offsets = dy * (width + 2 * half) + dx  # flat offsets in a block padded by ``half`` on every side
    rows_per_block = max(1, _GRID_BLOCK_CELLS // max(width, 1))
    stats, cells = [], []
    for r0 in range(0, height, rows_per_block):
        r1 = min(r0 + rows_per_block, height)
        padded = np.full((r1 - r0 + 2 * half, width + 2 * half), np.nan, dtype=np.float32)
        top, bottom = max(r0 - half, 0), min(r1 + half, height)
        padded[top - (r0 - half) : bottom - (r0 - half), half : half + width] = velocity[top:bottom]
        rows, cols = np.nonzero(np.isfinite(velocity[r0:r1]))
        if rows.size == 0:
            continue
        flat = (rows + half) * (width + 2 * half) + cols + half
        near_values = padded.ravel()[flat[:, None] + offsets[None, :]]
        stats.append(_neighbourhood_stats(padded.ravel()[flat], near_values, k, min_residual))
        cells.append((rows + r0) * width + cols)
    spike = np.zeros(velocity.shape, dtype=bool)
    despiked = grid.copy()
    summary = {"window": window}
    if stats:
        flags, decided = _decide(stats, k, min_neighbours, min_support, min_residual)
        spike.ravel()[np.concatenate(cells)[flags]] = True
        summary = {**decided, **summary}
        velocity = velocity.copy()
        velocity[spike] = np.nan
        despiked["velocity"] = grid["velocity"].copy(data=velocity)
        count = grid["count"].values.copy()
        count[spike] = 0
        despiked["count"] = grid["count"].copy(data=count)
    mask = xr.DataArray(spike, dims=("y", "x"), coords={"y": grid["y"], "x": grid["x"]}, name="spike", attrs=summary)
    return despiked, mask


def _neighbourhood_stats(values, near_values, k, min_residual):
    """Per row: leave-one-out residual, local robust scale, neighbour count, and support where it may matter.

    Parameters
    ----------
    values : numpy.ndarray of float32, shape (n,)
        The values tested.
    near_values : numpy.ndarray of float32, shape (n, m)
        Their neighbours' values, NaN where a row has fewer than ``m`` neighbours. Modified in place.
    k, min_residual : float
        Support is only counted for rows that could be candidates whatever the global scale turns out to be
        (``|r| > k * local scale`` and ``|r| >= min_residual``): it does not depend on that scale.

    Returns
    -------
    tuple of numpy.ndarray
        ``residual``, ``local`` (``1.4826 * MAD``), ``count`` and ``support`` (-1 where not counted).
    """
    count = np.count_nonzero(~np.isnan(near_values), axis=1)
    median = _row_median(np.sort(near_values, axis=1), count)
    residual = values - median
    deviation = np.abs(near_values - median[:, None])
    deviation.sort(axis=1)
    local = MAD_TO_SIGMA * _row_median(deviation, count)
    support = np.full(values.shape, -1, dtype=np.int32)
    maybe = (np.abs(residual) > k * local) & (np.abs(residual) >= min_residual)  # False where NaN
    if maybe.any():
        # Departure of each neighbour from the median, in units of the candidate's own departure (NaN: no vote).
        share = (near_values[maybe] - median[maybe, None]) / residual[maybe, None]
        support[maybe] = np.count_nonzero(share >= SUPPORT_FRACTION, axis=1)
    return residual, local, count, support


def _row_median(sorted_rows, count):
    """Median of the first ``count`` entries of each sorted row (NaN for an empty row)."""
    rows = np.arange(sorted_rows.shape[0])
    width = sorted_rows.shape[1]
    lower = sorted_rows[rows, np.clip((count - 1) // 2, 0, width - 1)]
    upper = sorted_rows[rows, np.clip(count // 2, 0, width - 1)]
    median = 0.5 * (lower + upper)
    median[count == 0] = np.nan
    return median


def _decide(stats, k, min_neighbours, min_support, min_residual):
    """Spike flags from the per-chunk statistics, once the map-wide noise scale is known."""
    residual, local, count, support = (np.concatenate(parts) for parts in zip(*stats, strict=True))
    judged = count >= min_neighbours
    sigma = _robust_sigma(residual[judged])
    scale = np.maximum(local, sigma) if np.isfinite(sigma) else local
    magnitude = np.abs(residual)
    candidate = judged & (magnitude > k * scale) & (magnitude >= min_residual)
    # Every candidate had its support counted: its |r| also exceeds k times the local scale alone.
    spike = candidate & (support < min_support)
    summary = {
        "sigma_mm_yr": float(sigma),
        "judged": int(judged.sum()),
        "candidates": int(candidate.sum()),
        "removed": int(spike.sum()),
        "k": k,
        "min_neighbours": min_neighbours,
        "min_support": min_support,
        "min_residual": min_residual,
    }
    return spike, summary


def _robust_sigma(values):
    """``1.4826 * MAD`` of values (NaN when there are none)."""
    if values.size == 0:
        return np.nan
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))
