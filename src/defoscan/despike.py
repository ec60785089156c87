"""Despiking: remove isolated values that disagree with their neighbourhood, keep small genuine signals.

A spike is a point (or a grid cell) whose velocity is far from its neighbours' and that no neighbour backs up: a
bad scatterer, an isolated unwrapping error. A small quarry or a sinkhole also stands out from its surroundings,
but its points agree with each other. The test, for every value ``v`` with at least ``min_neighbours`` neighbours:

1. **Leave-one-out neighbourhood**: the neighbours' median ``m`` and robust spread ``1.4826 * MAD`` leave ``v``
   itself out, so a spike cannot vouch for itself. The residual is ``r = v - m``.
2. **Noise units**: ``sigma`` is the robust standard deviation (``1.4826 * MAD``) of the residuals of the whole
   map, and the scale of a value is ``s = max(1.4826 * MAD, sigma)``. The local spread widens the test where the
   neighbourhood is rough (the flank of a bowl, a noisy area); the global floor keeps a perfectly smooth
   neighbourhood (a few neighbours that happen to agree, quantised values) from making every small deviation a
   spike.
3. **Candidates**: ``|r| > k * s`` and ``|r| >= min_residual`` (mm/yr). The velocity floor only matters on very
   quiet or quantised maps: a deviation under about 2 mm/yr is not worth removing.
4. **Support**: a neighbour supports a candidate when it departs from ``m`` in the same direction by at least
   ``max(support * |r|, 3 * sigma)``: a good share of the candidate's own departure, and more than noise
   explains (Gaussian noise takes a neighbour 3 sigma out in one direction 0.13 % of the time). A candidate
   with fewer than ``min_support`` supporting neighbours is a spike. The points of a quarry, or the cells around
   a bowl's deepest one, depart from the background the same way and support each other; a spike's neighbours
   sit near the background and leave it alone. The noise term uses the map's ``sigma``, not the local spread,
   which a bowl inflates. Two supporters, not one, are asked for by default: at a spike rate of 1 %, about
   one spike in twelve has another spike of the same sign among 16 neighbours.

Points use their ``neighbours`` nearest points within ``radius`` metres (a KD-tree); grids use the other cells of a
``window`` x ``window`` square. Both reduce to the same computation on a matrix of neighbour values, one row per
tested value, whose medians come from a row-wise sort (NaN sorts last), a block of rows at a time. Support is
counted in a second pass over the candidates only (usually a few per cent), once ``sigma`` is known.

How the defaults were chosen, and what they achieve on synthetic maps, is in ``docs/DESPIKE.md``.
"""

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from defoscan.robust import MAD_TO_SIGMA, robust_sigma

SUPPORT_NOISE = 3.0  # map sigmas a supporter must depart by, whatever the candidate's size
_BLOCK = 262_144  # values per block: bounds the (block, neighbours) matrices to a few tens of MB


