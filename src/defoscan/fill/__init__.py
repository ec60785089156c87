"""Gap filling: complete a sparse velocity grid before it is wrapped and scanned.

A convolution over a map that is mostly holes sees the holes' edges, not deformation, so the gridded velocity is
completed first. :func:`fill_grid` runs one of :data:`METHODS` tile by tile on a fixed global tiling with a halo
(:mod:`defoscan.fill.tiling`), keeps the observed cells as they are, and leaves cells farther than
``max_distance`` from any data (sea, large gaps) NaN rather than inventing them.

Methods (one interface, ``filler(velocity, weight, target) -> values`` per tile):

- ``completion`` (default): the modified matrix completion of :mod:`defoscan.fill.completion`, robust
  weighted completion with membrane and thin-plate graph regularisation, solved by IRLS and multigrid CG.
- ``nearest``, ``linear`` (Delaunay), ``knn`` (inverse-distance of the 12 nearest), ``softimpute`` (plain
  iterated SVD soft-thresholding): the baselines of :mod:`defoscan.fill.baselines`.

Which is best, and by how much, is measured in ``benchmarks/bench_fill.py`` and docs/FILL.md.
"""

import numpy as np
from scipy import ndimage

from defoscan.fill.baselines import knn, linear, nearest, softimpute
from defoscan.fill.completion import CompletionParameters, complete
from defoscan.fill.tiling import grid_origin, run_tiled

DEFAULT_METHOD = "completion"
MAX_DISTANCE = 1000.0  # metres: farther from data than this a cell stays NaN
TILE = 1024  # cells per tile side, halo included
HALO = 64  # cells of overlap on each side of a tile


def _completion(velocity, weight, target, **options):
    return complete(velocity, weight, target, CompletionParameters(**options))


METHODS = {
    "completion": _completion,
    "nearest": nearest,
    "linear": linear,
    "knn": knn,
    "softimpute": softimpute,
}


def reach_cells(max_distance, cell_size):
    """``max_distance`` in whole cells (at least 1: the neighbours of data are always filled)."""
    return max(1, int(np.floor(max_distance / cell_size + 1e-9)))


def fill_array(
    velocity,
    weight,
    *,
    cell_size,
    method=DEFAULT_METHOD,
    max_distance=MAX_DISTANCE,
    tile=TILE,
    halo=HALO,
    origin=(0, 0),
    **options,
):
    """Fill the gaps of a 2-D velocity array (the work of :func:`fill_grid`, on plain arrays).

    Parameters
    ----------
    velocity : numpy.ndarray
        2-D, mm/yr, NaN where no data.
    weight : numpy.ndarray
        Data weight per cell (point count); cells with data and weight 0 count as 1.
    cell_size : float
        Metres.
    method : str
        A key of :data:`METHODS`.
    max_distance : float
        Metres: cells farther from every observed cell stay NaN.
    tile, halo : int
        Tile side (halo included) and overlap, cells.
    origin : (int, int)
        Global index of the top-left cell (:func:`defoscan.fill.tiling.grid_origin`).
    **options
        Passed to the method (:class:`defoscan.fill.completion.CompletionParameters` fields for
        ``completion``; ``k``, ``power`` for ``knn``; ...).

    Returns
    -------
    numpy.ndarray of float32
        Observed cells unchanged, gaps within ``max_distance`` filled, NaN beyond.
    """
    filler = make_filler(method, options)
    reach = reach_cells(max_distance, cell_size)
    velocity, weight, observed, target = fill_inputs(velocity, weight, reach)
    out = np.where(observed, velocity, np.nan).astype(np.float32)
    if not target.any():
        return out
    values = run_tiled(filler, velocity, weight, target, origin=origin, tile=tile, halo=halo, reach=reach)
    out[target] = values[target]
    return out


def make_filler(method, options):
    """The tile filler ``filler(velocity, weight, target) -> values`` of a method of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose from {', '.join(METHODS)}")
    base = METHODS[method]
    if not options:
        return base

    def filler(v, w, t):
        return base(v, w, t, **options)

    return filler


def fill_inputs(velocity, weight, reach):
    """What the tiles are solved from, for a map or any block of it.

    Parameters
    ----------
    velocity, weight : numpy.ndarray
        As for :func:`fill_array`.
    reach : int
        :func:`reach_cells`.

    Returns
    -------
    velocity : numpy.ndarray of float64
    weight : numpy.ndarray of float64
        The data weights: at least 1 at cells with data, 0 elsewhere.
    observed : numpy.ndarray of bool
        Cells with data.
    target : numpy.ndarray of bool
        Cells without data within ``reach`` cells of data (right on a block's cells that have all the map's cells
        within ``reach`` of them inside the block).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    observed = np.isfinite(velocity)
    weight = np.where(observed, np.maximum(np.nan_to_num(np.asarray(weight, dtype=np.float64)), 1.0), 0.0)
    if not observed.any():
        return velocity, weight, observed, np.zeros(observed.shape, dtype=bool)
    distance = ndimage.distance_transform_edt(~observed)
    return velocity, weight, observed, (distance <= reach) & ~observed


def fill_grid(grid, method=DEFAULT_METHOD, max_distance=MAX_DISTANCE, tile=TILE, halo=HALO, **options):
    """Fill the gaps of a gridded velocity map.

    Parameters
    ----------
    grid : xarray.Dataset
        Raster dataset (:mod:`defoscan.raster`): ``velocity`` (NaN = no data), ``count``, CRS and transform.
    method : str
        ``completion`` (default), ``nearest``, ``linear``, ``knn`` or ``softimpute``.
    max_distance : float
        Metres: cells farther than this from every observed cell stay NaN.
    tile, halo : int
        Tile side (halo included) and overlap on each side, cells.
    **options
        Passed to the method.

    Returns
    -------
    xarray.Dataset
        A copy of ``grid`` with ``velocity_filled`` (float32, mm/yr) added; CRS and transform kept.
    """
    transform = grid.rio.transform(recalc=True)
    cell_size = abs(transform.a)
    count = grid["count"].values if "count" in grid else np.ones(grid["velocity"].shape)
    filled = fill_array(
        grid["velocity"].values,
        count,
        cell_size=cell_size,
        method=method,
        max_distance=max_distance,
        tile=tile,
        halo=halo,
        origin=grid_origin(transform),
        **options,
    )
    out = grid.copy()
    out["velocity_filled"] = (
        ("y", "x"),
        filled,
        {
            "units": "mm/yr",
            "long_name": "velocity, gaps filled",
            "fill_method": method,
            "fill_max_distance_m": float(max_distance),
        },
    )
    return out