def despike_points(
    points,
    *,
    radius=250.0,
    neighbours=16,
    k=4.0,
    min_neighbours=3,
    min_support=2,
    support=0.25,
    min_residual=2.0,
    workers=-1,
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
        Points with fewer neighbours are not judged, and kept.
    min_support : int
        Supporting neighbours a candidate needs to stay.
    support : float
        Share of a candidate's departure from its neighbours' median that a neighbour must reach (in the same
        direction) to support it; never less than ``SUPPORT_NOISE`` (3) map sigmas.
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
        (``sigma_mm_yr``, ``judged``, ``candidates``, ``removed`` and the parameters).

    See Also
    --------
    despike_grid : the same test on a gridded map.
    """
    x, y = points["x"].values, points["y"].values
    v = points["velocity"].values
    usable = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & np.isfinite(v))
    near = _PointNeighbours(x[usable], y[usable], v[usable], radius, neighbours, workers)
    flags, summary = _find_spikes(
        near.values,
        near.blocks(),
        near.query,
        k=k,
        min_neighbours=min_neighbours,
        min_support=min_support,
        support=support,
        min_residual=min_residual,
    )
    spike = np.zeros(v.size, dtype=bool)
    spike[usable[flags]] = True
    summary.update(radius=radius, neighbours=neighbours)
    mask = xr.DataArray(spike, dims="point", coords={"x": points["x"], "y": points["y"]}, name="spike", attrs=summary)
    return points.isel(point=np.flatnonzero(~spike)), mask


class _PointNeighbours:
    """The ``neighbours`` nearest points within ``radius`` of points, as rows of neighbour values (a KD-tree)."""

    def __init__(self, x, y, v, radius, neighbours, workers):
        self.xy = np.column_stack([x, y])
        self.values = np.asarray(v, dtype=np.float32)
        self.tree = cKDTree(self.xy)
        self.radius, self.neighbours, self.workers = radius, neighbours, workers

    def query(self, rows):
        """Neighbour values of points ``rows`` (NaN-padded), the point itself left out."""
        # One more than wanted: a point is (nearly always) its own nearest neighbour, and is left out.
        _, near = self.tree.query(
            self.xy[rows], k=self.neighbours + 1, distance_upper_bound=self.radius, workers=self.workers
        )
        own = near == rows[:, None]
        missing = own | (near == self.values.size)
        missing[~own.any(axis=1), -1] = True  # itself not among the hits (shared positions): drop the farthest
        found = self.values[np.where(missing, 0, near)]
        found[missing] = np.nan
        return found

    def blocks(self, rows=None):
        """``(rows, neighbour values)`` in blocks covering ``rows`` (all points by default)."""
        # Blocks in the tree's own order: neighbouring queries then walk the same branches (2-3x faster than at random).
        order = self.tree.indices
        if rows is not None:
            order = order[np.isin(order, rows)]
        return ((order[i : i + _BLOCK], self.query(order[i : i + _BLOCK])) for i in range(0, order.size, _BLOCK))


def point_statistics(x, y, v, own, *, radius=250.0, neighbours=16, workers=-1):
    """The first half of :func:`despike_points` for part of a map: each own point's neighbourhood statistics.

    A country-scale run despikes chunk by chunk (:mod:`defoscan.pipeline`): the chunk's points and those
    within ``radius`` of it are read, the statistics of the chunk's own points computed, the map's noise ``sigma``
    found from every chunk's residuals, and then :func:`point_spikes` decides. The same neighbours, hence the
    same spikes, as :func:`despike_points` on the whole map.

    Parameters
    ----------
    x, y, v : numpy.ndarray
        Finite coordinates (metres) and velocities of the chunk's points and of their neighbours.
    own : numpy.ndarray of int
        Indices of the chunk's own points.
    radius, neighbours, workers
        As in :func:`despike_points`.

    Returns
    -------
    count : numpy.ndarray of int32
        Neighbours of each own point.
    residual, local : numpy.ndarray of float32
        Departure from the neighbours' median, and their robust spread (NaN without neighbours).
    """
    near = _PointNeighbours(x, y, v, radius, neighbours, workers)
    count = np.zeros(near.values.shape, dtype=np.int32)
    residual = np.full(near.values.shape, np.nan, dtype=np.float32)
    local = np.full(near.values.shape, np.nan, dtype=np.float32)
    _neighbour_statistics(near.values, near.blocks(np.asarray(own)), count, residual, local)
    return count[own], residual[own], local[own]


def point_spikes(
    x,
    y,
    v,
    own,
    statistics,
    sigma,
    *,
    radius=250.0,
    neighbours=16,
    k=4.0,
    min_neighbours=3,
    min_support=2,
    support=0.25,
    min_residual=2.0,
    workers=-1,
):
    """The second half: which own points are spikes, given their :func:`point_statistics` and the map's ``sigma``.

    Parameters
    ----------
    x, y, v, own
        As for :func:`point_statistics` (the same arrays).
    statistics : tuple of numpy.ndarray
        ``(count, residual, local)`` from :func:`point_statistics`.
    sigma : float
        The map's noise: :func:`defoscan.robust.robust_sigma` of the residuals of every point with at least
        ``min_neighbours`` neighbours, over the whole map; a Python float, as :func:`despike_points` has it.
    radius, neighbours, k, min_neighbours, min_support, support, min_residual, workers
        As in :func:`despike_points`.

    Returns
    -------
    spike : numpy.ndarray of bool
        Per own point.
    summary : dict
        ``judged``, ``candidates``, ``removed`` among the own points.
    """
    near = _PointNeighbours(x, y, v, radius, neighbours, workers)
    own = np.asarray(own)
    count, residual, local = statistics

    def query(index):
        return near.query(own[index])

    return _decide(
        near.values[own],
        count,
        residual,
        local,
        query,
        sigma,
        k=k,
        min_neighbours=min_neighbours,
        min_support=min_support,
        support=support,
        min_residual=min_residual,
    )


def despike_grid(grid, *, window=5, k=4.0, min_neighbours=3, min_support=2, support=0.25, min_residual=2.0):
    """Set isolated spike cells of a gridded map to no data.

    Parameters
    ----------
    grid : xarray.Dataset
        Raster dataset (:mod:`defoscan.raster`) with ``velocity`` (mm/yr, NaN = no data) and ``count``.
    window : int
        Odd side, in cells, of the square neighbourhood centred on each cell (the cell itself left out).
    k, min_neighbours, min_support, support, min_residual
        As in :func:`despike_points`; a cell's neighbours are the cells with data in its window.

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
    keep = (dy != half) | (dx != half)
    dy, dx = dy[keep] - half, dx[keep] - half
    cells = np.flatnonzero(np.isfinite(velocity))
    values = velocity.ravel()[cells]

    def blocks():
        # Row blocks padded with a NaN halo: neighbours are then plain flat offsets, no bounds to check.
        rows_per_block = max(1, _BLOCK // max(width, 1))
        offsets = dy * (width + 2 * half) + dx
        for r0 in range(0, height, rows_per_block):
            r1 = min(r0 + rows_per_block, height)
            first, last = np.searchsorted(cells, [r0 * width, r1 * width])
            if first == last:
                continue
            padded = np.full((r1 - r0 + 2 * half, width + 2 * half), np.nan, dtype=np.float32)
            top, bottom = max(r0 - half, 0), min(r1 + half, height)
            padded[top - r0 + half : bottom - r0 + half, half : half + width] = velocity[top:bottom]
            rows, cols = np.divmod(cells[first:last], width)
            centre = (rows - r0 + half) * (width + 2 * half) + cols + half
            yield np.arange(first, last), padded.ravel()[centre[:, None] + offsets]

    def neighbour_values(index):
        rows, cols = np.divmod(cells[index], width)
        rr, cc = rows[:, None] + dy, cols[:, None] + dx
        inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
        found = velocity[np.where(inside, rr, 0), np.where(inside, cc, 0)]
        found[~inside] = np.nan
        return found

    flags, summary = _find_spikes(
        values,
        blocks(),
        neighbour_values,
        k=k,
        min_neighbours=min_neighbours,
        min_support=min_support,
        support=support,
        min_residual=min_residual,
    )
    summary["window"] = window
    spike = np.zeros(velocity.shape, dtype=bool)
    spike.ravel()[cells[flags]] = True
    despiked = grid.copy()
    despiked["velocity"] = grid["velocity"].copy(data=np.where(spike, np.float32(np.nan), velocity))
    despiked["count"] = grid["count"].copy(data=np.where(spike, 0, grid["count"].values).astype(grid["count"].dtype))
    mask = xr.DataArray(spike, dims=("y", "x"), coords={"y": grid["y"], "x": grid["x"]}, name="spike", attrs=summary)
    return despiked, mask


def _find_spikes(values, blocks, neighbour_values, *, k, min_neighbours, min_support, support, min_residual):
    """The spike test of the module notes on values whose neighbours come from a callable.

    Parameters
    ----------
    values : numpy.ndarray of float32, shape (n,)
        The values tested, all finite.
    blocks : iterable of (numpy.ndarray, numpy.ndarray)
        Indices into ``values`` and their neighbours' values (one row each, NaN-padded), covering every value.
    neighbour_values : callable
        Indices -> the same neighbour matrix, called again for the candidates only.
    k, min_neighbours, min_support, support, min_residual
        As in :func:`despike_points`.

    Returns
    -------
    spike : numpy.ndarray of bool, shape (n,)
    summary : dict
    """
    residual = np.full(values.shape, np.nan, dtype=np.float32)
    local = np.full(values.shape, np.nan, dtype=np.float32)
    count = np.zeros(values.shape, dtype=np.int32)
    _neighbour_statistics(values, blocks, count, residual, local)
    sigma = robust_sigma(residual[count >= min_neighbours])
    spike, summary = _decide(
        values,
        count,
        residual,
        local,
        neighbour_values,
        sigma,
        k=k,
        min_neighbours=min_neighbours,
        min_support=min_support,
        support=support,
        min_residual=min_residual,
    )
    return spike, {"sigma_mm_yr": float(sigma) if np.isfinite(sigma) else None, **summary}


def _neighbour_statistics(values, blocks, count, residual, local):
    """Fill ``count``, ``residual`` and ``local`` (leave-one-out median and spread) for the rows of ``blocks``."""
    for index, near in blocks:
        count[index], median, local[index] = _leave_one_out(near)
        residual[index] = values[index] - median


def _decide(
    values, count, residual, local, neighbour_values, sigma, *, k, min_neighbours, min_support, support, min_residual
):
    """Candidates and their support (module notes, steps 3-4), given the map's ``sigma``."""
    judged = count >= min_neighbours
    magnitude = np.abs(residual)
    candidate = judged & (magnitude >= min_residual) & (magnitude > k * local)  # NaN compares False
    if np.isfinite(sigma):
        candidate &= magnitude > k * sigma
    rows = np.flatnonzero(candidate)
    supporters = np.zeros(rows.size, dtype=np.int32)
    floor = SUPPORT_NOISE * sigma if np.isfinite(sigma) else 0.0
    for start in range(0, rows.size, _BLOCK):
        index = rows[start : start + _BLOCK]
        r = residual[index]
        # Departure of every neighbour from the median, positive in the candidate's own direction.
        departure = (neighbour_values(index) - (values[index] - r)[:, None]) * np.sign(r)[:, None]
        need = np.maximum(support * np.abs(r), floor)
        supporters[start : start + index.size] = np.count_nonzero(departure >= need[:, None], axis=1)
    spike = np.zeros(values.shape, dtype=bool)
    spike[rows[supporters < min_support]] = True
    summary = {
        "judged": int(judged.sum()),
        "candidates": int(rows.size),
        "removed": int(spike.sum()),
        "k": k,
        "min_neighbours": min_neighbours,
        "min_support": min_support,
        "support": support,
        "min_residual": min_residual,
    }
    return spike, summary


def _leave_one_out(near):
    """Neighbour count, median and ``1.4826 * MAD`` of each row of a NaN-padded matrix (NaN for an empty row)."""
    count = np.count_nonzero(~np.isnan(near), axis=1)
    median = _row_median(np.sort(near, axis=1), count)
    deviation = np.abs(near - median[:, None])
    deviation.sort(axis=1)
    return count, median, MAD_TO_SIGMA * _row_median(deviation, count)


def _row_median(sorted_rows, count):
    """Median of the first ``count`` entries of each sorted row (NaN for an empty row)."""
    rows = np.arange(sorted_rows.shape[0])
    last = sorted_rows.shape[1] - 1
    lower = sorted_rows[rows, np.clip((count - 1) // 2, 0, last)]
    upper = sorted_rows[rows, np.clip(count // 2, 0, last)]
    median = 0.5 * (lower + upper)
    median[count == 0] = np.nan
    return median
